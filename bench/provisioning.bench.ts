/**
 * Provisioning and migrating N tenant schemas (schema mode).
 * TENANTRY_BENCH_TENANTS (default 1000), TENANTRY_BENCH_CONCURRENCY (default 4),
 * DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; a scratch database is created and dropped).
 */
import knexFactory, { type Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import { FleetMigrator, KnexTenantStore, TenantManager, migrateCentral } from '../src/index';

const N = Number(process.env.TENANTRY_BENCH_TENANTS ?? 1000);
const CONCURRENCY = Number(process.env.TENANTRY_BENCH_CONCURRENCY ?? 4);
const SERVER = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const migrations = (count: number) =>
  Array.from({ length: count }, (_, i) => ({
    name: `${String(i + 1).padStart(3, '0')}_table`,
    up: (k: Knex) =>
      k.schema.createTable(`t${i + 1}`, (t) => {
        t.increments('id');
        t.text('body');
        t.timestamps(true, true);
      }),
  }));

async function parallel<T>(items: T[], n: number, fn: (x: T) => Promise<unknown>) {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++] as T);
    }),
  );
}

async function main() {
  const dbName = `tenantry_bench_${randomBytes(3).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: SERVER, pool: { min: 0, max: 1 } });
  await admin.raw('create database ??', [dbName]);
  const url = new URL(SERVER);
  url.pathname = `/${dbName}`;
  const knex = knexFactory({
    client: 'pg',
    connection: url.toString(),
    pool: { min: 0, max: CONCURRENCY + 2 },
  });
  try {
    await migrateCentral(knex);
    const store = new KnexTenantStore(knex);
    const manager = new TenantManager({ knex, store, mode: 'schema', migrations: migrations(3) });
    const ids = Array.from({ length: N }, (_, i) => `t${i}`);
    let t0 = performance.now();
    await parallel(ids, CONCURRENCY, (id) => manager.create({ id }));
    const provisionS = (performance.now() - t0) / 1000;
    // A new release: two more migrations for the whole fleet.
    const fleet = new FleetMigrator(knex, { store, mode: 'schema', migrations: migrations(5) });
    t0 = performance.now();
    const result = await fleet.migrateTenants({ concurrency: CONCURRENCY });
    const migrateS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const again = await fleet.migrateTenants({ concurrency: CONCURRENCY });
    const resumeS = (performance.now() - t0) / 1000;
    console.log(
      JSON.stringify({
        bench: 'provisioning',
        tenants: N,
        concurrency: CONCURRENCY,
        provisionSeconds: +provisionS.toFixed(2),
        provisionPerTenantMs: +((provisionS * 1000) / N).toFixed(1),
        migrateSeconds: +migrateS.toFixed(2),
        migrated: result.migrated.length,
        failed: result.failed.length,
        noOpResumeSeconds: +resumeS.toFixed(2),
        skipped: again.current.length,
        goalUnder60s: provisionS < 60 && migrateS < 60,
      }),
    );
  } finally {
    await knex.destroy();
    await admin.raw('drop database if exists ?? with (force)', [dbName]);
    await admin.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
