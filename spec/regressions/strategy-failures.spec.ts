import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import request from 'supertest';

/**
 * Regression: a custom strategy whose accept() threw after an async step took
 * the whole process down (an unhandled rejection, exit 1); a plain Error from
 * a strategy reached Express's HTML handler instead of a problem document.
 * The app runs in its own process here, so a crash is seen as a crash.
 */
describe('regression: a failing strategy, membership check, user lookup or store never crashes the process', () => {
  let child: ChildProcess;
  let base: string;
  let stderr = '';

  before(async () => {
    child = spawn(process.execPath, [join(__dirname, 'support', 'throwing-strategy-app.js')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
    base = `http://127.0.0.1:${chunk.toString().trim()}`;
  });

  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });

  const cases: [string, number, string][] = [
    ['resolve-throw', 500, 'TENANT_RESOLUTION_FAILED'],
    ['resolve-reject', 500, 'TENANT_RESOLUTION_FAILED'],
    ['resolve-reject-later', 500, 'TENANT_RESOLUTION_FAILED'],
    ['resolve-null', 500, 'TENANT_RESOLUTION_FAILED'],
    ['resolve-throw-string', 500, 'TENANT_RESOLUTION_FAILED'],
    ['accept-throw', 500, 'TENANT_RESOLUTION_FAILED'],
    ['accept-throw-async', 500, 'TENANT_RESOLUTION_FAILED'],
    ['member-throw', 500, 'TENANT_RESOLUTION_FAILED'],
    ['member-reject', 500, 'TENANT_RESOLUTION_FAILED'],
    ['user-throw', 500, 'TENANT_RESOLUTION_FAILED'],
    ['user-reject', 500, 'TENANT_RESOLUTION_FAILED'],
    ['store-throw', 503, 'TENANT_UNAVAILABLE'],
  ];

  for (const [hook, status, code] of cases) {
    it(`answers ${status} ${code} as problem+json when ${hook}, and keeps serving`, async () => {
      const res = await request(base).get('/').set('X-Fail', hook).expect(status);
      expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
      const body = JSON.parse(res.text) as { code: string; status: number; detail?: string };
      expect(body).to.include({ code, status });
      if (status === 500) expect(body.detail).to.equal(undefined); // the cause is never rendered
      await request(base).get('/health').expect(200, { ok: true });
      expect(child.exitCode, stderr).to.equal(null);
    });
  }

  it('still resolves a healthy request after every failure', async () => {
    await request(base).get('/').set('X-Fail', 'none').expect(200, { tenant: 'acme' });
    expect(child.exitCode, stderr).to.equal(null);
    expect(stderr).to.not.match(/Unhandled|UnhandledPromiseRejection/);
  });
});
