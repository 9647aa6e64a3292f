/**
 * The RLS backstop behind PgBouncer in transaction pooling mode: several app
 * pools share a few server connections, so consecutive transactions of one
 * client connection land on different server connections, and one server
 * connection serves both tenants in turn. `.ci/run` starts PgBouncer and sets
 * TENANTRY_TEST_PGBOUNCER_URL (an admin URL through it); without it the spec
 * is skipped.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import {
  applyRowLevelSecurity,
  runWithTenant,
  withTenancy,
  type TenantKnex,
} from '../../../src/index';

const PGBOUNCER_URL = process.env.TENANTRY_TEST_PGBOUNCER_URL;
const TENANTS = ['acme', 'globex'] as const;
const ROWS = 20;
const APPS = 3;
const APP_POOL = 4;
const REQUESTS = 600;

function urlFor(base: string, database: string, user?: { name: string; password: string }): string {
  const url = new URL(base);
  url.pathname = `/${database}`;
  if (user !== undefined) {
    url.username = user.name;
    url.password = user.password;
  }
  return url.toString();
}

describe('RLS backstop behind PgBouncer (transaction pooling)', function () {
  this.timeout(120_000);
  const suffix = randomBytes(4).toString('hex');
  const database = `tenantry_pgbouncer_${suffix}`;
  const role = { name: `tenantry_pgb_app_${suffix}`, password: randomBytes(9).toString('hex') };
  const knexes: Knex[] = [];
  let admin: Knex;
  let owner: Knex;

  const open = (url: string, max: number): Knex => {
    const k = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max } });
    knexes.push(k);
    return k;
  };

  before(async function () {
    if (PGBOUNCER_URL === undefined || PGBOUNCER_URL === '') {
      console.log(
        '    (skipped: TENANTRY_TEST_PGBOUNCER_URL is not set; .ci/run starts PgBouncer and sets it)',
      );
      this.skip();
    }
    admin = open(PGBOUNCER_URL, 1);
    await admin.raw(`create database "${database}"`);
    await admin.raw(`create role "${role.name}" login password '${role.password}'`);
    owner = open(urlFor(PGBOUNCER_URL, database), 2);
    await owner.raw(`
      create table documents (
        tenant_id text not null, id integer not null, title text not null,
        views integer not null default 0, primary key (tenant_id, id)
      )`);
    for (const tenant of TENANTS) {
      await owner('documents').insert(
        Array.from({ length: ROWS }, (_, id) => ({
          tenant_id: tenant,
          id,
          title: `${tenant}-${id}`,
        })),
      );
    }
    await applyRowLevelSecurity(owner, { tables: ['documents'] });
    await owner.raw(`grant select, insert, update, delete on documents to "${role.name}"`);
  });

  after(async () => {
    await Promise.allSettled(knexes.splice(1).map((k) => k.destroy()));
    if (admin !== undefined) {
      await admin.raw(`drop database if exists "${database}" with (force)`).catch(() => undefined);
      await admin.raw(`drop role if exists "${role.name}"`).catch(() => undefined);
      await admin.destroy();
    }
  });

  it('serves interleaved tenants from several app pools with 0 cross-tenant rows, 0 wrong-empty reads and 0 lost writes', async () => {
    const apps: TenantKnex[] = [];
    for (let i = 0; i < APPS; i += 1) {
      const db = withTenancy(open(urlFor(PGBOUNCER_URL as string, database, role), APP_POOL), {
        tenantTables: ['documents'],
        rls: true,
        allowRaw: true,
      });
      await db.tenancy.ready(); // the role check passes: plain role, not owner, RLS forced
      apps.push(db);
    }
    const counts = { crossTenant: 0, wrongEmpty: 0, lostWrites: 0, reads: 0, writes: 0 };
    const expectedViews: Record<string, number> = { acme: 0, globex: 0 };
    const backends = new Set<number>();
    const checkRows = (tenant: string, rows: Array<{ tenant_id: string }>): void => {
      counts.reads += 1;
      if (rows.length === 0) counts.wrongEmpty += 1;
      counts.crossTenant += rows.filter((r) => r.tenant_id !== tenant).length;
    };
    const checkWrite = (tenant: string, changed: number): void => {
      counts.writes += 1;
      if (changed === 1) expectedViews[tenant] = (expectedViews[tenant] ?? 0) + 1;
      else counts.lostWrites += 1;
    };
    const request = async (i: number): Promise<void> => {
      // Tenants interleave irregularly across apps: no pool or server connection keeps one tenant.
      const tenant = TENANTS[(i * 7 + (i >> 3)) % 2] as string;
      const db = apps[i % APPS] as TenantKnex;
      const id = i % ROWS;
      await runWithTenant(tenant, async () => {
        switch (i % 6) {
          case 0: {
            const raw = (await db.raw(
              'select tenant_id, pg_backend_pid() as pid from documents',
            )) as { rows: Array<{ tenant_id: string; pid: number }> };
            for (const r of raw.rows) backends.add(r.pid);
            checkRows(tenant, raw.rows);
            break;
          }
          case 1:
            checkRows(tenant, await db('documents').select('tenant_id').where('id', '>=', 0));
            break;
          case 2:
            checkWrite(tenant, await db('documents').where({ id }).increment('views', 1));
            break;
          case 3: {
            const raw = (await db.raw('update documents set views = views + 1 where id = ?', [
              id,
            ])) as { rowCount: number };
            checkWrite(tenant, raw.rowCount);
            break;
          }
          case 4:
            await db.transaction(async (trx) => {
              checkRows(
                tenant,
                (
                  (await trx.raw('select tenant_id from documents')) as {
                    rows: Array<{ tenant_id: string }>;
                  }
                ).rows,
              );
              checkWrite(tenant, await trx('documents').where({ id }).increment('views', 1));
              checkRows(tenant, await trx('documents').select('tenant_id').where({ id }));
            });
            break;
          default: {
            const out: Array<{ tenant_id: string }> = [];
            for await (const row of db('documents').select('tenant_id').stream()) {
              out.push(row as { tenant_id: string });
            }
            checkRows(tenant, out);
          }
        }
      });
    };
    await Promise.all(Array.from({ length: REQUESTS }, (_, i) => request(i)));

    expect({
      crossTenant: counts.crossTenant,
      wrongEmpty: counts.wrongEmpty,
      lostWrites: counts.lostWrites,
    }).to.deep.equal({ crossTenant: 0, wrongEmpty: 0, lostWrites: 0 });
    expect(counts.reads).to.be.greaterThan(REQUESTS / 2);
    expect(counts.writes).to.equal(REQUESTS / 2);
    // Every write landed, on its own tenant's rows.
    const stored = (await owner('documents')
      .select('tenant_id')
      .sum({ views: 'views' })
      .groupBy('tenant_id')
      .orderBy('tenant_id')) as Array<{ tenant_id: string; views: string }>;
    expect(stored.map((r) => [r.tenant_id, Number(r.views)])).to.deep.equal(
      TENANTS.map((t) => [t, expectedViews[t]]),
    );
    // The pooler really multiplexed: the app pools held more client connections than the
    // server connections their statements ran on.
    const appConnections = knexes
      .slice(2)
      .reduce(
        (n, k) => n + ((k.client as { pool?: { numFree(): number } }).pool?.numFree() ?? 0),
        0,
      );
    expect(backends.size).to.be.greaterThan(0);
    expect(appConnections).to.be.greaterThan(backends.size);
  });
});
