/**
 * Tenant lookup cost: a warm CachedTenantStore versus the uncached
 * KnexTenantStore on PostgreSQL (the baseline, measured in the same run, in
 * interleaved rounds). Prints lookups/s of each, the speed-up, and store
 * round trips: SQL statements per lookup (store level) and per HTTP request
 * through resolveTenant() (request level). Warm, both must be 0.
 *
 *   node build/bench/tenant-lookup.bench.js
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node build/bench/tenant-lookup.bench.js
 *
 * Without TENANTRY_BENCH_DATABASE_URL it starts an embedded PostgreSQL.
 */
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import express from 'express';
import knexFactory from 'knex';
import {
  CachedTenantStore,
  KnexTenantStore,
  migrateCentral,
  requireTenant,
  resolveTenant,
  tenancyErrorHandler,
  type TenantStore,
} from '../src/index';
import { openBenchDatabase } from './load/bench-database';

const TENANTS = 1000;
const CONCURRENCY = 16;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MS = Number(process.env.BENCH_MS ?? 2000);
const HTTP_REQUESTS = 2000;

/** Runs `CONCURRENCY` lookup loops for `MS` milliseconds; returns lookups/s. */
async function lookups(store: TenantStore): Promise<{ perSecond: number; count: number }> {
  let count = 0;
  let misses = 0;
  const end = performance.now() + MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      let i = worker;
      while (performance.now() < end) {
        const found = await store.findById(`tenant-${i % TENANTS}`);
        if (found === undefined) misses += 1;
        count += 1;
        i += CONCURRENCY;
      }
    }),
  );
  if (misses > 0) throw new Error(`Lookup bench: ${misses} lookups found nothing.`);
  return { perSecond: count / ((performance.now() - started) / 1000), count };
}

async function main(): Promise<void> {
  const database = await openBenchDatabase('lookup');
  const knex = knexFactory({ client: 'pg', connection: database.url, pool: { min: 0, max: 10 } });
  let statements = 0;
  knex.on('query', () => {
    statements += 1;
  });
  try {
    await migrateCentral(knex);
    const uncached = new KnexTenantStore(knex);
    const rows = Array.from({ length: TENANTS }, (_, i) => ({
      id: `tenant-${i}`,
      name: `Tenant ${i}`,
    }));
    for (let i = 0; i < rows.length; i += 50) {
      await Promise.all(rows.slice(i, i + 50).map((t) => uncached.create(t)));
    }
    const cached = new CachedTenantStore(uncached, { ttlMs: 600_000, maxEntries: TENANTS * 2 });
    // Warm every entry once.
    for (const t of rows) await cached.findById(t.id);

    const base: number[] = [];
    const warm: number[] = [];
    let warmStatements = 0;
    let warmLookups = 0;
    for (let round = 1; round <= ROUNDS; round += 1) {
      const b = await lookups(uncached);
      base.push(b.perSecond);
      cached.resetStats();
      const before = statements;
      const w = await lookups(cached);
      warmStatements += statements - before;
      warmLookups += w.count;
      warm.push(w.perSecond);
      console.log(
        `round ${round}: uncached ${b.perSecond.toFixed(0)} lookups/s, warm cache ${w.perSecond.toFixed(0)} lookups/s (cache storeCalls ${cached.stats.storeCalls})`,
      );
    }

    // Request level: the real middleware, real HTTP on loopback, warm cache.
    const app = express();
    app.use(resolveTenant({ store: cached, strategies: ['header'] }));
    app.get('/', requireTenant(), (req, res) => {
      res.json({ tenant: req.tenant?.id });
    });
    app.use(tenancyErrorHandler());
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    const before = statements;
    let ok = 0;
    for (let i = 0; i < HTTP_REQUESTS; i += CONCURRENCY) {
      const batch = await Promise.all(
        Array.from({ length: CONCURRENCY }, (_, j) =>
          fetch(`http://127.0.0.1:${port}/`, {
            headers: { 'x-tenant-id': `tenant-${(i + j) % TENANTS}` },
          }),
        ),
      );
      ok += batch.filter((r) => r.status === 200).length;
      await Promise.all(batch.map((r) => r.arrayBuffer()));
    }
    const httpStatements = statements - before;
    await new Promise((r) => server.close(r));

    const median = (v: number[]) =>
      [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)] as number;
    console.log('');
    console.log(
      `Tenant lookup bench (${database.kind} PostgreSQL, ${TENANTS} tenants, ${CONCURRENCY} concurrent lookups, ${ROUNDS} rounds x ${MS} ms)`,
    );
    console.log(
      `  uncached KnexTenantStore   median ${median(base).toFixed(0)} lookups/s (1 SQL round trip each)`,
    );
    console.log(`  warm CachedTenantStore     median ${median(warm).toFixed(0)} lookups/s`);
    console.log(`  speed-up                   x${(median(warm) / median(base)).toFixed(1)}`);
    console.log(
      `  round trips per lookup     ${(warmStatements / warmLookups).toFixed(4)} (warm; ${warmStatements} SQL in ${warmLookups} lookups)`,
    );
    console.log(
      `  round trips per request    ${(httpStatements / HTTP_REQUESTS).toFixed(4)} (${HTTP_REQUESTS} HTTP requests through resolveTenant(), ${ok} answered 200)`,
    );
    if (ok !== HTTP_REQUESTS || warmStatements !== 0 || httpStatements !== 0) process.exitCode = 1;
  } finally {
    await knex.destroy();
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
