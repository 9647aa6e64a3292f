import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { Knex } from 'knex';
import { KnexTenantStore } from '../../src/index';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { freePort } from '../../demo/embedded-postgres';
import { DEMO_JWT_SECRET, mintDemoToken } from '../../demo/demo-users';
import { uniquePrefix } from '../../bench/load/run-load';
import { adminQuery, createScratchDatabase, createTestKnex } from '../support/test-database';

interface Outcome {
  status: number;
  code?: string;
  contentType: string;
}

/**
 * Database mode: one tenant's database is dropped, another tenant's server
 * is unreachable; only those tenants get 503 TENANT_UNAVAILABLE, quickly,
 * while every request of the healthy tenants succeeds.
 */
describe('database mode with one tenant database gone', function () {
  this.timeout(60_000);
  let central: Knex;
  let demo: DemoApp;
  let server: Server;
  let port: number;
  const prefix = uniquePrefix('out');

  before(async () => {
    central = createTestKnex({ pool: { min: 0, max: 10 } }, await createScratchDatabase('outage'));
    // A configured server nobody listens on.
    const offlinePort = await freePort();
    demo = await createDemoApp({
      knex: central,
      isolation: 'database',
      env: false,
      databasePrefix: prefix,
      databaseServers: { offline: { host: '127.0.0.1', port: offlinePort } },
    });
    // A tenant whose database lives on that server.
    await new KnexTenantStore(central).create({
      id: 'offline',
      name: 'Offline',
      isolation: { database: { server: 'offline', database: `${prefix}offline` } },
    });
    server = demo.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise((r) => server?.close(r));
    await demo?.close();
    const dbs = await adminQuery('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [
      prefix,
    ]);
    for (const row of dbs.rows as { datname: string }[]) {
      await adminQuery(`DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
    }
  });

  async function get(token: string, path = '/documents'): Promise<Outcome> {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { code?: string }).code;
    } catch {
      code = undefined;
    }
    return {
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      ...(code ? { code } : {}),
    };
  }

  it('answers 503 TENANT_UNAVAILABLE only for the broken tenants; the others keep a 100% success rate', async () => {
    const acme = mintDemoToken('alice');
    const globex = mintDemoToken('bob');
    const offline = jwt.sign({ tid: 'offline', tenants: ['offline'] }, DEMO_JWT_SECRET, {
      algorithm: 'HS256',
      subject: 'olivia',
      expiresIn: 600,
    });
    // Warm both pools first, so globex's pool holds live connections when its database goes.
    expect((await get(acme)).status).to.equal(200);
    expect((await get(globex)).status).to.equal(200);
    const globexDb = demo.tenants.find((t) => t.id === 'globex')?.isolation.database?.database;
    expect(globexDb).to.be.a('string');
    await adminQuery(`DROP DATABASE "${globexDb as string}" WITH (FORCE)`);

    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 90 }, (_, i) =>
        get([acme, globex, offline][i % 3] as string).then((o) => ({
          who: ['acme', 'globex', 'offline'][i % 3],
          ...o,
        })),
      ),
    );
    const elapsed = Date.now() - started;
    const healthy = results.filter((r) => r.who === 'acme');
    const broken = results.filter((r) => r.who !== 'acme');
    expect(healthy.map((r) => r.status)).to.deep.equal(healthy.map(() => 200));
    for (const r of broken) {
      expect(r.status, JSON.stringify(r)).to.equal(503);
      expect(r.code).to.equal('TENANT_UNAVAILABLE');
      expect(r.contentType).to.match(/^application\/problem\+json/);
    }
    expect(elapsed, 'no hang').to.be.lessThan(15_000);
    // Still healthy afterwards.
    expect((await get(acme)).status).to.equal(200);
  });
});
