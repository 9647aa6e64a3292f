import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server } from 'node:net';
import {
  KnexTenantStore,
  TenantManager,
  TenantPoolManager,
  createDatabaseTenantKnex,
  migrateCentral,
  runWithTenant,
  type CredentialsResolver,
  type TenantRecord,
} from '../../../src/index';
import {
  connectionObject,
  tenantConnectionConfig,
} from '../../../src/isolation/database/tenant-connection';
import { createScratchDatabase, createTestKnex, testServer } from '../../support/test-database';

const run = randomBytes(3).toString('hex');

function tenant(id: string, database: TenantRecord['isolation']['database']): TenantRecord {
  return { id, name: id, status: 'active', isolation: database ? { database } : {}, config: {} };
}

/** A TCP server standing in for an attacker's PostgreSQL: it only counts who connects. */
async function trap(): Promise<{ server: Server; port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => count };
}

describe('Tenant records cannot redirect secrets or connections (database mode)', function () {
  this.timeout(60_000);
  let base: Knex;
  let attacker: Awaited<ReturnType<typeof trap>>;
  const resolved: string[] = [];
  const credentials: CredentialsResolver = (ref) => {
    resolved.push(ref);
    return 'secret-of-' + ref;
  };

  before(async () => {
    base = createTestKnex();
    attacker = await trap();
  });
  after(async () => {
    await new Promise((r) => attacker.server.close(r));
  });
  beforeEach(() => {
    resolved.length = 0;
  });

  const hostile = (): Record<string, TenantRecord> => ({
    host: tenant(`h${run}`, { host: '127.0.0.1', port: attacker.port, database: 'x' }),
    server: tenant(`s${run}`, { server: 'evil', database: 'x' }),
    serverAndHost: tenant(`m${run}`, {
      server: 'main',
      host: '127.0.0.1',
      port: attacker.port,
      database: 'x',
    }),
    jwtSecret: tenant(`j${run}`, { database: 'x', passwordRef: 'TENANTRY_JWT_SECRET' }),
    prefixLookalike: tenant(`p${run}`, { database: 'x', passwordRef: 'XTENANT_DB_PW_acme' }),
  });

  it('refuses at connect time a record whose host, server or passwordRef is not configured, before connecting or resolving any secret', async () => {
    const url = new URL(testUrl(base));
    const db = createDatabaseTenantKnex(base, {
      database: {
        credentials,
        servers: { main: { host: url.hostname, port: Number(url.port || 5432) } },
        passwordRefs: { prefix: 'TENANT_DB_PW_', allow: ['SHARED_TENANT_PW'] },
      },
    });
    try {
      const outcomes: Record<string, unknown> = {};
      for (const [name, record] of Object.entries(hostile())) {
        const error = (await runWithTenant(record, async () => await db.raw('select 1')).catch(
          (e: unknown) => e,
        )) as { code?: string; status?: number; message?: string };
        outcomes[name] = [error.code, error.status];
        expect(error.message, name).to.match(/^Cannot connect to the database of tenant/);
      }
      expect(outcomes).to.deep.equal({
        host: ['TENANT_UNAVAILABLE', 503],
        server: ['TENANT_UNAVAILABLE', 503],
        serverAndHost: ['TENANT_UNAVAILABLE', 503],
        jwtSecret: ['TENANT_UNAVAILABLE', 503],
        prefixLookalike: ['TENANT_UNAVAILABLE', 503],
      });
      expect(attacker.connections()).to.equal(0);
      expect(resolved).to.deep.equal([]);
    } finally {
      await db.destroy();
    }
  });

  it('resolves only allowed secret names and connects only to configured servers', async () => {
    const database = await createScratchDatabase('policy');
    const url = new URL(testUrl(base));
    const pools = new TenantPoolManager({
      connection: testUrl(base),
      credentials: (ref, t) => {
        resolved.push(ref);
        // The test server may need no password, or the base one: hand that back.
        return decodeURIComponent(url.password) || t.id;
      },
      servers: { main: { host: url.hostname, port: Number(url.port || 5432) } },
      passwordRefs: { prefix: 'TENANT_DB_PW_', allow: ['SHARED_TENANT_PW'] },
    });
    try {
      for (const record of [
        tenant(`a${run}`, { server: 'main', database, passwordRef: `TENANT_DB_PW_a${run}` }),
        tenant(`b${run}`, { database, passwordRef: 'SHARED_TENANT_PW' }),
        tenant(`c${run}`, { host: url.hostname, port: Number(url.port || 5432), database }),
      ]) {
        const rows = (await pools.knexFor(record).raw('select current_database() as d')) as {
          rows: Array<{ d: string }>;
        };
        expect(rows.rows[0]?.d).to.equal(database);
      }
      expect(resolved).to.deep.equal([`TENANT_DB_PW_a${run}`, 'SHARED_TENANT_PW']);
      // Without any passwordRefs configured, every passwordRef is refused.
      const strict = new TenantPoolManager({ connection: testUrl(base), credentials });
      try {
        expect(() => strict.knexFor(tenant(`d${run}`, { database, passwordRef: 'TENANT_DB_PW_d' })))
          .to.throw(/password secret that is not allowed/)
          .with.property('code', 'TENANT_UNAVAILABLE');
      } finally {
        await strict.destroy();
      }
    } finally {
      await pools.destroy();
    }
  });

  it('refuses at provisioning a record that points at another server, without connecting to it', async () => {
    const central = createTestKnex({}, await createScratchDatabase('policy_central'));
    await migrateCentral(central);
    const manager = new TenantManager({
      knex: central,
      store: new KnexTenantStore(central),
      mode: 'database',
      databasePrefix: `pol${run}_`,
      credentials,
    });
    const error = (await manager
      .create({
        id: `evil${run}`,
        isolation: {
          database: { host: '127.0.0.1', port: attacker.port, database: `pol${run}_evil` },
        },
      })
      .catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(error.code).to.equal('TENANT_PROVISIONING_FAILED');
    expect(error.message).to.match(/not one of the configured servers/);
    const stored = await new KnexTenantStore(central).findById(`evil${run}`);
    expect(stored?.status).to.equal('provisioning_failed');
    const secret = (await manager
      .create({
        id: `sec${run}`,
        isolation: { database: { database: `pol${run}_sec`, passwordRef: 'TENANTRY_JWT_SECRET' } },
      })
      .catch((e: unknown) => e)) as { code?: string; message?: string };
    expect(secret.code).to.equal('TENANT_PROVISIONING_FAILED');
    expect(secret.message).to.match(/password secret that is not allowed/);
    expect(attacker.connections()).to.equal(0);
    expect(resolved).to.deep.equal([]);
  });

  it('rejects bad server options at creation with TypeError', () => {
    const bad: Array<Record<string, { host: string; port?: number }>> = [
      { 'bad name': { host: 'h' } },
      { a: { host: '' } },
      { a: { host: 'h', port: 0 } },
    ];
    for (const servers of bad) {
      expect(() => new TenantPoolManager({ servers }), JSON.stringify(servers)).to.throw(TypeError);
    }
    expect(() => new TenantPoolManager({ passwordRefs: { prefix: '' } })).to.throw(TypeError);
  });
});

describe('tenant connections are built from the base connection object', () => {
  it('parses URLs node-postgres accepts (unix sockets, sslmode) and keeps every option but the five it sets', () => {
    expect(connectionObject('postgres://u:p@/db?host=/var/run/postgresql')).to.include({
      host: '/var/run/postgresql',
      user: 'u',
      password: 'p',
      database: 'db',
    });
    const base = connectionObject({
      connectionString: 'postgres://u:p@db.internal:6543/central?sslmode=no-verify',
      statement_timeout: 5000,
    });
    expect(base).to.not.have.property('connectionString');
    const tenantConfig = tenantConnectionConfig(
      base,
      { host: 'db2.internal', port: 5433, database: 'tenant_acme', user: 'acme' },
      'pw',
    );
    expect(tenantConfig).to.deep.include({
      host: 'db2.internal',
      port: 5433,
      database: 'tenant_acme',
      user: 'acme',
      password: 'pw',
      statement_timeout: 5000,
    });
    expect(tenantConfig.ssl).to.deep.equal(base.ssl).and.not.equal(undefined);
    const sslObject = { rejectUnauthorized: true, ca: 'CA' };
    expect(
      tenantConnectionConfig(
        connectionObject({ host: 'h', ssl: sslObject }),
        { host: 'x', port: 1, database: 'd', user: 'u' },
        undefined,
      ),
    )
      .to.include({ ssl: sslObject })
      .and.not.have.property('password');
  });

  it('accepts a unix-socket base URL in database mode (new URL() threw on it)', async () => {
    // knex itself reads a bare string of this form as a file name, so it goes in connectionString.
    const knex = (await import('knex')).default({
      client: 'pg',
      connection: { connectionString: 'postgres://postgres@/postgres?host=/var/run/postgresql' },
    });
    try {
      const db = createDatabaseTenantKnex(knex);
      expect(db.tenantPools.placementOf(tenant('acme', { database: 'tenant_acme' }))).to.include({
        host: '/var/run/postgresql',
        database: 'tenant_acme',
      });
      await db.destroy();
    } finally {
      await knex.destroy();
    }
  });
});

/** The run's database URL (knex itself turns a URL into an object, so it is not read back from it). */
function testUrl(_knex: Knex): string {
  return testServer().databaseUrl;
}
