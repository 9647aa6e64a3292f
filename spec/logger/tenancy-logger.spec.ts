import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import express from 'express';
import knexFactory, { type Knex } from 'knex';
import bunyan from 'bunyan';
import pino from 'pino';
import request from 'supertest';
import winston from 'winston';
import {
  TenantChangeNotifier,
  TenantForbiddenError,
  requestLogFields,
  resolveTenant,
  runAsSystem,
  runWithTenant,
  tenancyErrorHandler,
  tenantLogFields,
  tenantLogger,
  toTenancyLogger,
  withLogFields,
  withTenancy,
  type TenancyLogger,
} from '../../src/index';
import { createRowFixture } from '../isolation/support/row-fixture';
import { destroyTestKnex } from '../support/test-database';
import { testTenants } from '../support/create-app';

type Line = Record<string, unknown>;

/** A stream collecting the JSON lines a real logger writes. */
function captureStream(): { stream: Writable; lines: Line[] } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (text.trim() !== '') lines.push(JSON.parse(text) as Line);
      }
      done();
    },
  });
  return { stream, lines };
}

/** A real pino logger writing JSON lines to memory (synchronously). */
function capturedPino() {
  const { stream, lines } = captureStream();
  return { logger: pino({ level: 'debug', base: null, timestamp: false }, stream), lines };
}

/** A real winston logger with its JSON format, writing to memory. */
function capturedWinston() {
  const { stream, lines } = captureStream();
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines };
}

/** A real bunyan logger whose raw records are kept in memory. */
function capturedBunyan() {
  const records: Line[] = [];
  const logger = bunyan.createLogger({
    name: 'spec',
    level: 'debug',
    streams: [{ type: 'raw', stream: { write: (record: object) => records.push({ ...record }) } }],
  });
  const lines = () =>
    records.map(({ msg, level, tenantId, reason }) => ({ msg, level, tenantId, reason }));
  return { logger, lines };
}

