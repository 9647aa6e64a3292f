/**
 * Schema mode per-request cost at a few versus many tenant schemas: a
 * request-like unit (runWithTenant + a select by id + a short list, tenant
 * rotating per request) against a database holding SCHEMA_BENCH_SMALL (10)
 * tenant schemas and one holding SCHEMA_BENCH_LARGE (1,000), same server,
 * interleaved rounds, one run. Prints the latency ratio large / small twice:
 * first with the tenants' first visits included (each pooled PostgreSQL
 * backend builds its catalog-cache entries for a schema's tables the first
 * time it touches them, a one-time cost per connection and schema), then in
 * steady state, after every tenant has been visited twice (goal <= 1.1: the
 * per-request cost must not grow with the number of tenants).
 *
 *   npm run build:test && node build/bench/schema-mode.bench.js
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node build/bench/schema-mode.bench.js
 *   SCHEMA_BENCH_SMALL=10 SCHEMA_BENCH_LARGE=1000 BENCH_ROUNDS=6 BENCH_PER_ROUND=400 ...
 */
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import type { Knex } from 'knex';
import { runWithTenant, withTenancy, type TenantKnex } from '../src/index';
import { openBenchDatabase } from './load/bench-database';
import { benchKnexes, interleave, line } from './support/interleaved';

const SMALL = Number(process.env.SCHEMA_BENCH_SMALL ?? 10);
const LARGE = Number(process.env.SCHEMA_BENCH_LARGE ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 400);
const ROWS = 50;

const tenantId = (i: number): string => `t${String(i).padStart(5, '0')}`;

async function createSchemas(knex: Knex, count: number): Promise<void> {
  const batch = 50;
  for (let start = 0; start < count; start += batch) {
    const sql: string[] = [];
    for (let i = start; i < Math.min(count, start + batch); i += 1) {
      const schema = `"tenant_${tenantId(i)}"`;
      sql.push(
        `create schema ${schema}`,
        `create table ${schema}.documents (id integer primary key, title text not null, views integer not null default 0)`,
        `insert into ${schema}.documents (id, title) select g, 'd' || g from generate_series(1, ${ROWS}) g`,
      );
    }
    await knex.raw(sql.join(';\n'));
  }
  await knex.raw('analyze');
}

function request(db: TenantKnex, count: number) {
  return (i: number): Promise<unknown> =>
    runWithTenant(tenantId((i * 7919) % count), async () => {
      await db('documents')
        .where({ id: (i % ROWS) + 1 })
        .first();
      await db('documents').where('views', '>=', 0).orderBy('id').limit(10);
    });
}

async function main(): Promise<void> {
  const database = await openBenchDatabase('schemabench');
  const smallName = decodeURIComponent(new URL(database.url).pathname.slice(1));
  const largeName = `${smallName}_large`;
  const { open, destroyAll } = benchKnexes();
  try {
    await database.admin(`create database "${largeName}"`);
    const small = open(database.url);
    const large = open(database.urlFor(largeName));
    const t0 = performance.now();
    await createSchemas(small, SMALL);
    await createSchemas(large, LARGE);
    console.log(
      `created ${SMALL} + ${LARGE} tenant schemas in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const options = { mode: 'schema' as const, tenantTables: ['documents'] };
    const dbSmall = withTenancy(small, options);
    const dbLarge = withTenancy(large, options);
    console.log(
      `schema mode: request (runWithTenant + 2 statements, tenant rotating over all schemas), ${ROUNDS} interleaved rounds x ${PER_ROUND}`,
    );
    const variants = [
      { name: `${SMALL} tenant schemas`, run: request(dbSmall, SMALL) },
      { name: `${LARGE} tenant schemas`, run: request(dbLarge, LARGE) },
    ];
    const measure = async (phase: string): Promise<number> => {
      const [timingSmall, timingLarge] = await interleave(variants, ROUNDS, PER_ROUND);
      if (!timingSmall || !timingLarge) throw new Error('missing timing');
      console.log(phase);
      console.log(line(timingSmall));
      console.log(line(timingLarge));
      const ratio = timingLarge.medianUs / timingSmall.medianUs;
      console.log(
        `  ratio ${LARGE} / ${SMALL} tenants (median) ${ratio.toFixed(3)}; mean ratio ${(timingLarge.meanUs / timingSmall.meanUs).toFixed(3)}`,
      );
      return ratio;
    };
    await measure(
      "first visits included (most of the large side's tenants are new to the connection):",
    );
    for (let i = 0; i < LARGE * 2; i += 1) {
      for (const v of variants) await v.run(i);
    }
    const steady = await measure('steady state (every tenant visited twice more first):');
    console.log(
      `schema mode per-request ratio ${LARGE} / ${SMALL} tenants, steady state (median): ${steady.toFixed(3)} (goal <= 1.1)`,
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
