import { expect } from 'chai';
import type { Knex } from 'knex';
import { TenancyError, runWithTenant, withTenancy, type TenantKnex } from '../../../src/index';
import { createScratchDatabase, createTestKnex } from '../../support/test-database';
import { setScopingDisabledForMutationTest } from '../../../src/isolation/statement-scoper';
import { setVerifierDisabledForMutationTest } from '../../../src/isolation/verifier/final-sql-verifier';
import { CORPUS, NOT_CARRIERS, type CorpusCase } from './knex-corpus';
import { KNEX_INTERFACES, knexDeclaredMethods } from './knex-methods';
import { REFUSAL_RULES, refusalRule } from './refusal-rules';

const TENANT_TABLES = ['documents', 'comments'];

type Mode = 'row' | 'schema';

function tenantTablesSql(schema: string, tenantDefault: string | undefined): string {
  const tenant =
    tenantDefault === undefined ? 'text not null' : `text not null default '${tenantDefault}'`;
  return `
    create table ${schema}.documents (tenant_id ${tenant}, id integer not null, title text not null,
      views integer not null default 0, tags jsonb, country text, primary key (tenant_id, id));
    create table ${schema}.comments (tenant_id ${tenant}, id integer not null, document_id integer not null,
      body text not null, primary key (tenant_id, id));
  `;
}

/**
 * The corpus database: row mode keeps both tenants in public; schema mode
 * keeps them in tenant_acme / tenant_globex, with decoy rows in public (a
 * statement that falls through to public returns "public:" rows). The
 * oracle's database holds the caller's (acme's) rows only, in public.
 */
function schemaSql(mode: Mode | 'oracle'): string {
  const tenants =
    mode === 'schema'
      ? `create schema tenant_acme; ${tenantTablesSql('tenant_acme', 'acme')}
         ${tenantTablesSql('tenant_globex', 'globex')} ${tenantTablesSql('public', 'public')}`
      : tenantTablesSql('public', mode === 'oracle' ? 'acme' : undefined);
  return `
    create table countries (code text primary key, name text not null);
    create table secrets (v text);
    create schema tenant_globex;
    create table tenant_globex.notes (v text);
    create function run_sql(q text) returns bigint language plpgsql as $$
      declare n bigint; begin execute q into n; return n; end $$;
    ${tenants}
  `;
}

function rowsSql(t: string, schema: string): string {
  return `
    delete from ${schema}.documents where tenant_id = '${t}';
    delete from ${schema}.comments where tenant_id = '${t}';
    insert into ${schema}.documents values
      ('${t}', 1, '${t}:a', 1, '{"a": 1}', 'fr'), ('${t}', 2, '${t}:b', 2, '{"a": 2, "b": 2}', 'de'),
      ('${t}', 3, '${t}:c', 3, '{"a": 1, "b": 2}', null), ('${t}', 4, '${t}:d', 4, null, 'fr');
    insert into ${schema}.comments values ('${t}', 1, 1, '${t}:one'), ('${t}', 2, 1, '${t}:two'),
      ('${t}', 3, 2, '${t}:three'), ('${t}', 4, 9, '${t}:orphan');`;
}

function seedSql(mode: Mode | 'oracle'): string {
  const rows =
    mode === 'schema'
      ? `delete from tenant_acme.documents; delete from tenant_acme.comments;
         delete from tenant_globex.documents; delete from tenant_globex.comments;
         ${rowsSql('acme', 'tenant_acme')} ${rowsSql('globex', 'tenant_globex')} ${rowsSql('public', 'public')}`
      : `delete from documents; delete from comments; ${rowsSql('acme', 'public')}
         ${mode === 'row' ? rowsSql('globex', 'public') : ''}`;
  return `
    delete from countries; delete from secrets; delete from tenant_globex.notes;
    insert into countries values ('fr', 'France'), ('de', 'Germany');
    insert into secrets values ('secret');
    insert into tenant_globex.notes values ('globex-note');
    ${rows}
  `;
}

type Outcome =
  | { kind: 'ok'; result: string }
  | { kind: 'refused'; code: string; message: string }
  | { kind: 'error'; error: unknown; message: string };

/** A result as text, independent of row order and key order. */
function normalize(value: unknown): string {
  let v = value;
  if (typeof v === 'object' && v !== null && 'rows' in v && 'command' in v) {
    v = (v as { rows: unknown }).rows;
  }
  const sortKeys = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(sortKeys);
    if (typeof x === 'object' && x !== null) {
      return Object.fromEntries(
        Object.keys(x)
          .sort()
          .map((key) => [key, sortKeys((x as Record<string, unknown>)[key])]),
      );
    }
    return x;
  };
  if (Array.isArray(v)) return JSON.stringify(v.map((r) => JSON.stringify(sortKeys(r))).sort());
  return JSON.stringify(sortKeys(v) ?? null);
}

