/**
 * Serving N tenant databases within a connection budget (database mode).
 * TENANTRY_BENCH_DATABASES (default 500), TENANTRY_BENCH_BUDGET (default 50),
 * TENANTRY_BENCH_REQUESTS (default 2000), TENANTRY_BENCH_DATABASE_URL (a server
 * to use; default: an embedded PostgreSQL started for the run). Every tenant
 * database is named after the run's own database and dropped with it, even
 * when the run fails.
 * Reports p50/p99 for warm tenants (pool open) and cold tenants (pool evicted),
 * against a single plain Knex pool of the same size as the baseline.
 */
import knexFactory from 'knex';
import { createDatabaseTenantKnex, runWithTenant, type TenantRecord } from '../src/index';
import { openBenchDatabase } from './load/bench-database';

const N = Number(process.env.TENANTRY_BENCH_DATABASES ?? 500);
const BUDGET = Number(process.env.TENANTRY_BENCH_BUDGET ?? 50);
const REQUESTS = Number(process.env.TENANTRY_BENCH_REQUESTS ?? 2000);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return +(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0).toFixed(2);
};

const failures: Record<string, number> = {};

async function timed(
  n: number,
  concurrency: number,
  fn: (i: number) => Promise<unknown>,
): Promise<number[]> {
  const times: number[] = [];
  let i = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (i < n) {
        const k = i++;
        const t0 = performance.now();
        try {
          await fn(k);
          times.push(performance.now() - t0);
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'ERROR';
          failures[code] = (failures[code] ?? 0) + 1;
        }
      }
    }),
  );
  return times;
}

async function main() {
  const server = await openBenchDatabase('dbmode');
  const prefix = `${new URL(server.url).pathname.slice(1)}_t`;
  const admin = knexFactory({ client: 'pg', connection: server.url, pool: { min: 0, max: 4 } });
  const tenants: TenantRecord[] = Array.from({ length: N }, (_, i) => ({
    id: `t${i}`,
    name: `t${i}`,
    status: 'active',
    config: {},
    isolation: { database: { database: `${prefix}${i}` } },
  }));
  try {
    const created = performance.now();
    let i = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (i < N) await admin.raw('create database ??', [`${prefix}${i++}`]);
      }),
    );
    const createSeconds = +((performance.now() - created) / 1000).toFixed(1);
    const plain = knexFactory({
      client: 'pg',
      connection: server.url,
      pool: { min: 0, max: BUDGET },
    });
    const plainRound = () => timed(REQUESTS, 32, () => plain.raw('select 1'));
    await plain.raw('select 1');
    // The baseline runs before and after the tenant rounds, so a server still
    // busy from creating the databases does not favour either side.
    const baselineBefore = await plainRound();
    const db = createDatabaseTenantKnex(admin, {
      database: { connectionBudget: BUDGET, maxPools: 100, maxConnectionsPerTenant: 2 },
    });
    const q = (t: TenantRecord) => runWithTenant(t, () => db.raw('select 1'));
    const hot = tenants.slice(0, 20);
    await Promise.all(hot.map(q)); // warm up
    const warm = await timed(REQUESTS, 32, (k) => q(hot[k % hot.length]!));
    // Cold: every request goes to a tenant whose pool is not open (round-robin over all N > maxPools).
    const cold = await timed(REQUESTS, 32, (k) => q(tenants[20 + ((k * 7) % (N - 20))]!));
    const peakSeen = db.tenantPools.stats().peakConnections;
    await db.destroy();
    const baseline = [...baselineBefore, ...(await plainRound())];
    await plain.destroy();
    console.log(
      JSON.stringify({
        bench: 'database-mode',
        server: server.kind,
        databases: N,
        createSeconds,
        budget: BUDGET,
        requests: REQUESTS,
        concurrency: 32,
        warm: { p50: pct(warm, 50), p99: pct(warm, 99) },
        cold: { p50: pct(cold, 50), p99: pct(cold, 99) },
        baselinePlainPool: { p50: pct(baseline, 50), p99: pct(baseline, 99) },
        warmVsBaselineP50: +(pct(warm, 50) / pct(baseline, 50)).toFixed(2),
        coldVsBaselineP50: +(pct(cold, 50) / pct(baseline, 50)).toFixed(2),
        failures,
        peakConnections: peakSeen,
        budgetRespected: peakSeen <= BUDGET,
      }),
    );
  } finally {
    await admin.destroy();
    // Drops the run's database and every tenant database named after it.
    await server.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
