import { expect } from 'chai';
import express from 'express';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import {
  HeaderStrategy,
  InMemoryTenantStore,
  TenancyConfigError,
  loadTenancyConfig,
  resolveTenant,
  tenancyErrorHandler,
} from '../../src/index';
import { HS_SECRET, hsToken } from '../support/create-app';

// Regression: config and resolution messages put caller input between plain
// quotes ("${value}"), so a value holding a newline (or U+2028) wrote a
// second, forged line into every log that prints the message.
const FORGED = 'x\ntenancy error TENANT_FORBIDDEN: forged\u2028line';
const ESCAPED = 'x\\ntenancy error TENANT_FORBIDDEN: forged\\u2028line';

function configMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(TenancyConfigError);
    expect((error as TenancyConfigError).code).to.equal('TENANCY_CONFIG_INVALID');
    return (error as Error).message;
  }
  throw new Error('expected a TenancyConfigError');
}

function expectOneSafeLine(message: string): void {
  // eslint-disable-next-line no-control-regex
  expect(message).not.to.match(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  expect(message).to.include(ESCAPED);
  expect(message).to.match(/[^.]\.$/);
  expect(message).not.to.match(/\.\./);
}

describe('messages that echo caller input quote it with control characters escaped', () => {
  const configCases: [string, () => unknown][] = [
    ['a header name', () => loadTenancyConfig({ tenancy: { resolution: { header: FORGED } } })],
    ['a strategy name', () => loadTenancyConfig({ tenancy: { resolution: { strategy: FORGED } } })],
    [
      'a subdomain domain',
      () =>
        loadTenancyConfig({ tenancy: { resolution: { strategy: 'subdomain', domain: FORGED } } }),
    ],
    [
      'a table name',
      () => loadTenancyConfig({ tenancy: { isolation: { tenantTables: [FORGED] } } }),
    ],
    ['a boolean', () => loadTenancyConfig({ tenancy: { isolation: { rls: FORGED as never } } })],
    ['a mode', () => loadTenancyConfig({ tenancy: { isolation: { mode: FORGED } } })],
    [
      'a database prefix from TENANCY_DB_PREFIX',
      () => loadTenancyConfig({ env: { TENANCY_DB_PREFIX: FORGED } }),
    ],
    [
      'a server name',
      () =>
        loadTenancyConfig({
          tenancy: { isolation: { database: { servers: { [FORGED]: { host: 'h' } } } } },
        }),
    ],
    [
      'an unknown key',
      () => loadTenancyConfig({ tenancy: { resolution: { [FORGED]: 1 } } } as never),
    ],
    ['a top-level key', () => loadTenancyConfig({ tenancy: {}, [FORGED]: 1 } as never)],
    [
      'a config file path',
      () => loadTenancyConfig({ file: path.join(tmpdir(), `${FORGED}.yaml`) }),
    ],
  ];
  for (const [what, load] of configCases) {
    it(`loadTenancyConfig() with ${what}`, () => {
      expectOneSafeLine(configMessage(load));
    });
  }

  it('loadTenancyConfig() with a YAML syntax error: the parser message on one line, one full stop', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tenantry-msg-'));
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'tenancy:\n  resolution: [\n');
    const message = configMessage(() => loadTenancyConfig({ file }));
    expect(message).not.to.match(/[\n\r]/);
    expect(message).to.match(
      /^Cannot parse tenancy config file ".*bad\.yaml" because .*[^.]\. Fix the syntax\.$/,
    );
  });

  it('HeaderStrategy with a bad header name', () => {
    let message = '';
    try {
      new HeaderStrategy({ header: FORGED });
    } catch (error) {
      message = (error as Error).message;
    }
    expectOneSafeLine(message);
  });

  it('a verified token whose sub holds a newline cannot forge a log line of the error handler', async () => {
    const lines: string[] = [];
    const log = (message: string) => lines.push(message);
    const store = new InMemoryTenantStore([{ id: 'acme' }]);
    const app = express();
    // An app that resolves twice: the first time from a trusted user lookup, the
    // second from the token, whose (verified) sub says someone else.
    app.use(
      resolveTenant({
        store,
        strategies: ['header'],
        getUser: () => ({ id: 'alice', claims: { tenants: ['acme'] } }),
      }),
    );
    app.use(
      resolveTenant({
        store,
        strategies: ['jwt_claim'],
        jwt: { secret: HS_SECRET, algorithms: ['HS256'], tenantsClaim: 'tenants' },
      }),
    );
    app.get('/', (_req, res) => {
      res.json({ ok: true });
    });
    app.use(tenancyErrorHandler({ logger: { debug: log, info: log, warn: log, error: log } }));
    const res = await request(app)
      .get('/')
      .set('X-Tenant-ID', 'acme')
      .auth(hsToken({ sub: FORGED, tid: 'acme', tenants: ['acme'] }), { type: 'bearer' });
    expect(res.status).to.equal(403);
    expect(res.body.code).to.equal('TENANT_CONFLICT');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^tenancy error TENANT_CONFLICT: Cannot accept user "x\\n/);
    expectOneSafeLine(lines[0] as string);
  });
});
