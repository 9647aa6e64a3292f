import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import {
  runAsSystem,
  runWithTenant,
  withTenancy,
  type RlsOptions,
  type TenancyLogger,
  type TenantKnex,
} from '../../../src/index';
import {
  applyRowLevelSecurity,
  rowLevelSecurityStatements,
} from '../../../src/isolation/rls/row-level-security';
import { adminQuery, createTestKnex, testServer } from '../../support/test-database';
import { createRowFixture, seedRows } from '../support/row-fixture';
import { code } from '../support/error-code';

/** The distinct tenants of the documents a Knex (or transaction) can see, as RLS filters them. */
async function tenantsOf(k: Knex | Knex.Transaction): Promise<string[]> {
  const result = (await k.raw('select distinct tenant_id from documents order by 1')) as {
    rows: Array<{ tenant_id: string }>;
  };
  return result.rows.map((r) => r.tenant_id);
}

describe('RLS backstop', () => {
  const role = `tenantry_app_${randomBytes(4).toString('hex')}`;
  let owner: Knex;
  let database: string;
  let app: (pool?: number) => Knex;

  before(async () => {
    ({ knex: owner, database } = await createRowFixture());
    await applyRowLevelSecurity(owner, { tables: ['documents', 'comments'] });
    await adminQuery(`create role ${role} login password 'app'`).catch((e: { code?: string }) => {
      if (e.code !== '42710') throw e;
    });
    await owner.raw(
      `grant select, insert, update, delete on documents, comments, countries to ${role}`,
    );
    const url = new URL(testServer().urlFor(database));
    url.username = role;
    url.password = 'app';
    app = (pool = 1) =>
      createTestKnex({ connection: url.toString(), pool: { min: 0, max: pool } }, database);
  });
  after(async () => {
    await owner.raw(`drop owned by ${role} cascade`).catch(() => undefined);
    await adminQuery(`drop role if exists ${role}`).catch(() => undefined);
  });
  beforeEach(async () => {
    await seedRows(owner);
  });

  /** A TenantKnex with the backstop on over both tenant tables, past its start-up check. */
  async function rlsKnex(
    base: Knex,
    extra: { allowRaw?: boolean; rls?: RlsOptions } = {},
  ): Promise<TenantKnex> {
    const db = withTenancy(base, { tenantTables: ['documents', 'comments'], rls: true, ...extra });
    await db.tenancy.ready();
    return db;
  }

  // Regression (issue 12): the tenant travelled as a session setting, so a raw statement sent on
  // a transaction opened under acme from globex's scope ran with acme's setting: globex read acme's rows.
  it("refuses a statement sent on a transaction opened under another tenant (it read that tenant's rows)", async () => {
    const db = await rlsKnex(app(2), { allowRaw: true });
    const seen = await runWithTenant('acme', () =>
      db.transaction(async (trx) => {
        const fromGlobex = await code(
          runWithTenant(
            'globex',
            async () => await trx.raw('select distinct tenant_id from documents'),
          ),
        );
        const builder = await code(
          runWithTenant('globex', async () => await trx('documents').update({ title: 'moved' })),
        );
        const savepoint = await code(
          runWithTenant('globex', () => trx.transaction(async (inner) => inner.raw('select 1'))),
        );
        const system = await code(runAsSystem('spec', async () => await trx.raw('select 1')));
        // The transaction itself still works, as acme, also from code with no scope at all.
        const own = (await trx.raw('select distinct tenant_id from documents')) as {
          rows: Array<{ tenant_id: string }>;
        };
        return { fromGlobex, builder, savepoint, system, own: own.rows };
      }),
    );
    expect(seen).to.deep.equal({
      fromGlobex: 'TENANT_SCOPE_REQUIRED',
      builder: 'TENANT_SCOPE_REQUIRED',
      savepoint: 'TENANT_SCOPE_REQUIRED',
      system: 'TENANT_SCOPE_REQUIRED',
      own: [{ tenant_id: 'acme' }],
    });
    expect(await owner('documents').where({ title: 'moved' }).count({ n: '*' })).to.deep.equal([
      { n: '0' },
    ]);
  });

  // Regression (issue 12): behind a pooler a server connection may carry any session value;
  // the session design trusted its own bookkeeping and let a system scope read the stale tenant.
  it('runs every statement as its own scope even on a connection left carrying a session tenant', async () => {
    const base = app(1);
    const db = await rlsKnex(base, { allowRaw: true });
    const tenants = async (): Promise<string[]> =>
      (
        (await db.raw('select distinct tenant_id from documents order by 1')) as {
          rows: Array<{ tenant_id: string }>;
        }
      ).rows.map((r) => r.tenant_id);
    // Dirty the pool's one connection behind tenantry's back, as another client of a pooled
    // server connection could.
    await base.raw(`select set_config('app.tenant_id', 'globex', false)`);
    expect(await runAsSystem('spec', tenants)).to.deep.equal([]);
    expect(await tenants()).to.deep.equal([]);
    expect(await runWithTenant('acme', tenants)).to.deep.equal(['acme']);
    expect(
      await runAsSystem('spec', async () => (await db('documents').count({ n: '*' }))[0]),
    ).to.deep.equal({ n: '0' });
    await base.raw(`select set_config('app.tenant_id', '', false)`);
  });

  it("keeps the tenant when raw SQL prepared a statement under the setting statement's name (default: unnamed setting)", async () => {
    const base = app(1);
    const db = await rlsKnex(base, { allowRaw: true });
    // What an injected raw statement could leave on a (pooled) server connection.
    await runWithTenant('globex', () =>
      db.raw(
        `prepare tenantry_set_local_config_v1(text, text) as select set_config('app.tenant_id', 'globex', true)`,
      ),
    );
    expect(await runWithTenant('acme', () => tenantsOf(db))).to.deep.equal(['acme']);
    expect(
      await runWithTenant('acme', async () => (await db('documents').select('tenant_id')).length),
    ).to.equal(3);
    await base.raw('deallocate all');
  });

  it('generates ENABLE, FORCE and a USING/WITH CHECK policy on the setting', () => {
    const sql = rowLevelSecurityStatements({ tables: ['documents'] }).join(';\n');
    expect(sql).to.contain('enable row level security');
    expect(sql).to.contain('force row level security');
    expect(sql).to.match(
      /using \("tenant_id" = nullif\(current_setting\('app\.tenant_id', true\), ''\)\) with check/,
    );
    expect(() => rowLevelSecurityStatements({ tables: ['x'], setting: "a.b'; drop" })).to.throw(
      TypeError,
    );
  });

  it('refuses to start as a superuser or table owner, or only warns when configured to', async () => {
    const db = withTenancy(owner, { tenantTables: ['documents'], rls: true });
    expect(await code(db.tenancy.ready())).to.equal('TENANCY_CONFIG_INVALID');
    expect(await code(runWithTenant('acme', async () => await db('documents')))).to.equal(
      'TENANCY_CONFIG_INVALID',
    );
    const errors: string[] = [];
    const logger: TenancyLogger = {
      debug() {},
      info() {},
      warn() {},
      error: (m) => errors.push(m),
    };
    const warned = withTenancy(owner, {
      tenantTables: ['documents'],
      rls: { onUnsafeRole: 'warn' },
      logger,
    });
    await warned.tenancy.ready();
    expect(errors.join())
      .to.match(/superuser/)
      .and.match(/owns tenant table "documents"/);
  });

  it('stops raw SQL the Knex layer would not scope from reading or writing another tenant', async () => {
    const db = withTenancy(app(2), {
      tenantTables: ['documents', 'comments'],
      sharedTables: ['countries'],
      rls: true,
      allowRaw: true,
    });
    await db.tenancy.ready();
    await runWithTenant('acme', async () => {
      const read = (await db.raw('select tenant_id from documents')) as {
        rows: Array<{ tenant_id: string }>;
      };
      expect(read.rows.map((r) => r.tenant_id)).to.deep.equal(['acme', 'acme', 'acme']);
      const upd = (await db.raw(
        `update documents set title = 'pwned' where tenant_id = 'globex'`,
      )) as { rowCount: number };
      expect(upd.rowCount).to.equal(0);
      const del = (await db.raw(`delete from comments`)) as { rowCount: number };
      expect(del.rowCount).to.equal(3);
      expect(
        await code(
          db.raw(
            `insert into documents (tenant_id, id, title, slug) values ('globex', 9, 'x', 'x')`,
          ),
        ),
      ).to.equal('42501');
      expect(await code(db.raw(`update documents set tenant_id = 'globex'`))).to.equal('42501');
    });
    expect(
      await owner('documents').where({ tenant_id: 'globex', title: 'pwned' }).count({ n: '*' }),
    ).to.deep.equal([{ n: '0' }]);
    expect(await owner('comments').where({ tenant_id: 'globex' }).count({ n: '*' })).to.deep.equal([
      { n: '3' },
    ]);
    // No tenant: shared tables answer, the policies match no tenant row.
    const none = (await db.raw('select count(*)::int as n from countries')) as {
      rows: Array<{ n: number }>;
    };
    expect(none.rows[0]?.n).to.equal(2);
    const plain = app(1);
    const unscoped = (await plain.raw('select count(*)::int as n from documents')) as {
      rows: Array<{ n: number }>;
    };
    expect(unscoped.rows[0]?.n).to.equal(0);
  });

  it('sets the build tenant on the connection for a builder awaited outside its scope', async () => {
    const base = app(1);
    const db = await rlsKnex(base, { allowRaw: true });
    const rows = await runWithTenant('globex', () => db('documents').select('tenant_id'));
    expect(rows.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
      'globex',
      'globex',
      'globex',
    ]);
    // Raw SQL the engine does not scope: only RLS, fed with the build tenant, filters it.
    const raw = (await runWithTenant('acme', () =>
      db.raw('select distinct tenant_id from documents'),
    )) as { rows: Array<{ tenant_id: string }> };
    expect(raw.rows).to.deep.equal([{ tenant_id: 'acme' }]);
    const after = (await base.raw(
      `select coalesce(current_setting('app.tenant_id', true), '') as v`,
    )) as { rows: Array<{ v: string }> };
    expect(after.rows[0]?.v).to.equal('');
    await base.destroy();
  });

  it('keeps the tenant inside each transaction: the connection holds none after statements, commits, rollbacks and multi-statement raw', async () => {
    const base = app(1);
    const db = await rlsKnex(base, { allowRaw: true });
    const left = async (): Promise<string> =>
      (
        (await base.raw(`select coalesce(current_setting('app.tenant_id', true), '') as v`)) as {
          rows: Array<{ v: string }>;
        }
      ).rows[0]?.v ?? 'missing';
    expect(await runWithTenant('acme', async () => (await db('documents')).length)).to.equal(3);
    expect(await left()).to.equal('');
    // Several statements in one raw string cannot use the extended protocol: they run in a
    // transaction block of their own that carries the tenant, and leave nothing behind.
    const multi = (await runWithTenant('globex', () =>
      db.raw(
        `select 1 as one; update documents set views = views + 1; select distinct tenant_id from documents`,
      ),
    )) as Array<{ rows: Array<Record<string, unknown>>; rowCount: number }>;
    expect(multi.map((r) => r.rows)).to.deep.equal([[{ one: 1 }], [], [{ tenant_id: 'globex' }]]);
    expect(multi[1]?.rowCount).to.equal(3);
    expect(await left()).to.equal('');
    // A failing multi-statement raw rolls its block back: no partial write, no tenant left.
    expect(
      await code(
        runWithTenant('globex', () => db.raw(`update documents set views = 100; select 1 / 0`)),
      ),
    ).to.equal('22012');
    expect(await left()).to.equal('');
    expect(await owner('documents').where({ views: 100 }).count({ n: '*' })).to.deep.equal([
      { n: '0' },
    ]);
    // A syntax error is still a syntax error (not retried into something else).
    expect(await code(runWithTenant('acme', () => db.raw('selec 1')))).to.equal('42601');
    // Inside a transaction: every statement, savepoints and rollbacks to them run as its tenant.
    const inside = await runWithTenant('acme', () =>
      db.transaction(async (trx) => {
        const first = await tenantsOf(trx);
        await trx
          .transaction(async (inner) => {
            await inner.raw('select 1');
            throw new Error('to the savepoint');
          })
          .catch(() => undefined);
        const afterSavepoint = await tenantsOf(trx);
        const multiInside = (await trx.raw(
          'select 1; select distinct tenant_id from documents',
        )) as Array<{ rows: unknown[] }>;
        return { first, afterSavepoint, multi: multiInside[1]?.rows };
      }),
    );
    expect(inside).to.deep.equal({
      first: ['acme'],
      afterSavepoint: ['acme'],
      multi: [{ tenant_id: 'acme' }],
    });
    expect(await left()).to.equal('');
    await runWithTenant('acme', () =>
      db.transaction(async () => {
        throw new Error('rolled back');
      }),
    ).catch(() => undefined);
    expect(await left()).to.equal('');
    await base.destroy();
  });
  for (const preparedSetting of [false, true]) {
    it(`sends the tenant with each statement in one round trip, whatever tenant came before (preparedSetting: ${preparedSetting})`, async () => {
      const base = app(1);
      const db = await rlsKnex(base, { rls: { preparedSetting } });
      // The pool's one connection: count what is submitted on it (each submission is one round trip).
      const connection = (await base.client.acquireConnection()) as {
        query: (...args: unknown[]) => unknown;
      };
      await base.client.releaseConnection(connection);
      const original = connection.query;
      let submitted = 0;
      connection.query = function counting(this: unknown, ...args: unknown[]) {
        submitted += 1;
        return original.apply(this, args);
      };
      try {
        // The connection's first tenant statement prepares the named setting statement (a Bind
        // that misses is sent again with a Parse); from then on, one submission per statement.
        await runWithTenant('acme', async () => db('documents').first());
        for (const tenant of ['acme', 'globex', 'acme', 'initech']) {
          submitted = 0;
          const rows = await runWithTenant(tenant, async () =>
            db('documents').where('id', '>', 0).select('tenant_id'),
          );
          expect(submitted, tenant).to.equal(1);
          expect(new Set(rows.map((r: { tenant_id: string }) => r.tenant_id))).to.deep.equal(
            new Set(tenant === 'initech' ? [] : [tenant]),
          );
        }
      } finally {
        connection.query = original;
        await base.destroy();
      }
    });
  }

  for (const preparedSetting of [false, true]) {
    it(`keeps every path of a pool-size-1 connection on the right tenant: raw, stream, commit, rollback, errors, deallocate (preparedSetting: ${preparedSetting})`, async () => {
      const base = app(1);
      const db = await rlsKnex(base, { allowRaw: true, rls: { preparedSetting } });
      const seen = async (k: Knex | Knex.Transaction): Promise<string> =>
        (
          (await k.raw('select coalesce(current_setting(?, true), ?) as t', [
            'app.tenant_id',
            '',
          ])) as { rows: Array<{ t: string }> }
        ).rows[0]?.t ?? 'missing';
      const tenants = async (k: Knex | Knex.Transaction): Promise<string[]> =>
        (
          (await k.raw('select distinct tenant_id from documents order by 1')) as {
            rows: Array<{ tenant_id: string }>;
          }
        ).rows.map((r) => r.tenant_id);
      // Raw SQL with no bindings rides with the setting too (extended protocol, one statement).
      expect(await runWithTenant('acme', () => tenants(db))).to.deep.equal(['acme']);
      // A stream after a switch.
      const streamed = await runWithTenant('globex', async () => {
        const out: string[] = [];
        for await (const row of db('documents').select('tenant_id').stream()) {
          out.push((row as { tenant_id: string }).tenant_id);
        }
        return out;
      });
      expect(streamed).to.deep.equal(['globex', 'globex', 'globex']);
      // A committed transaction opened right after a switch (the value rides right behind BEGIN).
      expect(
        await runWithTenant('acme', () =>
          db.transaction(async (trx) => [await seen(trx), ...(await tenants(trx))]),
        ),
      ).to.deep.equal(['acme', 'acme']);
      expect(await runWithTenant('acme', () => seen(db))).to.equal('acme');
      // Transactions with an isolation level or access mode (part of BEGIN itself, so the value
      // can follow it in the same round trip).
      for (const [tenant, config] of [
        ['globex', { isolationLevel: 'serializable' }],
        ['acme', { isolationLevel: 'repeatable read' }],
        ['globex', { readOnly: true }],
      ] as const) {
        const inside = await runWithTenant(tenant, () =>
          db.transaction(
            async (trx) => [
              await seen(trx),
              (
                (await trx.raw(`select current_setting('transaction_isolation') as i`)) as {
                  rows: Array<{ i: string }>;
                }
              ).rows[0]?.i,
            ],
            config,
          ),
        );
        expect(inside[0], JSON.stringify(config)).to.equal(tenant);
        if ('isolationLevel' in config) expect(inside[1]).to.equal(config.isolationLevel);
      }
      // A rolled-back transaction after a switch: the value set in it is rolled back too,
      // and the next statement of any tenant still runs under its own.
      const rolledBack = await runWithTenant('globex', () =>
        db.transaction(async (trx) => {
          expect(await seen(trx)).to.equal('globex');
          throw new Error('roll back');
        }),
      ).catch((e: Error) => e.message);
      expect(rolledBack).to.equal('roll back');
      expect(await runWithTenant('globex', () => seen(db))).to.equal('globex');
      expect(await runWithTenant('acme', () => tenants(db))).to.deep.equal(['acme']);
      // A statement that fails after a switch aborts its setting with it.
      const failed = await runWithTenant('globex', () =>
        db.raw('select 1 / (? - 1) as x', [1]),
      ).catch((e: { code?: string }) => e.code);
      expect(failed).to.equal('22012');
      expect(await runWithTenant('globex', () => seen(db))).to.equal('globex');
      expect(await runWithTenant('globex', () => tenants(db))).to.deep.equal(['globex']);
      // DEALLOCATE ALL / DISCARD ALL (a pooler's server_reset_query) change nothing: no named statement is used.
      await runWithTenant('globex', () => db.raw('deallocate all'));
      await runWithTenant('globex', () => db.raw('discard all'));
      expect(await runWithTenant('acme', () => seen(db))).to.equal('acme');
      expect(await runWithTenant('acme', () => tenants(db))).to.deep.equal(['acme']);
      // After a tenant, a system scope and the base Knex see no tenant at all.
      expect(await runAsSystem('spec', () => seen(db))).to.equal('');
      await runWithTenant('acme', () => seen(db));
      expect(await seen(base)).to.equal('');
      expect(await tenants(base)).to.deep.equal([]);
      await base.destroy();
    });
  }

  it('leaves no tenant on a pooled connection (pool size 1), even after an error mid-transaction', async () => {
    const base = app(1);
    const db = withTenancy(base, { tenantTables: ['documents', 'comments'], rls: true });
    const setting = async () =>
      (
        (await base.raw(
          `select coalesce(current_setting('app.tenant_id', true), '') as v, pg_backend_pid() as pid`,
        )) as { rows: Array<{ v: string; pid: number }> }
      ).rows[0];
    const first = await setting();
    expect(await runWithTenant('acme', async () => (await db('documents')).length)).to.equal(3);
    expect(await setting()).to.deep.equal({ v: '', pid: first?.pid });
    const failed = await runWithTenant('globex', () =>
      db.transaction(async (trx) => {
        await trx('documents').update({ title: 'x' });
        await trx.raw('select 1/0');
      }),
    ).catch((e: { code?: string }) => e.code);
    expect(failed).to.equal('22012');
    expect(await setting()).to.deep.equal({ v: '', pid: first?.pid });
    expect(
      await owner('documents').where({ tenant_id: 'globex', title: 'x' }).count({ n: '*' }),
    ).to.deep.equal([{ n: '0' }]);
    // unscoped() and a system scope borrow the same connection after a tenant: no tenant rows.
    expect(await runWithTenant('acme', async () => (await db('documents')).length)).to.equal(3);
    const viaUnscoped = await db.unscoped({ reason: 'spec' })('documents').count({ n: '*' });
    expect(viaUnscoped).to.deep.equal([{ n: '0' }]);
    expect(await runWithTenant('acme', async () => (await db('documents')).length)).to.equal(3);
    const viaSystem = await runAsSystem(
      'spec',
      async () => await db('documents').count({ n: '*' }),
    );
    expect(viaSystem).to.deep.equal([{ n: '0' }]);
    // The same single connection then serves the other tenant with only its rows.
    const rows = await runWithTenant(
      'globex',
      async () => await db('documents').select('tenant_id'),
    );
    expect(rows.map((r: { tenant_id: string }) => r.tenant_id)).to.deep.equal([
      'globex',
      'globex',
      'globex',
    ]);
  });
});
