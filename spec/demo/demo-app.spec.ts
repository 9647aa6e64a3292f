/**
 * End to end: the demo app in each isolation mode, driven over real HTTP
 * with each resolution strategy, on a real PostgreSQL (a scratch database
 * per mode; database mode also gets one database per tenant).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { Knex } from 'knex';
import request from 'supertest';
import type { Test } from 'supertest';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { DEMO_DOCUMENTS } from '../../demo/demo-tenants';
import { demoJwtSecret, mintDemoToken } from '../../demo/demo-users';
import type { IsolationMode, TenantStrategyName } from '../../src/index';
import {
  adminQuery,
  createScratchDatabase,
  createTestKnex,
  destroyTestKnex,
} from '../support/test-database';

const MODES: readonly IsolationMode[] = ['row', 'schema', 'database'];
const STRATEGIES: readonly TenantStrategyName[] = ['header', 'jwt_claim', 'subdomain', 'path'];
const DOMAIN = 'demo.test';

interface DocumentBody {
  id: string;
  title: string;
  body: string;
}

/** Reads tenant data straight from PostgreSQL, bypassing the app and tenantry. */
class DirectDb {
  readonly #tenantKnex = new Map<string, Knex>();

  constructor(
    readonly mode: IsolationMode,
    readonly central: Knex,
    readonly databasePrefix: string,
  ) {}

  databaseOf(tenant: string): string {
    return `${this.databasePrefix}${tenant}`;
  }

  #knexOf(tenant: string): Knex {
    let knex = this.#tenantKnex.get(tenant);
    if (!knex) {
      knex = createTestKnex({ pool: { min: 0, max: 1 } }, this.databaseOf(tenant));
      this.#tenantKnex.set(tenant, knex);
    }
    return knex;
  }

  /** The documents stored for `tenant`. */
  async documents(tenant: string): Promise<DocumentBody[]> {
    const columns = ['id', 'title', 'body'];
    switch (this.mode) {
      case 'row':
        return this.central('documents').select(columns).where({ tenant_id: tenant });
      case 'schema':
        return this.central.withSchema(`tenant_${tenant}`).from('documents').select(columns);
      default:
        return this.#knexOf(tenant)('documents').select(columns);
    }
  }

  /** Which tenants hold a document with this id. */
  async ownersOf(id: string): Promise<string[]> {
    const owners: string[] = [];
    for (const tenant of ['acme', 'globex', 'initech']) {
      if ((await this.documents(tenant)).some((d) => d.id === id)) owners.push(tenant);
    }
    return owners;
  }

  async close(): Promise<void> {
    for (const knex of this.#tenantKnex.values()) await destroyTestKnex(knex);
    this.#tenantKnex.clear();
  }
}

/** Builds a request addressed to `tenant` the way `strategy` reads it, signed in as `user`. */
function call(
  app: DemoApp['app'],
  strategy: TenantStrategyName,
  method: 'get' | 'post' | 'patch' | 'delete',
  route: string,
  who: { user?: string; tenant: string },
): Test {
  const url = strategy === 'path' ? `/api/v1/${who.tenant}${route}` : route;
  let test = request(app)[method](url);
  if (strategy === 'header') test = test.set('X-Tenant-ID', who.tenant);
  if (strategy === 'subdomain') test = test.set('Host', `${who.tenant}.${DOMAIN}`);
  if (who.user !== undefined) {
    test = test.set('Authorization', `Bearer ${mintDemoToken(who.user, { tenant: who.tenant })}`);
  }
  return test;
}

function titles(body: { documents: DocumentBody[] }): string[] {
  return body.documents.map((d) => d.title).sort();
}

function seedTitles(tenant: string): string[] {
  return (DEMO_DOCUMENTS[tenant] ?? []).map((d) => d.title).sort();
}

