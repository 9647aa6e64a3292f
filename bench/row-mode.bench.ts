/**
 * Row mode overhead: the same statements through withTenancy() versus
 * hand-written `.where('tenant_id', id)` on plain Knex, in one run, against
 * PostgreSQL, in interleaved rounds. Prints the latency ratio (goal <= 1.03)
 * and the compile overhead per statement (toSQL() on both) in microseconds.
 *
 *   npm run build:test && node build/bench/row-mode.bench.js
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node build/bench/row-mode.bench.js
 */
import 'reflect-metadata';
import knexFactory, { type Knex } from 'knex';
import { runWithTenant, withTenancy } from '../src/index';
import { setScopingDisabledForMutationTest } from '../src/isolation/statement-scoper';
import { openBenchDatabase } from './load/bench-database';
import { interleave, line, microsPerCall } from './support/interleaved';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 500);
const TENANTS = ['acme', 'globex', 'initech', 'umbrella'];
const tenant = (i: number): string => TENANTS[i % TENANTS.length] as string;

/** Runs call i's statement inside its tenant's scope, as a request would. */
const inTenant = (i: number, fn: () => PromiseLike<unknown>): Promise<unknown> =>
  runWithTenant(tenant(i), async () => await fn());

async function main(): Promise<void> {
  const database = await openBenchDatabase('rowbench');
  const knex = knexFactory({ client: 'pg', connection: database.url, pool: { min: 1, max: 4 } });
  try {
    await knex.raw(`
      create table documents (tenant_id text not null, id integer not null, title text not null, views integer not null default 0, primary key (tenant_id, id));
      create table comments (tenant_id text not null, id integer not null, document_id integer not null, primary key (tenant_id, id));
    `);
    for (const t of TENANTS) {
      await knex.batchInsert(
        'documents',
        Array.from({ length: 500 }, (_, i) => ({ tenant_id: t, id: i, title: `d${i}` })),
        500,
      );
      await knex.batchInsert(
        'comments',
        Array.from({ length: 1000 }, (_, i) => ({ tenant_id: t, id: i, document_id: i % 500 })),
        500,
      );
    }
    await knex.raw('analyze');
    const db = withTenancy(knex, { tenantTables: ['documents', 'comments'] });

    const shapes: Array<{
      name: string;
      scoped: (k: Knex, i: number) => Knex.QueryBuilder;
      manual: (k: Knex, t: string, i: number) => Knex.QueryBuilder;
    }> = [
      {
        name: 'select by id',
        scoped: (k, i) =>
          k('documents')
            .where({ id: i % 500 })
            .first(),
        manual: (k, t, i) =>
          k('documents')
            .where({ id: i % 500 })
            .where('tenant_id', t)
            .first(),
      },
      {
        name: 'list + order + limit',
        scoped: (k) => k('documents').where('views', '>=', 0).orderBy('id').limit(20),
        manual: (k, t) =>
          k('documents').where('views', '>=', 0).where('tenant_id', t).orderBy('id').limit(20),
      },
      {
        name: 'join',
        scoped: (k, i) =>
          k('documents')
            .join('comments', 'comments.document_id', 'documents.id')
            .where('documents.id', i % 500),
        manual: (k, t, i) =>
          k('documents')
            .join('comments', 'comments.document_id', 'documents.id')
            .where('documents.id', i % 500)
            .where('documents.tenant_id', t)
            .where('comments.tenant_id', t),
      },
      {
        name: 'update',
        scoped: (k, i) =>
          k('documents')
            .where({ id: i % 500 })
            .increment('views', 1),
        manual: (k, t, i) =>
          k('documents')
            .where({ id: i % 500 })
            .where('tenant_id', t)
            .increment('views', 1),
      },
    ];

    console.log(
      `row mode: withTenancy vs hand-written where (${ROUNDS} interleaved rounds x ${PER_ROUND} sequential statements)`,
    );
    let sumScoped = 0;
    let sumManual = 0;
    for (const shape of shapes) {
      const [manual, scoped] = await interleave(
        [
          // Both run inside runWithTenant(): a real request always has a scope; only the scoping differs.
          {
            name: `${shape.name} (plain knex)`,
            run: (i) => inTenant(i, () => shape.manual(knex, tenant(i), i)),
          },
          {
            name: `${shape.name} (withTenancy)`,
            run: (i) => inTenant(i, () => shape.scoped(db, i)),
          },
        ],
        ROUNDS,
        PER_ROUND,
      );
      if (!manual || !scoped) throw new Error('missing timing');
      sumScoped += scoped.medianUs;
      sumManual += manual.medianUs;
      // Both inside runWithTenant(), as in the timed runs: only the scoping differs.
      const compileManual = microsPerCall(
        (i) => runWithTenant(tenant(i), () => shape.manual(knex, tenant(i), i).toSQL()),
        20_000,
      );
      const compileScoped = microsPerCall(
        (i) => runWithTenant(tenant(i), () => shape.scoped(db, i).toSQL()),
        20_000,
      );
      console.log(line(manual));
      console.log(line(scoped));
      console.log(
        `  ratio (median) ${(scoped.medianUs / manual.medianUs).toFixed(3)}   compile: plain ${compileManual.toFixed(1)} µs, scoped ${compileScoped.toFixed(1)} µs, overhead ${(compileScoped - compileManual).toFixed(1)} µs/statement`,
      );
    }
    console.log(
      `row mode overall latency ratio (sum of medians): ${(sumScoped / sumManual).toFixed(3)} (goal <= 1.03)`,
    );
    await decompose(knex, db);
  } finally {
    await knex.destroy();
    await database.close();
  }
}

/**
 * Where the gap of the simplest statement goes, four variants alternating
 * call by call: hand-written; hand-written with the tenant column qualified
 * as tenantry writes it; the same qualified statement through withTenancy()
 * with the scoping switched off (the scoped client's own layers: scope
 * capture at build and run, the compiler subclass, the checkout and query
 * hooks); withTenancy() as shipped.
 */
async function decompose(knex: Knex, db: Knex): Promise<void> {
  const rounds = Number(process.env.BENCH_DECOMPOSE_ROUNDS ?? 20);
  const qualified = (k: Knex, i: number) =>
    k('documents')
      .where({ id: i % 500 })
      .where('documents.tenant_id', tenant(i))
      .first();
  const timings = await interleave(
    [
      {
        name: 'hand-written',
        run: (i) =>
          inTenant(i, () =>
            knex('documents')
              .where({ id: i % 500 })
              .where('tenant_id', tenant(i))
              .first(),
          ),
      },
      { name: '+ qualified tenant column', run: (i) => inTenant(i, () => qualified(knex, i)) },
      {
        name: '+ withTenancy client, no scoping',
        run: async (i) => {
          setScopingDisabledForMutationTest(true);
          try {
            return await inTenant(i, () => qualified(db, i));
          } finally {
            setScopingDisabledForMutationTest(false);
          }
        },
      },
      {
        name: '+ scoping (withTenancy)',
        run: (i) =>
          inTenant(i, () =>
            db('documents')
              .where({ id: i % 500 })
              .first(),
          ),
      },
    ],
    rounds,
    PER_ROUND,
  );
  const base = (timings[0] as (typeof timings)[number]).medianUs;
  console.log(
    `where the gap goes (select by id, ${rounds} x ${PER_ROUND} calls of each, alternating):`,
  );
  for (const t of timings) console.log(`${line(t)}  ratio ${(t.medianUs / base).toFixed(3)}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
