import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { expect } from 'chai';
import express from 'express';
import type { Knex } from 'knex';
import request from 'supertest';
import {
  InMemoryTenantStore,
  resolveTenant,
  tenancyErrorHandler,
  tenancyTelemetry,
  withTenancy,
  type TenantStatementEvent,
} from '../../src/index';
import { createRowFixture } from '../isolation/support/row-fixture';
import { testServer } from '../support/test-database';

const run = promisify(execFile);

describe('tenantry without a tracer', function () {
  this.timeout(60_000);
  let knex: Knex;
  let database: string;

  before(async () => {
    ({ knex, database } = await createRowFixture());
  });

  function app(statements: TenantStatementEvent[]): express.Express {
    const telemetry = tenancyTelemetry({ metrics: { statement: (e) => statements.push(e) } });
    const db = withTenancy(knex, { tenantTables: ['documents'], telemetry });
    const tracer = trace.getTracer('no-provider');
    const server = express();
    // A span started with no provider registered is a non-recording one.
    server.use((_req, _res, next) => tracer.startActiveSpan('request', () => next()));
    server.use(
      resolveTenant({
        store: new InMemoryTenantStore([{ id: 'acme' }, { id: 'globex' }]),
        telemetry,
      }),
    );
    server.get('/documents', async (_req, res) => {
      res.json(await db('documents').select('tenant_id'));
    });
    server.use(tenancyErrorHandler());
    return server;
  }

  async function twoTenants(statements: TenantStatementEvent[]): Promise<void> {
    const server = app(statements);
    const [acme, globex] = await Promise.all([
      request(server).get('/documents').set('X-Tenant-ID', 'acme'),
      request(server).get('/documents').set('X-Tenant-ID', 'globex'),
    ]);
    expect(acme.status).to.equal(200);
    expect(new Set(acme.body.map((r: { tenant_id: string }) => r.tenant_id))).to.deep.equal(
      new Set(['acme']),
    );
    expect(new Set(globex.body.map((r: { tenant_id: string }) => r.tenant_id))).to.deep.equal(
      new Set(['globex']),
    );
    expect(statements.map((s) => s.tenantId).sort()).to.deep.equal(['acme', 'globex']);
  }

  it('serves and counts with @opentelemetry/api installed and nothing registered', async () => {
    trace.disable();
    context.disable();
    expect(trace.getActiveSpan()).to.equal(undefined);
    await twoTenants([]);
  });

  it('serves and counts with a context manager but no tracer provider (non-recording spans)', async () => {
    const manager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(manager);
    try {
      await twoTenants([]);
    } finally {
      context.disable();
    }
  });

  it('loads and serves when @opentelemetry/api is not installed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tenantry-no-otel-'));
    // Makes @opentelemetry/* unresolvable in the child, as in an app that does not install it.
    writeFileSync(
      path.join(dir, 'hide-otel.js'),
      `const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (String(request).startsWith('@opentelemetry/')) {
    const error = new Error("Cannot find module '" + request + "'");
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolve.call(this, request, ...rest);
};
`,
    );
    const index = path.resolve(__dirname, '..', '..', 'src', 'index.js');
    writeFileSync(
      path.join(dir, 'main.js'),
      `require(${JSON.stringify(require.resolve('reflect-metadata'))});
const knexFactory = require(${JSON.stringify(require.resolve('knex'))});
const t = require(${JSON.stringify(index)});
let hidden = false;
// Resolved from tenantry's own folder, where it is installed in this repository.
try { require('node:module').createRequire(${JSON.stringify(index)})('@opentelemetry/api'); } catch (e) { hidden = e.code === 'MODULE_NOT_FOUND'; }
(async () => {
  const knex = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL });
  const statements = [];
  const db = t.withTenancy(knex, {
    tenantTables: ['documents'],
    telemetry: t.tenancyTelemetry({ metrics: { statement: (e) => statements.push(e.tenantId) } }),
  });
  const plain = t.withTenancy(knex, { tenantTables: ['documents'] });
  const rows = await t.runWithTenant('acme', () => db('documents').pluck('tenant_id'));
  const more = await t.runWithTenant('globex', () => plain('documents').pluck('tenant_id'));
  await knex.destroy();
  const loaded = Object.keys(require.cache).some((k) => k.includes('@opentelemetry'));
  process.stdout.write(JSON.stringify({ hidden, loaded, rows, more, statements }));
})().catch((e) => { console.error(e); process.exit(1); });
`,
    );
    const { stdout } = await run(
      process.execPath,
      ['--require', path.join(dir, 'hide-otel.js'), path.join(dir, 'main.js')],
      { env: { ...process.env, DATABASE_URL: testServer().urlFor(database) } },
    );
    expect(JSON.parse(stdout)).to.deep.equal({
      hidden: true,
      loaded: false,
      rows: ['acme', 'acme', 'acme'],
      more: ['globex', 'globex', 'globex'],
      statements: ['acme'],
    });
  });
});
