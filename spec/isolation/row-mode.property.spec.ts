import { expect } from 'chai';
import fc from 'fast-check';
import type { Knex } from 'knex';
import { runAsSystem, runWithTenant, withTenancy, type TenantKnex } from '../../src/index';
import { setScopingDisabledForMutationTest } from '../../src/isolation/statement-scoper';
import { setVerifierDisabledForMutationTest } from '../../src/isolation/verifier/final-sql-verifier';
import { buildShape, mustBeRefused, queryShape, type QueryShape } from './support/query-shapes';
import { createRowFixture } from './support/row-fixture';

const TENANTS = ['acme', 'globex', 'initech'] as const;
const RUNS = Number(process.env.TENANTRY_PROPERTY_RUNS ?? 2000);
const SEED = Number(process.env.TENANTRY_PROPERTY_SEED ?? 20261127);

type Outcome =
  | { readonly kind: 'ok'; readonly result: string }
  | { readonly kind: 'error'; readonly code: string | undefined; readonly message: string };

function normalize(result: unknown): string {
  if (Array.isArray(result)) return JSON.stringify(result.map((r) => JSON.stringify(r)).sort());
  return JSON.stringify(result ?? null);
}

async function outcome(run: () => PromiseLike<unknown>): Promise<Outcome> {
  try {
    return { kind: 'ok', result: normalize(await run()) };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return { kind: 'error', code: e.code, message: String(e.message) };
  }
}

async function rowsOf(trx: Knex.Transaction, tenants: readonly string[]): Promise<string> {
  return runAsSystem('property oracle', async () => {
    const docs = await trx('documents').whereIn('tenant_id', tenants).orderBy(['tenant_id', 'id']);
    const comments = await trx('comments')
      .whereIn('tenant_id', tenants)
      .orderBy(['tenant_id', 'id']);
    return JSON.stringify({ docs, comments });
  });
}

/**
 * One case: inside a transaction that is always rolled back,
 *  1. run the statement scoped as `caller`; record its result and every row;
 *  2. roll back to a savepoint, delete the other tenants' rows and run the
 *     same statement unscoped: on single-tenant data that is the right answer;
 * then require the same result, the same rows for the caller, and the other
 * tenants' rows byte-for-byte unchanged.
 */
const stats = { refused: 0, compared: 0, mustRefuse: 0 };

async function checkCase(db: TenantKnex, shape: QueryShape, caller: string): Promise<void> {
  const others = TENANTS.filter((t) => t !== caller);
  const failure = await runWithTenant(caller, async () => {
    const trx = await db.transaction();
    try {
      const othersBefore = await rowsOf(trx, others);
      const sp1 = await trx.transaction();
      const actual = await outcome(() => buildShape(sp1, shape, caller));
      const callerAfter = actual.kind === 'ok' ? await rowsOf(sp1, [caller]) : '';
      const othersAfter = actual.kind === 'ok' ? await rowsOf(sp1, others) : othersBefore;
      await sp1.rollback().catch(() => undefined);
      if (othersAfter !== othersBefore) return `other tenants' rows changed`;
      const refused = actual.kind === 'error' && actual.code === 'UNSAFE_QUERY';
      if (mustBeRefused(shape)) {
        stats.mustRefuse += 1;
        return refused ? undefined : `must be refused, got ${JSON.stringify(actual)}`;
      }
      if (refused) {
        stats.refused += 1;
        return undefined; // refused: fail closed
      }
      stats.compared += 1;
      const sp2 = await trx.transaction();
      const expected = await runAsSystem('property oracle', async () => {
        await sp2('comments').whereIn('tenant_id', others).del();
        await sp2('documents').whereIn('tenant_id', others).del();
        return outcome(() => buildShape(sp2, shape, caller));
      });
      const callerExpected = expected.kind === 'ok' ? await rowsOf(sp2, [caller]) : '';
      await sp2.rollback().catch(() => undefined);
      if (actual.kind !== expected.kind) {
        return `outcome ${JSON.stringify(actual)} but expected ${JSON.stringify(expected)}`;
      }
      if (actual.kind === 'ok' && expected.kind === 'ok') {
        if (actual.result !== expected.result)
          return `result ${actual.result} != ${expected.result}`;
        if (callerAfter !== callerExpected)
          return `caller rows ${callerAfter} != ${callerExpected}`;
        if (
          actual.result.includes('"tenant_id\\":\\"') &&
          others.some((o) => actual.result.includes(o))
        ) {
          return 'result holds another tenant id';
        }
      }
      return undefined;
    } finally {
      await trx.rollback().catch(() => undefined);
    }
  });
  if (failure !== undefined) {
    throw new Error(`${caller} ${JSON.stringify(shape)}: ${failure}`);
  }
}

describe('row mode isolation property', function () {
  this.timeout(120_000);
  let knex: Knex;
  let db: TenantKnex;

  before(async () => {
    ({ knex } = await createRowFixture({ pool: { min: 1, max: 2 } }));
    await knex('comments').update({ id: knex.raw('id + 10') });
    await knex('documents').insert(
      [1, 2, 3].map((id) => ({
        tenant_id: 'initech',
        id,
        title: ['alpha', 'beta', 'gamma'][id - 1],
        slug: 'abc'[id - 1],
        views: id,
      })),
    );
    await knex('comments').insert(
      [11, 12, 13].map((id) => ({
        tenant_id: 'initech',
        id,
        document_id: id === 13 ? 2 : 1,
        body: 'x',
      })),
    );
    db = withTenancy(knex, {
      tenantTables: ['documents', 'comments'],
      sharedTables: ['countries'],
    });
  });

  it(`keeps every generated statement inside the caller's tenant (${RUNS} seeded cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(queryShape, fc.constantFrom(...TENANTS), (shape, caller) =>
        checkCase(db, shape, caller),
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // Refusing is always safe, so make sure the property mostly compares real results.
    expect(stats.refused, JSON.stringify(stats)).to.be.below(RUNS * 0.1);
  });

  const property = () =>
    fc.asyncProperty(queryShape, fc.constantFrom(...TENANTS), (shape, caller) =>
      checkCase(db, shape, caller),
    );

  it('fails when the rewrite and the verifier are both switched off (mutation check)', async () => {
    setScopingDisabledForMutationTest(true);
    setVerifierDisabledForMutationTest(true);
    let details: fc.RunDetails<[QueryShape, (typeof TENANTS)[number]]>;
    try {
      details = await fc.check(property(), { numRuns: 200, seed: SEED, endOnFailure: true });
    } finally {
      setScopingDisabledForMutationTest(false);
      setVerifierDisabledForMutationTest(false);
    }
    expect(details.failed, 'the property must catch unscoped statements').to.equal(true);
  });

  it('holds with the rewrite switched off: the verifier alone refuses every unscoped statement', async () => {
    setScopingDisabledForMutationTest(true);
    const before = { ...stats };
    try {
      await fc.assert(property(), { numRuns: 300, seed: SEED + 1, endOnFailure: true });
    } finally {
      setScopingDisabledForMutationTest(false);
    }
    // Without the rewrite nearly everything on a tenant table is refused, and nothing leaks.
    const refused = stats.refused + stats.mustRefuse - before.refused - before.mustRefuse;
    expect(refused, JSON.stringify(stats)).to.be.above(200);
  });
});
