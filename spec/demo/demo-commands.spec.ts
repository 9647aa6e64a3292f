/**
 * The demo's commands as a newcomer runs them: `node build/demo/mint-token.js`
 * and `node build/demo/main.js` (what `npm run demo:token` and `npm run demo`
 * run after the build), plus the config sources of createDemoApp().
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { Knex } from 'knex';
import request from 'supertest';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { DEMO_JWT_SECRET } from '../../demo/demo-users';
import { createScratchDatabase, createTestKnex, testServer } from '../support/test-database';

const BUILD_DEMO = path.resolve(__dirname, '..', '..', 'demo');
const MINT = path.join(BUILD_DEMO, 'mint-token.js');
const MAIN = path.join(BUILD_DEMO, 'main.js');
const OTHER_SECRET = 'another-demo-secret-at-least-32-bytes-long';

function mint(args: string[], env: NodeJS.ProcessEnv = {}) {
  const clean = { ...process.env };
  delete clean.TENANCY_JWT_SECRET;
  return spawnSync(process.execPath, [MINT, ...args], {
    encoding: 'utf8',
    env: { ...clean, ...env },
  });
}

describe('demo commands', function () {
  let scratch: string;
  let central: Knex;
  let demo: DemoApp;
  const extra: DemoApp[] = [];

  before(async function () {
    this.timeout(30_000);
    scratch = await createScratchDatabase('demo_cmd');
    central = createTestKnex({ pool: { min: 0, max: 4 } }, scratch);
    // Default config file (demo/tenancy.yaml), no environment: what `npm run demo` uses.
    demo = await createDemoApp({ knex: central, env: false });
  });

  after(async () => {
    for (const d of [demo, ...extra]) await d?.close();
  });

  describe('mint-token', () => {
    it('prints only a token whose claims are sub, tid, tenants and exp', () => {
      const run = mint(['carol']);
      expect(run.status).to.equal(0);
      const token = run.stdout.trim();
      expect(run.stdout).to.equal(`${token}\n`);
      const claims = jwt.verify(token, DEMO_JWT_SECRET, {
        algorithms: ['HS256'],
      }) as jwt.JwtPayload;
      expect(claims).to.include({ sub: 'carol', tid: 'acme' });
      expect(claims.tenants).to.deep.equal(['acme', 'globex']);
      const now = Math.floor(Date.now() / 1000);
      expect(claims.exp).to.be.within(now + 3500, now + 3700);
      const header = JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString());
      expect(header.alg).to.equal('HS256');
    });

    it('mints a token that the demo app (default config) accepts: alice sees acme', async () => {
      const run = mint(['alice']);
      expect(run.status).to.equal(0);
      const res = await request(demo.app)
        .get('/documents')
        .set('Authorization', `Bearer ${run.stdout.trim()}`)
        .expect(200);
      expect(res.body.documents.map((d: { title: string }) => d.title)).to.include(
        'Q3 anvil orders',
      );
      const settings = await request(demo.app)
        .get('/settings')
        .set('Authorization', `Bearer ${run.stdout.trim()}`)
        .expect(200);
      expect(settings.body.tenant.id).to.equal('acme');
    });

    it('acts for another of the user’s tenants with --tenant (path strategy)', async () => {
      const run = mint(['carol', '--tenant', 'globex']);
      expect(run.status).to.equal(0);
      const res = await request(demo.app)
        .get('/api/v1/globex/documents')
        .set('Authorization', `Bearer ${run.stdout.trim()}`)
        .expect(200);
      expect(res.body.documents.map((d: { title: string }) => d.title)).to.include(
        'Project Arcturus',
      );
    });

    it('exits 2 with a message for an unknown user or a tenant the user is not in', () => {
      for (const args of [['mallory'], ['alice', '--tenant', 'globex'], [], ['alice', '--bogus']]) {
        const run = mint(args);
        expect(run.status, args.join(' ')).to.equal(2);
        expect(run.stdout).to.equal('');
        expect(run.stderr).to.match(/^Cannot /);
      }
    });

    it('signs with TENANCY_JWT_SECRET when set, which the server reads too', async () => {
      const run = mint(['bob'], { TENANCY_JWT_SECRET: OTHER_SECRET });
      expect(run.status).to.equal(0);
      const token = run.stdout.trim();
      const refused = await request(demo.app)
        .get('/documents')
        .set('Authorization', `Bearer ${token}`)
        .expect(401);
      expect(refused.body.code).to.equal('TOKEN_INVALID');
      const withSecret = await createDemoApp({
        knex: central,
        env: { TENANCY_JWT_SECRET: OTHER_SECRET },
        seed: false,
      });
      extra.push(withSecret);
      await request(withSecret.app)
        .get('/documents')
        .set('Authorization', `Bearer ${token}`)
        .expect(200);
    });
  });

  describe('createDemoApp() configuration', () => {
    it('reads TENANCY_* from the environment over the config file', async () => {
      const fromEnv = await createDemoApp({
        knex: central,
        env: {
          TENANCY_ISOLATION: 'schema',
          TENANCY_RESOLUTION_STRATEGY: 'subdomain,jwt_claim',
          TENANCY_DOMAIN: 'example.test',
        },
        seed: false,
      });
      extra.push(fromEnv);
      expect(fromEnv.config.tenancy.isolation.mode).to.equal('schema');
      expect(fromEnv.config.tenancy.resolution.strategy).to.deep.equal(['subdomain', 'jwt_claim']);
      expect(fromEnv.config.tenancy.resolution.domain).to.equal('example.test');
      expect(fromEnv.db.tenancy.mode).to.equal('schema');
    });

    it('lets explicit options win over the environment', async () => {
      const explicit = await createDemoApp({
        knex: central,
        env: { TENANCY_ISOLATION: 'schema', TENANCY_RESOLUTION_STRATEGY: 'header' },
        isolation: 'row',
        strategies: ['path'],
        seed: false,
      });
      extra.push(explicit);
      expect(explicit.config.tenancy.isolation.mode).to.equal('row');
      expect(explicit.config.tenancy.resolution.strategy).to.deep.equal(['path']);
    });

    it('fails at start-up with TENANCY_CONFIG_INVALID for a bad mode or strategy', async () => {
      for (const env of [
        { TENANCY_ISOLATION: 'sharded' },
        { TENANCY_RESOLUTION_STRATEGY: 'cookie' },
      ]) {
        let error: unknown;
        try {
          extra.push(await createDemoApp({ knex: central, env, seed: false }));
        } catch (e) {
          error = e;
        }
        expect(error, JSON.stringify(env)).to.have.property('code', 'TENANCY_CONFIG_INVALID');
      }
    });
  });

  describe('main (npm run demo) with DATABASE_URL', () => {
    let child: ChildProcess | undefined;

    afterEach(() => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    });

    it('serves the API, prints a tour whose tokens work, and stops cleanly on SIGTERM', async function () {
      this.timeout(30_000);
      const database = await createScratchDatabase('demo_main');
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        DATABASE_URL: testServer().urlFor(database),
        PORT: '0',
      };
      delete env.TENANCY_JWT_SECRET;
      const proc = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      let out = '';
      proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      proc.stderr?.on('data', (c: Buffer) => (out += c.toString()));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 20_000);
        proc.stdout?.on('data', () => {
          if (/Ctrl-C stops/.test(out)) {
            clearTimeout(timer);
            resolve();
          }
        });
        proc.once('exit', (code) => reject(new Error(`demo exited (${code}):\n${out}`)));
      });
      const base = /listening on (http:\/\/localhost:\d+)/.exec(out)?.[1];
      const bob = /export BOB=(\S+)/.exec(out)?.[1];
      expect(base, out).to.be.a('string');
      expect(bob, out).to.be.a('string');
      const res = await fetch(`${base as string}/documents`, {
        headers: { Authorization: `Bearer ${bob as string}` },
      });
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { documents: { title: string }[] };
      expect(body.documents.map((d) => d.title)).to.include('Hammock District plans');
      const suspended = await fetch(`${base as string}/documents`, {
        headers: { 'X-Tenant-ID': 'initech' },
      });
      expect(suspended.status).to.equal(403);
      const exit = new Promise<number | null>((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      expect(await exit).to.equal(0);
      expect(out).to.include('SIGTERM: stopping');
    });
  });
});
