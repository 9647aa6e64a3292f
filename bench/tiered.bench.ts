/**
 * Tiered tenancy's routing cost: the same row-tier request (runWithTenant +
 * a select by id + a short list, tenant rotating) through a single-mode row
 * `withTenancy()` and through a tiered one (`tiers: true`) whose tenants are
 * on the row tier, same database and tables, interleaved rounds, one run.
 * Prints the latency ratio tiered / single (goal <= 1.03: routing by tier
 * adds one record read and one proxy hop per call).
 *
 *   npm run build:test && node build/bench/tiered.bench.js
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test BENCH_ROUNDS=6 BENCH_PER_ROUND=400 node build/bench/tiered.bench.js
 */
import 'reflect-metadata';
import { runWithTenant, withTenancy, type TenantKnex, type TenantRecord } from '../src/index';
import { openBenchDatabase } from './load/bench-database';
import { benchKnexes, interleave, line } from './support/interleaved';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 400);
const TENANTS = 20;
const ROWS = 50;

const records: TenantRecord[] = Array.from({ length: TENANTS }, (_, i) => ({
  id: `t${String(i).padStart(3, '0')}`,
  name: `t${i}`,
  status: 'active',
  isolation: { tier: 'row' },
  config: {},
}));

function request(db: TenantKnex) {
  return (i: number): Promise<unknown> =>
    runWithTenant(records[(i * 7919) % TENANTS] as TenantRecord, async () => {
      await db('documents')
        .where({ id: (i % ROWS) + 1 })
        .first();
      await db('documents').where('views', '>=', 0).orderBy('id').limit(10);
    });
}

async function main(): Promise<void> {
  const database = await openBenchDatabase('tieredbench');
  const { open, destroyAll } = benchKnexes();
  try {
    const knex = open(database.url);
    await knex.raw(
      `create table documents (tenant_id text not null, id integer not null, title text not null,
         views integer not null default 0, primary key (tenant_id, id));
       insert into documents (tenant_id, id, title)
         select 't' || lpad(t::text, 3, '0'), g, 'd' || g from generate_series(0, ${TENANTS - 1}) t, generate_series(1, ${ROWS}) g;
       analyze`,
    );
    const options = { mode: 'row' as const, tenantTables: ['documents'] };
    const single = withTenancy(knex, options);
    const tiered = withTenancy(knex, { ...options, tiers: true });
    console.log(
      `tiered vs single row mode: request (runWithTenant + 2 statements), ${ROUNDS} interleaved rounds x ${PER_ROUND}`,
    );
    const [a, b] = await interleave(
      [
        { name: 'row mode (single)', run: request(single) },
        { name: 'row tier (tiers: true)', run: request(tiered) },
      ],
      ROUNDS,
      PER_ROUND,
    );
    if (!a || !b) throw new Error('missing timing');
    console.log(line(a));
    console.log(line(b));
    console.log(
      `tiered / single row-mode request latency (median): ${(b.medianUs / a.medianUs).toFixed(3)}; mean ratio ${(b.meanUs / a.meanUs).toFixed(3)} (goal <= 1.03)`,
    );
  } finally {
    await destroyAll();
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