async function outcome(run: () => PromiseLike<unknown>): Promise<Outcome> {
  try {
    return { kind: 'ok', result: normalize(await run()) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (
      error instanceof TenancyError &&
      (error.code === 'UNSAFE_QUERY' || error.code === 'TENANT_SCOPE_REQUIRED')
    ) {
      return { kind: 'refused', code: error.code, message };
    }
    return { kind: 'error', error, message };
  }
}

interface CaseReport {
  readonly c: CorpusCase;
  readonly outcome: Outcome;
  readonly problems: string[];
  rule?: string;
}

for (const mode of ['row', 'schema'] as const) describeCorpus(mode);

function describeCorpus(mode: Mode): void {
  describe(`knex corpus through withTenancy() (${mode} mode, two tenants)`, function () {
    this.timeout(180_000);
    let base: Knex;
    let oracle: Knex;
    let db: TenantKnex;
    let shared: TenantKnex;
    const reports: CaseReport[] = [];

    async function rows(
      knex: Knex,
      table: string,
      schema?: string,
      tenant?: string,
    ): Promise<unknown> {
      const q: Knex.QueryBuilder =
        schema === undefined ? knex(table) : knex.withSchema(schema).from(table);
      if (tenant !== undefined) q.where('tenant_id', tenant);
      return q.select('*').orderByRaw(table === 'notes' ? '1' : '1, 2');
    }

    /** The caller's rows (acme) of the tenant tables, and of the shared table when asked. */
    async function own(withShared = false): Promise<string> {
      const out: unknown[] = [];
      for (const table of TENANT_TABLES) {
        out.push(
          await (mode === 'row'
            ? rows(base, table, undefined, 'acme')
            : rows(base, table, 'tenant_acme')),
        );
      }
      if (withShared) out.push(await rows(base, 'countries'));
      return JSON.stringify(out);
    }

    /** Rows no statement of acme may change: globex's (and the public decoys in schema mode). */
    async function others(): Promise<string> {
      const out: unknown[] = [await rows(base, 'notes', 'tenant_globex')];
      for (const table of TENANT_TABLES) {
        if (mode === 'row') out.push(await rows(base, table, undefined, 'globex'));
        else out.push(await rows(base, table, 'tenant_globex'), await rows(base, table, 'public'));
      }
      return JSON.stringify(out);
    }

    async function oracleRows(): Promise<string> {
      const out: unknown[] = [];
      for (const table of TENANT_TABLES) out.push(await rows(oracle, table));
      out.push(await rows(oracle, 'countries'));
      return JSON.stringify(out);
    }

    const leaked = (result: string) =>
      result.includes('globex') || (mode === 'schema' && result.includes('public:'));

    /** Same failure without tenantry: same error class and PostgreSQL code, or same message. */
    function sameError(a: Outcome, b: Outcome): boolean {
      if (a.kind !== 'error' || b.kind !== 'error') return false;
      const code = (e: unknown) => (e as { code?: unknown }).code;
      const name = (e: unknown) => (e instanceof Error ? e.constructor.name : typeof e);
      if (name(a.error) !== name(b.error)) return false;
      return code(a.error) !== undefined
        ? code(a.error) === code(b.error)
        : a.message === b.message;
    }

    /** Runs one case in tenant scope and checks it against both tenants' rows and the oracle. */
    async function check(c: CorpusCase): Promise<CaseReport> {
      if (c.write) {
        await base.raw(seedSql(mode));
        await oracle.raw(seedSql('oracle'));
      }
      const before = { own: await own(), others: await others() };
      const instance = c.instance === 'shared' ? shared : db;
      const got = await outcome(() => runWithTenant('acme', async () => await c.build(instance)));
      const after = { own: await own(), others: await others() };
      const report: CaseReport = { c, outcome: got, problems: [] };
      if (after.others !== before.others) {
        report.problems.push("LEAK: another tenant's rows changed");
      }
      const mustRefuse = c.refuse === true || c.refuse === mode;
      if (got.kind === 'ok') {
        if (leaked(got.result))
          report.problems.push(`LEAK: another tenant's data in ${got.result}`);
        if (mustRefuse) report.problems.push(`expected a refusal, got ${got.result.slice(0, 200)}`);
        const expected = await outcome(() => c.build(oracle));
        if (expected.kind !== 'ok') {
          report.problems.push(
            `oracle failed: ${expected.kind === 'error' ? expected.message : ''}`,
          );
        } else if (expected.result !== got.result) {
          report.problems.push(
            `result differs from the oracle: ${got.result.slice(0, 300)} vs ${expected.result.slice(0, 300)}`,
          );
        } else if (c.write && (await oracleRows()) !== (await own(true))) {
          report.problems.push("the caller tenant's rows differ from the oracle's after the write");
        }
      } else if (got.kind === 'refused') {
        if (after.own !== before.own) report.problems.push('a refused statement changed rows');
        const rule = refusalRule(got.message);
        if (rule === undefined) {
          report.problems.push(`refusal mapped to no documented rule: ${got.message}`);
        } else {
          report.rule = rule.id;
        }
      } else {
        // Not a refusal: acceptable only when plain Knex on the oracle fails the same way.
        const expected = await outcome(() => c.build(oracle));
        if (!sameError(got, expected)) {
          report.problems.push(
            `CRASH: ${got.error instanceof Error ? got.error.constructor.name : ''} ${got.message}`,
          );
        }
      }
      return report;
    }

    before(async () => {
      const main = await createScratchDatabase(`corpus_${mode}`);
      const alone = await createScratchDatabase(`oracle_${mode}`);
      base = createTestKnex({ pool: { min: 0, max: 2 } }, main);
      oracle = createTestKnex({ pool: { min: 0, max: 1 } }, alone);
      await base.raw(schemaSql(mode));
      await oracle.raw(schemaSql('oracle'));
      await base.raw(seedSql(mode));
      await oracle.raw(seedSql('oracle'));
      const options = { mode, tenantTables: TENANT_TABLES, sharedTables: ['countries'] };
      db = withTenancy(base, options);
      shared = withTenancy(base, { ...options, unknownTables: 'shared' });
    });

    if (mode === 'row')
      it('covers every builder method of the Knex type declarations', () => {
        const declared = knexDeclaredMethods();
        const covered = new Set(CORPUS.flatMap((c) => c.methods));
        const missing: string[] = [];
        for (const iface of KNEX_INTERFACES) {
          const prefix = iface === 'QueryBuilder' ? '' : `${iface}.`;
          expect(declared[iface].length, iface).to.be.greaterThan(0);
          for (const name of declared[iface]) {
            if (!covered.has(`${prefix}${name}`) && NOT_CARRIERS[iface][name] === undefined) {
              missing.push(`${prefix}${name}`);
            }
          }
          for (const name of Object.keys(NOT_CARRIERS[iface])) {
            expect(declared[iface], `stale NOT_CARRIERS entry ${name}`).to.include(name);
          }
        }
        const known = new Set(
          KNEX_INTERFACES.flatMap((i) =>
            declared[i].map((n) => (i === 'QueryBuilder' ? n : `${i}.${n}`)),
          ),
        );
        const stale = [...covered].filter((m) => !known.has(m));
        expect(missing, 'declared methods with no corpus case').to.deep.equal([]);
        expect(stale, 'corpus methods Knex does not declare').to.deep.equal([]);
        expect(new Set(CORPUS.map((c) => c.id)).size, 'unique case ids').to.equal(CORPUS.length);
      });

    it('sends no statement unscoped, crashes on none, and answers exactly like a one-tenant database', async () => {
      for (const c of CORPUS) reports.push(await check(c));

      // ---- the report ----
      const plain = reports.filter((r) => r.c.attack === undefined);
      const refused = plain.filter((r) => r.outcome.kind === 'refused');
      const attacks = reports.filter((r) => r.c.attack !== undefined);
      const byRule = new Map<string, string[]>();
      for (const r of reports) {
        if (r.rule === undefined) continue;
        byRule.set(r.rule, [...(byRule.get(r.rule) ?? []), r.c.id]);
      }
      const lines = [
        '',
        `    knex corpus: ${reports.length} statements (${plain.length} builder forms, ${attacks.length} attacks)`,
        `    builder forms: ${plain.length - refused.length} sent and scoped, ${refused.length} refused ` +
          `(${((100 * refused.length) / plain.length).toFixed(1)} %)`,
        `    attacks: ${attacks.filter((r) => r.outcome.kind === 'refused').length} refused, ` +
          `${attacks.filter((r) => r.outcome.kind === 'ok').length} sent and scoped like the oracle`,
        '    refusals by rule (builder forms / attacks):',
      ];
      for (const rule of REFUSAL_RULES) {
        const ids = byRule.get(rule.id);
        if (ids === undefined) continue;
        const own = ids.filter((id) => plain.some((r) => r.c.id === id));
        lines.push(
          `      ${rule.id.padEnd(32)} ${String(own.length).padStart(3)} / ${String(ids.length - own.length).padStart(3)}` +
            (own.length > 0 ? `   ${own.join('; ')}` : ''),
        );
      }
      const nonRefused = reports.filter((r) => r.outcome.kind === 'error');
      if (nonRefused.length > 0) {
        lines.push(
          `    failed in knex itself (same error without tenantry): ${nonRefused.map((r) => r.c.id).join('; ')}`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);

      const problems = reports.flatMap((r) => r.problems.map((p) => `${r.c.id}: ${p}`));
      expect(problems).to.deep.equal([]);
      expect(refused.length / plain.length, 'refused share of the builder forms').to.be.at.most(
        0.05,
      );
    });

    describe('mutation check: the corpus detects an engine that does not scope', () => {
      afterEach(() => {
        setScopingDisabledForMutationTest(false);
        setVerifierDisabledForMutationTest(false);
      });

      it('with the rewrite off, the verifier alone lets no statement leak', async () => {
        setScopingDisabledForMutationTest(true);
        const leaks: string[] = [];
        for (const c of CORPUS) {
          const r = await check(c);
          leaks.push(...r.problems.filter((p) => p.startsWith('LEAK')).map((p) => `${c.id}: ${p}`));
        }
        expect(leaks).to.deep.equal([]);
      });

      it('with the rewrite and the verifier off, the corpus reports leaks', async () => {
        setScopingDisabledForMutationTest(true);
        setVerifierDisabledForMutationTest(true);
        let leaks = 0;
        for (const c of CORPUS) {
          const r = await check(c);
          if (r.problems.some((p) => p.startsWith('LEAK'))) leaks++;
        }
        expect(leaks).to.be.greaterThan(CORPUS.length / 4);
      });
    });

    if (mode === 'row')
      describe('lazy builders across scopes (class 10)', () => {
        beforeEach(() => base.raw(seedSql(mode)));

        it('a builder built in one tenant and awaited concurrently from two scopes never gives the second tenant its rows', async () => {
          const q = runWithTenant('acme', () => db('documents').select('title').orderBy('id'));
          const [a, b] = await Promise.all([
            outcome(() => runWithTenant('acme', async () => await q)),
            outcome(() => runWithTenant('globex', async () => await q)),
          ]);
          expect(a.kind === 'ok' && JSON.parse(a.result)).to.deep.equal(
            ['a', 'b', 'c', 'd'].map((x) => JSON.stringify({ title: `acme:${x}` })).sort(),
          );
          expect(b.kind === 'refused' ? b.code : b).to.equal('TENANT_SCOPE_REQUIRED');
        });

        it('a builder built in one tenant, awaited concurrently outside any scope and from another tenant, runs only as its own tenant', async () => {
          const q = runWithTenant('acme', () => db('documents').select('title'));
          const [lazy, other] = await Promise.all([
            outcome(async () => await q),
            outcome(() => runWithTenant('globex', async () => await q)),
          ]);
          expect(lazy.kind === 'ok' && JSON.parse(lazy.result)).to.deep.equal(
            ['a', 'b', 'c', 'd'].map((x) => JSON.stringify({ title: `acme:${x}` })).sort(),
          );
          expect(other.kind === 'refused' ? other.code : other).to.equal('TENANT_SCOPE_REQUIRED');
        });

        it('a builder built outside any scope is refused when awaited from two tenants at once (it has no tenant)', async () => {
          const q = db('documents').select('title');
          const got = await Promise.all(
            ['acme', 'globex'].map((t) => outcome(() => runWithTenant(t, async () => await q))),
          );
          expect(got.map((o) => (o.kind === 'refused' ? o.code : o.kind))).to.deep.equal([
            'TENANT_SCOPE_REQUIRED',
            'TENANT_SCOPE_REQUIRED',
          ]);
        });

        it("a builder of another tenant bound into a raw is refused, never run with the other tenant's filter", async () => {
          const foreign = runWithTenant('globex', () => db('documents').select('id'));
          const got = await outcome(() =>
            runWithTenant(
              'acme',
              async () => await db.raw('select code from countries where exists (?)', [foreign]),
            ),
          );
          expect(got.kind, JSON.stringify(got)).to.equal('refused');
          const subquery = await outcome(() =>
            runWithTenant('acme', async () => await db('countries').whereExists(foreign)),
          );
          expect(subquery.kind, JSON.stringify(subquery)).to.equal('refused');
        });
      });
  });
}