/** winston writes through a transform; let it flush. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('toTenancyLogger()', () => {
  it('keeps the fields of a pino logger, which takes (fields, message)', () => {
    const { logger, lines } = capturedPino();
    toTenancyLogger(logger).warn('pool closed', { tenantId: 'acme', reason: 'idle' });
    expect(lines).to.deep.equal([
      { level: 40, tenantId: 'acme', reason: 'idle', msg: 'pool closed' },
    ]);
  });

  it('refuses a raw pino logger where a TenancyLogger is expected, at compile time', () => {
    const { logger } = capturedPino();
    // @ts-expect-error pino takes (fields, message): the fields would be dropped.
    const raw: TenancyLogger = logger;
    // What the compiler prevents: pino reads the message as its object and drops the fields.
    raw.warn('pool closed', { tenantId: 'acme' });
    expect(toTenancyLogger(logger)).not.to.equal(logger);
  });

  it('keeps the fields of a bunyan logger, and the compiler refuses it raw', () => {
    const { logger, lines } = capturedBunyan();
    // @ts-expect-error bunyan takes (fields, message): the fields would be dropped.
    const raw: TenancyLogger = logger;
    expect(raw).to.equal(logger);
    toTenancyLogger(logger).info('tenant created', { tenantId: 'acme', reason: 'signup' });
    expect(lines()).to.deep.equal([
      { msg: 'tenant created', level: 30, tenantId: 'acme', reason: 'signup' },
    ]);
  });

  it('passes message and fields to a winston logger as they are', async () => {
    const { logger, lines } = capturedWinston();
    const direct: TenancyLogger = logger; // message-first: accepted as it is
    direct.info('as is', { tenantId: 'acme' });
    toTenancyLogger(logger).error('listener failed', {
      tenantId: 'globex',
      error: Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' }),
    });
    await flush();
    expect(lines).to.deep.equal([
      { level: 'info', message: 'as is', tenantId: 'acme' },
      {
        level: 'error',
        message: 'listener failed',
        tenantId: 'globex',
        error: { name: 'Error', message: 'connection refused', code: 'ECONNREFUSED' },
      },
    ]);
  });

  it('treats a console-style logger as message-first, and honours an explicit style', () => {
    const calls: unknown[][] = [];
    const consoleLike = {
      debug: (...a: unknown[]) => calls.push(['debug', ...a]),
      info: (...a: unknown[]) => calls.push(['info', ...a]),
      warn: (...a: unknown[]) => calls.push(['warn', ...a]),
      error: (...a: unknown[]) => calls.push(['error', ...a]),
    };
    toTenancyLogger(consoleLike).info('hello', { a: 1 });
    toTenancyLogger(consoleLike).debug('no fields');
    toTenancyLogger(consoleLike, { style: 'fields-first' }).warn('swapped', { b: 2 });
    expect(calls).to.deep.equal([
      ['info', 'hello', { a: 1 }],
      ['debug', 'no fields'],
      ['warn', { b: 2 }, 'swapped'],
    ]);
  });

  it('accepts an explicit undefined (silent) and refuses what is not a logger with a TypeError', () => {
    expect(() => toTenancyLogger(undefined).error('x')).not.to.throw();
    expect(() => toTenancyLogger(undefined, { style: undefined })).not.to.throw();
    expect(() => toTenancyLogger(42 as unknown as TenancyLogger)).to.throw(
      TypeError,
      /not an object/,
    );
    expect(() => toTenancyLogger({ info() {} } as unknown as TenancyLogger)).to.throw(
      TypeError,
      /no debug\(\) method/,
    );
    expect(() =>
      toTenancyLogger(console, { style: 'backwards' as unknown as 'fields-first' }),
    ).to.throw(TypeError, /style/);
  });
});

describe('tenantLogger() and requestLogFields()', () => {
  it('puts the tenant id and request id on every line of a request: route, service, timer', async () => {
    const { logger, lines } = capturedPino();
    const log = tenantLogger(logger);
    const service = {
      async list(): Promise<string> {
        await sleep(5);
        log.info('service listing');
        return tenantLogFields().tenantId as string;
      },
    };
    const app = express();
    app.use(requestLogFields());
    app.use(resolveTenant({ store: testTenants() }));
    app.get('/docs', async (req, res) => {
      log.info('route start', { delayMs: Number(req.query.delay) });
      setTimeout(() => log.info('timer fired'), Number(req.query.delay));
      await sleep(Number(req.query.delay) * 2);
      res.json({ tenant: await service.list() });
    });
    // Interleave two tenants' requests: the slower one starts first.
    const [a, g] = await Promise.all([
      request(app).get('/docs?delay=30').set('X-Tenant-ID', 'acme').set('X-Request-Id', 'req-a'),
      request(app).get('/docs?delay=5').set('X-Tenant-ID', 'globex'),
    ]);
    expect(a.body).to.deep.equal({ tenant: 'acme' });
    expect(g.body).to.deep.equal({ tenant: 'globex' });
    expect(a.headers['x-request-id']).to.equal('req-a');
    const gid = g.headers['x-request-id'] as string;
    expect(gid).to.match(/^[0-9a-f-]{36}$/);
    const of = (tenantId: string) =>
      lines.filter((l) => l.tenantId === tenantId).map((l) => [l.msg, l.requestId]);
    expect(of('acme')).to.deep.equal([
      ['route start', 'req-a'],
      ['timer fired', 'req-a'],
      ['service listing', 'req-a'],
    ]);
    expect(of('globex')).to.deep.equal([
      ['route start', gid],
      ['timer fired', gid],
      ['service listing', gid],
    ]);
    expect(lines).to.have.length(6);
  });

  it('replaces a malformed or oversized X-Request-Id with a new one', async () => {
    const app = express();
    app.use(requestLogFields());
    app.get('/', (_req, res) => {
      res.json(tenantLogFields());
    });
    for (const bad of ['a b', 'x'.repeat(129), '<script>']) {
      const res = await request(app).get('/').set('X-Request-Id', bad).expect(200);
      expect(res.body.requestId).to.match(/^[0-9a-f-]{36}$/);
    }
    const none = requestLogFields({ header: false, responseHeader: false, generate: () => 'n-1' });
    const quiet = express().use(none, (_req, res) => {
      res.json(tenantLogFields());
    });
    const res = await request(quiet).get('/').set('X-Request-Id', 'client-id').expect(200);
    expect(res.body).to.deep.equal({ requestId: 'n-1' });
    expect(res.headers['x-request-id']).to.equal(undefined);
  });

  it('refuses bad options at factory time with a TypeError', () => {
    expect(() => requestLogFields({ header: '' })).to.throw(TypeError, /header/);
    expect(() => requestLogFields({ generate: 'uuid' as unknown as () => string })).to.throw(
      TypeError,
      /generate/,
    );
    expect(() => requestLogFields({ header: undefined, generate: undefined })).not.to.throw();
    expect(() => withLogFields(null as unknown as Record<string, unknown>, () => 1)).to.throw(
      TypeError,
    );
  });

  it('carries the tenant and job fields into a job, and the reason into a system scope', async () => {
    const { logger, lines } = capturedWinston();
    const log = tenantLogger(logger);
    await Promise.all(
      ['acme', 'globex'].map((tenant, i) =>
        withLogFields({ jobId: `job-${i}` }, () =>
          runWithTenant(tenant, async () => {
            await sleep(10 - i * 5);
            log.info('job ran');
          }),
        ),
      ),
    );
    runAsSystem('nightly report', () => log.warn('system work'));
    log.error('outside');
    await flush();
    expect(lines).to.deep.equal([
      { level: 'info', message: 'job ran', jobId: 'job-1', tenantId: 'globex' },
      { level: 'info', message: 'job ran', jobId: 'job-0', tenantId: 'acme' },
      { level: 'warn', message: 'system work', systemReason: 'nightly report' },
      { level: 'error', message: 'outside' },
    ]);
  });
});

describe('tenancyErrorHandler({ logger })', () => {
  let knex: Knex;

  before(async () => {
    ({ knex } = await createRowFixture());
  });

  after(async () => {
    await destroyTestKnex(knex);
  });

  it('logs a refused statement (500 UNSAFE_QUERY) at error level with the tenant, request id and the refused clause, never the values', async () => {
    const { logger, lines } = capturedPino();
    const db = withTenancy(knex, { tenantTables: ['documents', 'comments'] });
    const app = express();
    app.use(requestLogFields());
    app.use(resolveTenant({ store: testTenants() }));
    app.get('/search', async (_req, res) => {
      res.json(
        await db('documents').whereRaw('title = ? and exists (select 1 from comments)', [
          'password-hunter2',
        ]),
      );
    });
    app.use(tenancyErrorHandler({ logger }));
    const res = await request(app)
      .get('/search')
      .set('X-Tenant-ID', 'acme')
      .set('X-Request-Id', 'r-500')
      .expect(500);
    expect(res.body.code).to.equal('UNSAFE_QUERY');
    expect(res.text).not.to.contain('raw');
    expect(lines).to.have.length(1);
    const line = lines[0] as Line;
    expect(line).to.include({
      level: 50,
      code: 'UNSAFE_QUERY',
      status: 500,
      method: 'GET',
      path: '/search',
      tenantId: 'acme',
      requestId: 'r-500',
    });
    expect(line.reason).to.match(/cannot prove it tenant-safe \(in FROM, relation "comments"\)/);
    expect(JSON.stringify(line)).not.to.contain('hunter2');
  });

  it('logs a refused resolution: warn for a forbidden tenant, info for an unknown one', async () => {
    const { logger, lines } = capturedWinston();
    const app = express();
    app.use(resolveTenant({ store: testTenants() }));
    app.get('/forbidden', () => {
      throw new TenantForbiddenError('Cannot access tenant "acme" because you are not a member.');
    });
    app.use(tenancyErrorHandler({ logger }));
    await request(app).get('/').set('X-Tenant-ID', 'nobody').expect(404);
    await request(app).get('/forbidden').set('X-Tenant-ID', 'acme').expect(403);
    await flush();
    expect(lines.map((l) => [l.level, l.code, l.tenantId])).to.deep.equal([
      ['info', 'TENANT_NOT_FOUND', undefined],
      ['warn', 'TENANT_FORBIDDEN', 'acme'],
    ]);
    expect(lines[0]?.reason).to.equal('Cannot find tenant "nobody". Check the tenant id.');
  });
});

describe('entry points taking a logger', () => {
  it('adapt a raw pino logger themselves (resolveTenant, TenantChangeNotifier) and refuse a non-logger', () => {
    const { logger, lines } = capturedPino();
    const app = express();
    app.use(resolveTenant({ store: testTenants(), logger }));
    app.use(tenancyErrorHandler());
    return request(app)
      .get('/')
      .set('X-Tenant-ID', 'nobody')
      .expect(404)
      .then(() => {
        expect(lines).to.deep.equal([
          {
            level: 20,
            code: 'TENANT_NOT_FOUND',
            status: 404,
            path: '/',
            msg: 'tenant resolution refused',
          },
        ]);
        const unconnected = knexFactory({ client: 'pg' });
        try {
          expect(() => new TenantChangeNotifier(unconnected, { logger })).not.to.throw();
          expect(
            () =>
              new TenantChangeNotifier(unconnected, {
                logger: { warn() {} } as unknown as TenancyLogger,
              }),
          ).to.throw(TypeError, /no debug\(\) method/);
        } finally {
          void unconnected.destroy();
        }
      });
  });

  it('adapting an adapted logger returns it as it is', () => {
    const once = toTenancyLogger(capturedPino().logger);
    expect(toTenancyLogger(once)).to.equal(once);
  });
});
