/**
 * Runs demo/tour.sh (the README's five-minute tour, verbatim) against the
 * demo app with its default config, and checks every step's answer.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createDemoApp, type DemoApp } from '../../demo/app';
import { demoTour } from '../../demo/demo-tour';
import type { TenantStrategyName } from '../../src/index';
import { createScratchDatabase, createTestKnex } from '../support/test-database';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('the README tour (demo/tour.sh)', function () {
  let demo: DemoApp;
  let server: Server;

  before(async function () {
    this.timeout(30_000);
    const scratch = await createScratchDatabase('demo_tour');
    demo = await createDemoApp({
      knex: createTestKnex({ pool: { min: 0, max: 4 } }, scratch),
      env: false,
    });
    server = await new Promise<Server>((resolve) => {
      const s = demo.app.listen(0, '127.0.0.1', () => resolve(s));
    });
  });

  after(async () => {
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    await demo?.close();
  });

  it('runs as written and every step answers as the README says', async function () {
    this.timeout(20_000);
    const { port } = server.address() as AddressInfo;
    const env: NodeJS.ProcessEnv = { ...process.env, BASE: `http://localhost:${port}` };
    delete env.TENANCY_JWT_SECRET;
    // Async on purpose: the server runs in this process, a sync spawn would starve it.
    const run = await promisify(execFile)('bash', ['demo/tour.sh'], { cwd: ROOT, env });
    expect(run.stderr).to.equal('');
    const answers = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(answers).to.have.length(11);
    const [
      aliceDocs,
      bobDocs,
      created,
      sneaky,
      foreign,
      missing,
      carol,
      conflict,
      suspended,
      anonymous,
      settings,
    ] = answers as [Record<string, unknown>, ...Record<string, unknown>[]];
    const titles = (a: Record<string, unknown> | undefined) =>
      (a?.documents as { title: string }[]).map((d) => d.title);
    expect(titles(aliceDocs)).to.include('Q3 anvil orders').and.not.include('Project Arcturus');
    expect(titles(bobDocs)).to.include('Project Arcturus').and.not.include('Q3 anvil orders');
    expect(created).to.include({ title: 'Tour note', body: 'written by alice' });
    expect(sneaky).to.include({ status: 400, code: 'VALIDATION_FAILED' });
    expect(foreign).to.include({ status: 404, code: 'DOCUMENT_NOT_FOUND' });
    expect({ ...foreign, instance: null }).to.deep.equal({ ...missing, instance: null });
    expect(titles(carol)).to.include('Project Arcturus').and.not.include('Tour note');
    expect(conflict).to.include({ status: 403, code: 'TENANT_CONFLICT' });
    expect(suspended).to.include({ status: 403, code: 'TENANT_SUSPENDED' });
    expect(anonymous).to.include({ status: 401, code: 'AUTHENTICATION_REQUIRED' });
    expect(settings?.tenant).to.deep.include({ id: 'globex' });
    expect(settings?.settings).to.include({ locale: 'de-DE' });
  });
});

describe('the start-up banner of npm run demo (demoTour)', function () {
  let central: Knex;
  const running: { demo: DemoApp; server: Server }[] = [];

  before(async function () {
    this.timeout(30_000);
    const scratch = await createScratchDatabase('demo_banner');
    central = createTestKnex({ pool: { min: 0, max: 4 } }, scratch);
  });

  after(async () => {
    for (const { demo, server } of running) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await demo.close();
    }
  });

  const chains: (readonly TenantStrategyName[] | undefined)[] = [
    undefined, // the demo default: jwt_claim, header, path
    ['subdomain', 'jwt_claim'],
    ['header'],
    ['path'],
    ['jwt_claim'],
  ];
  for (const chain of chains) {
    it(`prints curl commands that work as printed (${chain?.join(',') ?? 'default chain'})`, async function () {
      this.timeout(20_000);
      const demo = await createDemoApp({
        knex: central,
        env: false,
        ...(chain ? { strategies: chain } : {}),
        seed: running.length === 0,
      });
      const server = await new Promise<Server>((resolve) => {
        const s = demo.app.listen(0, '127.0.0.1', () => resolve(s));
      });
      running.push({ demo, server });
      const { port } = server.address() as AddressInfo;
      const banner = demoTour(`http://localhost:${port}`, demo.config);
      const exports = banner.split('\n').filter((l) => l.startsWith('  export '));
      const curls = banner.split('\n').filter((l) => l.startsWith('  curl '));
      expect(exports).to.have.length(3);
      expect(curls.length).to.be.at.least(3);
      for (const line of curls) {
        const expected = /# (\d{3}) ([A-Z_]+)$/.exec(line);
        const script = `${exports.join('\n')}\n${line.replace(/\s+#.*$/, '')} -w '\\n%{http_code}'`;
        const run = await promisify(execFile)('bash', ['-c', script]);
        const [body, status] = run.stdout.split('\n') as [string, string];
        const json = JSON.parse(body) as { code?: string };
        if (expected) {
          expect(status, line).to.equal(expected[1]);
          expect(json.code, line).to.equal(expected[2]);
        } else {
          expect(status, `${line}\n${body}`).to.match(/^20[01]$/);
        }
      }
    });
  }
});
