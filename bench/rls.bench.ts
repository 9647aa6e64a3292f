/**
 * RLS backstop cost: the same statements through withTenancy() with the
 * PostgreSQL RLS backstop on versus off, in one run, interleaved rounds. Both
 * variants connect as the same plain (non-superuser, non-owner) login role to
 * two databases holding the same data; only the "on" database has the
 * policies (ENABLE + FORCE), and only its TenantKnex has `rls: true` (the
 * transaction-local set_config pipelined with every statement). Prints the
 * latency ratio per statement and overall (goal <= 1.10), plus a request-like
 * unit (one tenant, three statements).
 *
 *   npm run build:test && node build/bench/rls.bench.js
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node build/bench/rls.bench.js
 *   Through PgBouncer (transaction mode; both sides go through it):
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres:<pw>@127.0.0.1:<pgbouncer port>/test node build/bench/rls.bench.js
 *   BENCH_ROUNDS=6 BENCH_PER_ROUND=500 ...
 *   RLS_BENCH_PREPARED=0|1 ...   (force rls.preparedSetting off or on; default: the library's default)
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { applyRowLevelSecurity, runWithTenant, withTenancy, type TenantKnex } from '../src/index';
import { openBenchDatabase } from './load/bench-database';
import { benchKnexes, interleave, line } from './support/interleaved';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 500);
const TENANTS = ['acme', 'globex', 'initech', 'umbrella'];
const TABLES = ['documents', 'comments'];

async function seed(owner: Knex, role: string, rls: boolean): Promise<void> {
  await owner.raw(`
    create table documents (tenant_id text not null, id integer not null, title text not null, views integer not null default 0, primary key (tenant_id, id));
    create table comments (tenant_id text not null, id integer not null, document_id integer not null, primary key (tenant_id, id));
  `);
  for (const t of TENANTS) {
    await owner.batchInsert(
      'documents',
      Array.from({ length: 500 }, (_, i) => ({ tenant_id: t, id: i, title: `d${i}` })),
      500,
    );
    await owner.batchInsert(
      'comments',
      Array.from({ length: 1000 }, (_, i) => ({ tenant_id: t, id: i, document_id: i % 500 })),
      500,
    );
  }
  await owner.raw(`grant select, insert, update, delete on documents, comments to "${role}"`);
  if (rls) await applyRowLevelSecurity(owner, { tables: TABLES });
  await owner.raw('analyze');
}

function asRole(url: string, role: string, password: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = password;
  return u.toString();
}

async function main(): Promise<void> {
  const database = await openBenchDatabase('rlsbench');
  const onName = decodeURIComponent(new URL(database.url).pathname.slice(1));
  const offName = `${onName}_off`;
  const role = `tenantry_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  const { open, destroyAll } = benchKnexes();
  try {
    await database.admin(`create role "${role}" login password '${password}'`);
    await database.admin(`create database "${offName}"`);
    const ownerOn = open(database.url);
    const ownerOff = open(database.urlFor(offName));
    await seed(ownerOn, role, true);
    await seed(ownerOff, role, false);

    // The library's default (a named setting statement, no allowRaw); RLS_BENCH_PREPARED=0 or 1 forces
    // rls.preparedSetting off or on.
    const prepared = process.env.RLS_BENCH_PREPARED;
    const on: TenantKnex = withTenancy(open(asRole(database.url, role, password)), {
      tenantTables: TABLES,
      rls: prepared === undefined ? true : { preparedSetting: prepared === '1' },
    });
    const off: TenantKnex = withTenancy(open(asRole(database.urlFor(offName), role, password)), {
      tenantTables: TABLES,
    });
    await on.tenancy.ready(); // the role safety check must pass: plain role, not owner, RLS forced
    const tenant = (i: number) => TENANTS[i % TENANTS.length] as string;

    // The statements, each run inside runWithTenant() for the call's tenant.
    const selectById = (k: TenantKnex, i: number) =>
      k('documents')
        .where({ id: i % 500 })
        .first();
    const increment = (k: TenantKnex, i: number) =>
      k('documents')
        .where({ id: i % 500 })
        .increment('views', 1);
    const statements: Array<{ name: string; run: (k: TenantKnex, i: number) => unknown }> = [
      { name: 'select by id', run: selectById },
      {
        name: 'list + order + limit',
        run: (k) => k('documents').where('views', '>=', 0).orderBy('id').limit(20),
      },
      {
        name: 'join',
        run: (k, i) =>
          k('documents')
            .join('comments', 'comments.document_id', 'documents.id')
            .where('documents.id', i % 500),
      },
      { name: 'increment', run: increment },
      {
        name: 'request (3 statements)',
        run: async (k, i) => {
          await selectById(k, i);
          await k('comments').where({ document_id: i % 500 });
          await increment(k, i);
        },
      },
    ];
    const shapes = statements.map(({ name, run }) => ({
      name,
      run: (k: TenantKnex, i: number) => runWithTenant(tenant(i), async () => await run(k, i)),
    }));

    console.log(
      `RLS backstop on vs off (same role, same data; ${ROUNDS * PER_ROUND} sequential calls of each, alternating on/off call by call, tenant rotates per call)`,
    );
    let sumOn = 0;
    let sumOff = 0;
    for (const shape of shapes) {
      const [timingOff, timingOn] = await interleave(
        [
          { name: `${shape.name} (rls off)`, run: (i) => shape.run(off, i) },
          { name: `${shape.name} (rls on)`, run: (i) => shape.run(on, i) },
        ],
        ROUNDS,
        PER_ROUND,
      );
      if (!timingOff || !timingOn) throw new Error('missing timing');
      if (!shape.name.startsWith('request')) {
        sumOn += timingOn.medianUs;
        sumOff += timingOff.medianUs;
      }
      console.log(line(timingOff));
      console.log(line(timingOn));
      console.log(`  ratio (median) ${(timingOn.medianUs / timingOff.medianUs).toFixed(3)}`);
    }
    console.log(
      `RLS overall latency ratio (sum of statement medians): ${(sumOn / sumOff).toFixed(3)} (goal <= 1.10)`,
    );
  } finally {
    await destroyAll();
    await database.dropLike(onName).catch(() => undefined);
    await database.admin(`drop role if exists "${role}"`).catch(() => undefined);
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