for (const mode of MODES) {
  describe(`demo app (${mode} isolation)`, function () {
    let scratch: string;
    let central: Knex;
    let direct: DirectDb;
    const apps: DemoApp[] = [];
    const byStrategy = new Map<TenantStrategyName, DemoApp>();
    // Short and unique: tenant database names must not clash with concurrent runs.
    const databasePrefix = `tdemo${randomBytes(4).toString('hex')}_`;

    before(async function () {
      this.timeout(60_000);
      scratch = await createScratchDatabase(`demo_${mode}`);
      central = createTestKnex({ pool: { min: 0, max: 8 } }, scratch);
      direct = new DirectDb(mode, central, databasePrefix);
      for (const strategy of STRATEGIES) {
        const demo = await createDemoApp({
          knex: central,
          isolation: mode,
          strategies: [strategy],
          domain: DOMAIN,
          // The prefix through the config variable, as an operator sets it (and the CLI reads it).
          env: { TENANCY_DB_PREFIX: databasePrefix },
          // The first app seeds; seeding is idempotent, the others only skip the work.
          seed: apps.length === 0,
        });
        apps.push(demo);
        byStrategy.set(strategy, demo);
      }
    });

    after(async function () {
      this.timeout(30_000);
      for (const demo of apps) await demo.close();
      await direct?.close();
      if (mode === 'database') {
        for (const tenant of ['acme', 'globex', 'initech']) {
          await adminQuery(
            `DROP DATABASE IF EXISTS "${direct.databaseOf(tenant)}" WITH (FORCE)`,
          ).catch(() => undefined);
        }
      }
    });

    const app = (strategy: TenantStrategyName) => (byStrategy.get(strategy) as DemoApp).app;

    it('seeded every tenant with its own documents, stored in its own place', async () => {
      for (const tenant of ['acme', 'globex', 'initech']) {
        const stored = (await direct.documents(tenant)).map((d) => d.title).sort();
        expect(stored).to.deep.equal(seedTitles(tenant));
      }
    });

    for (const strategy of STRATEGIES) {
      describe(`with the ${strategy} strategy`, () => {
        it('shows each tenant exactly its own documents, as stored in the database', async () => {
          const cases = [
            { user: 'alice', tenant: 'acme' },
            { user: 'bob', tenant: 'globex' },
            // carol belongs to both and sees each one in turn, never both at once.
            { user: 'carol', tenant: 'acme' },
            { user: 'carol', tenant: 'globex' },
          ];
          for (const who of cases) {
            const res = await call(app(strategy), strategy, 'get', '/documents', who).expect(200);
            const seen = (res.body.documents as DocumentBody[]).map((d) => d.id).sort();
            const stored = (await direct.documents(who.tenant)).map((d) => d.id).sort();
            expect(seen, `${who.user}@${who.tenant}`).to.deep.equal(stored);
            expect(titles(res.body)).to.include.members(seedTitles(who.tenant));
            const other = who.tenant === 'acme' ? 'globex' : 'acme';
            expect(titles(res.body)).to.not.include.members(seedTitles(other));
          }
        });

        it('answers a foreign document id exactly like a missing one (404)', async () => {
          const globexDoc = (await direct.documents('globex'))[0] as DocumentBody;
          const who = { user: 'alice', tenant: 'acme' };
          const missingId = randomUUID();
          const missing = await call(
            app(strategy),
            strategy,
            'get',
            `/documents/${missingId}`,
            who,
          );
          const foreign = await call(
            app(strategy),
            strategy,
            'get',
            `/documents/${globexDoc.id}`,
            who,
          );
          expect(missing.status).to.equal(404);
          expect(foreign.status).to.equal(404);
          expect(foreign.headers['content-type']).to.equal(missing.headers['content-type']);
          // Only `instance` (the requested path) may differ.
          expect({ ...foreign.body, instance: undefined }).to.deep.equal({
            ...missing.body,
            instance: undefined,
          });
          expect(foreign.body.code).to.equal('DOCUMENT_NOT_FOUND');

          const patch = await call(
            app(strategy),
            strategy,
            'patch',
            `/documents/${globexDoc.id}`,
            who,
          )
            .send({ title: 'pwned' })
            .expect(404);
          expect(patch.body.code).to.equal('DOCUMENT_NOT_FOUND');
          await call(app(strategy), strategy, 'delete', `/documents/${globexDoc.id}`, who).expect(
            404,
          );
          const after = (await direct.documents('globex')).find((d) => d.id === globexDoc.id);
          expect(after).to.deep.equal(globexDoc);
        });

        it('refuses the suspended tenant with 403 TENANT_SUSPENDED, even to its members', async () => {
          // The demo's users are not in initech: a token for a member is signed by hand.
          const member = jwt.sign({ tid: 'initech', tenants: ['initech'] }, demoJwtSecret({}), {
            algorithm: 'HS256',
            subject: 'ivan',
            expiresIn: 60,
          });
          const res = await call(app(strategy), strategy, 'get', '/documents', {
            tenant: 'initech',
          })
            .set('Authorization', `Bearer ${member}`)
            .expect(403);
          expect(res.body.code).to.equal('TENANT_SUSPENDED');
          expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
          if (strategy !== 'jwt_claim') {
            const anonymous = await call(app(strategy), strategy, 'get', '/documents', {
              tenant: 'initech',
            }).expect(403);
            expect(anonymous.body.code).to.equal('TENANT_SUSPENDED');
          }
        });

        it('writes land in the tenant of the request', async () => {
          const title = `bob ${strategy} ${randomUUID()}`;
          const res = await call(app(strategy), strategy, 'post', '/documents', {
            user: 'bob',
            tenant: 'globex',
          })
            .send({ title, body: 'written over HTTP' })
            .expect(201);
          expect(res.body.title).to.equal(title);
          expect(await direct.ownersOf(res.body.id as string)).to.deep.equal(['globex']);

          const renamed = `${title} (renamed)`;
          await call(app(strategy), strategy, 'patch', `/documents/${res.body.id as string}`, {
            user: 'carol',
            tenant: 'globex',
          })
            .send({ title: renamed })
            .expect(200);
          const stored = (await direct.documents('globex')).find((d) => d.id === res.body.id);
          expect(stored?.title).to.equal(renamed);
          expect(await direct.ownersOf(res.body.id as string)).to.deep.equal(['globex']);
        });

        it('never lets a body carrying another tenant_id create or move rows there', async () => {
          const acmeBefore = await direct.documents('acme');
          const bob = { user: 'bob', tenant: 'globex' };
          const created = await call(app(strategy), strategy, 'post', '/documents', bob)
            .send({ title: 'smuggled', tenant_id: 'acme' })
            .expect(400);
          expect(created.body.code).to.equal('VALIDATION_FAILED');
          expect(created.body.errors).to.deep.include({
            field: 'tenant_id',
            message: 'is set by the server from the resolved tenant',
          });
          const own = (await direct.documents('globex'))[0] as DocumentBody;
          await call(app(strategy), strategy, 'patch', `/documents/${own.id}`, bob)
            .send({ tenant_id: 'acme' })
            .expect(400);
          await call(app(strategy), strategy, 'patch', `/documents/${own.id}`, bob)
            .send({ title: own.title, tenantId: 'acme' })
            .expect(400);
          expect(await direct.documents('acme')).to.deep.equal(acmeBefore);
          expect(await direct.ownersOf(own.id)).to.deep.equal(['globex']);
        });

        if (strategy !== 'jwt_claim') {
          it('refuses a signed-in user who is not a member (403 TENANT_FORBIDDEN)', async () => {
            // alice's token names acme; the client-influenced source names globex.
            const url = strategy === 'path' ? '/api/v1/globex/documents' : '/documents';
            let test = request(app(strategy))
              .get(url)
              .set('Authorization', `Bearer ${mintDemoToken('alice')}`);
            if (strategy === 'header') test = test.set('X-Tenant-ID', 'globex');
            if (strategy === 'subdomain') test = test.set('Host', `globex.${DOMAIN}`);
            const res = await test.expect(403);
            expect(res.body.code).to.equal('TENANT_FORBIDDEN');
          });

          it('refuses an anonymous request to an active tenant (401 AUTHENTICATION_REQUIRED)', async () => {
            const res = await call(app(strategy), strategy, 'get', '/documents', {
              tenant: 'acme',
            }).expect(401);
            expect(res.body.code).to.equal('AUTHENTICATION_REQUIRED');
          });
        }
      });
    }

    it('runs the whole document lifecycle: create, read, update, delete', async () => {
      const alice = { user: 'alice', tenant: 'acme' };
      const created = await call(app('jwt_claim'), 'jwt_claim', 'post', '/documents', alice)
        .send({ title: '  Lifecycle  ', body: 'v1' })
        .expect(201);
      const id = created.body.id as string;
      expect(created.body).to.include({ title: 'Lifecycle', body: 'v1' });
      expect(created.headers.location).to.equal(`documents/${id}`);
      const read = await call(
        app('jwt_claim'),
        'jwt_claim',
        'get',
        `/documents/${id}`,
        alice,
      ).expect(200);
      expect(read.body).to.deep.equal(created.body);
      const patched = await call(app('jwt_claim'), 'jwt_claim', 'patch', `/documents/${id}`, alice)
        .send({ body: 'v2' })
        .expect(200);
      expect(patched.body).to.include({ id, title: 'Lifecycle', body: 'v2' });
      await call(app('jwt_claim'), 'jwt_claim', 'delete', `/documents/${id}`, alice).expect(204);
      await call(app('jwt_claim'), 'jwt_claim', 'get', `/documents/${id}`, alice).expect(404);
      expect(await direct.ownersOf(id)).to.deep.equal([]);
    });

    it('answers GET /settings with the tenant settings (defaults under tenant config)', async () => {
      const res = await call(app('header'), 'header', 'get', '/settings', {
        user: 'bob',
        tenant: 'globex',
      }).expect(200);
      expect(res.body.tenant).to.deep.equal({
        id: 'globex',
        name: 'Globex Corporation',
        status: 'active',
      });
      expect(res.body.settings).to.include({ theme: 'green', locale: 'de-DE', maxDocuments: 50 });
      expect(res.body.settings.features).to.deep.equal({ comments: false });
    });

    it('answers bad bodies with 400 problem+json and writes nothing', async () => {
      const alice = { user: 'alice', tenant: 'acme' };
      const before = await direct.documents('acme');
      const cases: { send: string | object; code: string }[] = [
        { send: {}, code: 'VALIDATION_FAILED' },
        { send: { title: '' }, code: 'VALIDATION_FAILED' },
        { send: { title: 42 }, code: 'VALIDATION_FAILED' },
        { send: { title: 'x'.repeat(201) }, code: 'VALIDATION_FAILED' },
        { send: { title: 'ok', body: ['no'] }, code: 'VALIDATION_FAILED' },
        { send: [{ title: 'array' }], code: 'VALIDATION_FAILED' },
        { send: '{"title": ', code: 'BODY_INVALID' },
      ];
      for (const c of cases) {
        const res = await call(app('jwt_claim'), 'jwt_claim', 'post', '/documents', alice)
          .set('Content-Type', 'application/json')
          .send(typeof c.send === 'string' ? c.send : JSON.stringify(c.send))
          .expect(400);
        expect(res.body.code, JSON.stringify(c.send)).to.equal(c.code);
        expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
        expect(res.body).to.include({ status: 400 });
      }
      expect(await direct.documents('acme')).to.deep.equal(before);
    });

    it('refuses a token and a header naming different tenants (403 TENANT_CONFLICT)', async () => {
      const demo = await createDemoApp({
        knex: central,
        isolation: mode,
        strategies: ['jwt_claim', 'header'],
        env: false,
        databasePrefix,
        seed: false,
      });
      apps.push(demo);
      const res = await request(demo.app)
        .get('/documents')
        .set('Authorization', `Bearer ${mintDemoToken('carol', { tenant: 'acme' })}`)
        .set('X-Tenant-ID', 'globex')
        .expect(403);
      expect(res.body.code).to.equal('TENANT_CONFLICT');
    });
  });
}
