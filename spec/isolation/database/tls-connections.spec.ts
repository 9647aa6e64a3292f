/**
 * Database mode against a PostgreSQL that accepts only TLS connections
 * (`hostnossl ... reject`), with a self-signed certificate made by openssl
 * for this run and verified by the clients (`ssl: { ca }`). Tenant pools and
 * provisioning/migration connections used to drop the base connection's
 * `ssl`: here they could not connect at all.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import {
  KnexTenantStore,
  TenantManager,
  createDatabaseTenantKnex,
  migrateCentral,
  runWithTenant,
  type TenantMigration,
  type TenantRecord,
} from '../../../src/index';
import {
  startEmbeddedPostgres,
  type EmbeddedPostgresServer,
} from '../../../demo/embedded-postgres';

/** As root the embedded server runs as `postgres`: it must own its key and hba file. */
function serverOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}

describe('database mode on a PostgreSQL that requires TLS', function () {
  this.timeout(180_000);
  let dir: string;
  let ca: string;
  let server: EmbeddedPostgresServer;
  let central: Knex;
  const knexes: Knex[] = [];

  const tlsConnection = (database: string) => ({
    host: '127.0.0.1',
    port: server.port,
    user: 'postgres',
    database,
    ssl: { ca, rejectUnauthorized: true },
  });

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tenantry-tls-'));
    const made = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        path.join(dir, 'server.key'),
        '-out',
        path.join(dir, 'server.crt'),
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { encoding: 'utf8' },
    );
    if (made.status !== 0) {
      throw new Error(`This spec needs openssl to make a self-signed certificate: ${made.stderr}`);
    }
    ca = readFileSync(path.join(dir, 'server.crt'), 'utf8');
    writeFileSync(
      path.join(dir, 'pg_hba.conf'),
      [
        'local all all trust',
        'hostssl all all 127.0.0.1/32 trust',
        'hostnossl all all 0.0.0.0/0 reject',
        '',
      ].join('\n'),
    );
    chmodSync(path.join(dir, 'server.key'), 0o600);
    const owner = serverOwner();
    if (owner !== undefined) {
      for (const f of ['', 'server.key', 'server.crt', 'pg_hba.conf']) {
        chownSync(path.join(dir, f), owner.uid, owner.gid);
      }
    }
    server = await startEmbeddedPostgres({
      name: 'tls-pg',
      settings: {
        ssl: 'on',
        ssl_cert_file: path.join(dir, 'server.crt'),
        ssl_key_file: path.join(dir, 'server.key'),
        hba_file: path.join(dir, 'pg_hba.conf'),
      },
    });
    central = knexFactory({
      client: 'pg',
      connection: tlsConnection('postgres'),
      pool: { max: 2 },
    });
    knexes.push(central);
  });

  after(async () => {
    await Promise.allSettled(knexes.map((k) => k.destroy()));
    await server?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an unencrypted connection (so the specs below cannot pass without TLS)', async () => {
    const plain = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres' });
    const error = await plain.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    await plain.end().catch(() => undefined);
    expect(String(error)).to.match(/no encryption|pg_hba/);
  });

  it('opens every tenant pool connection with the base connection ssl settings', async () => {
    const records: TenantRecord[] = [];
    for (const name of ['tls_a', 'tls_b']) {
      await central.raw(`drop database if exists ${name}`);
      await central.raw(`create database ${name}`);
      records.push({
        id: name.replace('_', '-'),
        name,
        status: 'active',
        isolation: { database: { database: name } },
        config: {},
      });
    }
    const db = createDatabaseTenantKnex(central);
    try {
      for (const record of records) {
        const seen = (await runWithTenant(record, () =>
          db.raw(
            'select current_database() as d, ssl from pg_stat_ssl where pid = pg_backend_pid()',
          ),
        )) as { rows: Array<{ d: string; ssl: boolean }> };
        expect(seen.rows).to.deep.equal([{ d: record.isolation.database?.database, ssl: true }]);
      }
      const all = (await central.raw(
        `select a.application_name, s.ssl from pg_stat_activity a join pg_stat_ssl s using (pid)
          where a.application_name like 'tenantry:%'`,
      )) as { rows: Array<{ application_name: string; ssl: boolean }> };
      expect(all.rows.length).to.be.greaterThan(0);
      expect(all.rows.filter((r) => !r.ssl)).to.deep.equal([]);
    } finally {
      await db.destroy();
    }
  });

  it('provisions, migrates and purges a tenant database over TLS', async () => {
    await migrateCentral(central);
    const manager = new TenantManager({
      knex: central,
      store: new KnexTenantStore(central),
      mode: 'database',
      databasePrefix: 'tls_prov_',
      migrations: [
        {
          name: '001_notes',
          up: async (k: Knex) => {
            await k.schema.createTable('notes', (t) => t.text('body'));
            const ssl = (await k.raw(
              'select ssl from pg_stat_ssl where pid = pg_backend_pid()',
            )) as { rows: Array<{ ssl: boolean }> };
            if (ssl.rows[0]?.ssl !== true) throw new Error('migration connection is not encrypted');
          },
        },
      ] satisfies (TenantMigration & { name: string })[],
    });
    const tenant = await manager.create({ id: 'tls-prov' });
    expect(tenant.status).to.equal('active');
    const db = createDatabaseTenantKnex(central);
    try {
      const tables = (await runWithTenant(tenant, () =>
        db.raw(
          `select count(*)::int as n from information_schema.tables where table_name = 'notes'`,
        ),
      )) as { rows: Array<{ n: number }> };
      expect(tables.rows[0]?.n).to.equal(1);
    } finally {
      await db.destroy();
    }
    await manager.delete('tls-prov', { purge: true });
  });
});
