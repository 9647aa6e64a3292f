import { EventEmitter } from 'node:events';
import { get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Transform } from 'node:stream';
import { expect } from 'chai';
import express from 'express';
import type { Knex } from 'knex';
import {
  InMemoryTenantStore,
  bindTenant,
  currentTenant,
  keepTenant,
  keepTenantStreams,
  resolveTenant,
  requireTenant,
  runWithTenant,
  tenancyErrorHandler,
  tenantPipeline,
  tryCurrentTenant,
  withTenancy,
  type TenantKnex,
} from '../../src/index';
import { createRowFixture } from '../isolation/support/row-fixture';

const EVENTS = 12;
const EVENT_EVERY_MS = 200;

function getText(url: string, tenant: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { 'X-Tenant-ID': tenant } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Fills the pool with connections opened in tenant `hooli`'s scope: their sockets' events run there. */
async function warmPoolAs(knex: Knex, tenant: string, connections: number): Promise<void> {
  await runWithTenant(tenant, () =>
    Promise.all(Array.from({ length: connections }, () => knex.raw('select pg_sleep(0.05)'))),
  );
}

describe('tenant streams (SSE, res.write loops, Knex streams through pipelines)', () => {
  let knex: Knex;
  let db: TenantKnex;
  let server: Server;
  let base: string;

  before(async () => {
    ({ knex } = await createRowFixture({ pool: { min: 0, max: 3 } }));
    db = withTenancy(knex, { tenantTables: ['documents', 'comments'] });
    const store = new InMemoryTenantStore([{ id: 'acme' }, { id: 'globex' }]);
    const app = express();
    app.use(resolveTenant({ store }), requireTenant(), keepTenantStreams());
    app.get('/events', (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      let sent = 0;
      const timer = setInterval(() => {
        // Statements started from the response's timer run as its tenant.
        db('documents')
          .select('tenant_id')
          .orderBy('id')
          .then((rows: { tenant_id: string }[]) => {
            sent += 1;
            const event = {
              n: sent,
              scope: currentTenant().id,
              rows: rows.map((r) => r.tenant_id),
            };
            res.write(`data: ${JSON.stringify(event)}\n\n`);
            if (sent === EVENTS) {
              clearInterval(timer);
              res.end('event: end\ndata: {}\n\n');
            }
          })
          .catch((error: unknown) => {
            clearInterval(timer);
            res.end(`event: error\ndata: ${JSON.stringify(String(error))}\n\n`);
          });
      }, EVENT_EVERY_MS);
      req.on('close', () => clearInterval(timer));
    });
    app.get('/export', (req, res, next) => {
      res.type('application/x-ndjson');
      const withComments = new Transform({
        objectMode: true,
        transform(row: { id: number; tenant_id: string }, _encoding, done) {
          // A statement started from a stream callback: the rows are emitted
          // by a pg socket opened in another tenant's scope.
          db('comments')
            .select('tenant_id')
            .where({ document_id: row.id })
            .then(
              (comments: { tenant_id: string }[]) =>
                done(
                  null,
                  `${JSON.stringify({
                    id: row.id,
                    row: row.tenant_id,
                    scope: tryCurrentTenant()?.id ?? null,
                    comments: comments.map((c) => c.tenant_id),
                  })}\n`,
                ),
              done,
            );
        },
      });
      tenantPipeline(
        db('documents').select('id', 'tenant_id').orderBy('id').stream(),
        withComments,
        res,
      ).catch(next);
    });
    app.use(tenancyErrorHandler());
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('streams two tenants at once for seconds: every event, to the last, is its own tenant', async () => {
    await warmPoolAs(knex, 'hooli', 3);
    const started = Date.now();
    const [acme, globex] = await Promise.all([
      getText(`${base}/events`, 'acme'),
      getText(`${base}/events`, 'globex'),
    ]);
    expect(Date.now() - started).to.be.at.least(EVENTS * EVENT_EVERY_MS - 50);
    for (const [tenant, answer] of [
      ['acme', acme],
      ['globex', globex],
    ] as const) {
      expect(answer.status).to.equal(200);
      expect(answer.body).to.match(/event: end\n/);
      const events = answer.body
        .split('\n\n')
        .filter((block) => block.startsWith('data: '))
        .map((block) => JSON.parse(block.slice(6)) as { n: number; scope: string; rows: string[] });
      expect(events.map((e) => e.n)).to.deep.equal(Array.from({ length: EVENTS }, (_, i) => i + 1));
      const wrong = events.filter(
        (e) => e.scope !== tenant || e.rows.join() !== [tenant, tenant, tenant].join(),
      );
      expect(wrong, tenant).to.deep.equal([]);
    }
  });

  it('runs a Knex stream piped through tenantPipeline() as its tenant, to the last row, with the pool opened by another tenant', async () => {
    await warmPoolAs(knex, 'hooli', 3);
    const answers = await Promise.all(
      ['acme', 'globex', 'acme', 'globex'].map(async (tenant) => ({
        tenant,
        answer: await getText(`${base}/export`, tenant),
      })),
    );
    for (const { tenant, answer } of answers) {
      expect(answer.status).to.equal(200);
      const lines = answer.body
        .trim()
        .split('\n')
        .map(
          (line) =>
            JSON.parse(line) as { id: number; row: string; scope: string; comments: string[] },
        );
      expect(lines).to.deep.equal([
        { id: 1, row: tenant, scope: tenant, comments: [tenant, tenant] },
        { id: 2, row: tenant, scope: tenant, comments: [tenant] },
        { id: 3, row: tenant, scope: tenant, comments: [] },
      ]);
    }
  });

  describe('bindTenant()', () => {
    it('runs the callback as the tenant it was bound in, wherever it is called', () => {
      const asAcme = runWithTenant('acme', () => bindTenant(() => currentTenant().id));
      expect(runWithTenant('globex', asAcme)).to.equal('acme');
      expect(asAcme()).to.equal('acme');
    });
    it('refuses to bind outside a tenant scope (500 TENANT_SCOPE_REQUIRED) and a non-function (TypeError)', () => {
      expect(() => bindTenant(() => 1))
        .to.throw()
        .with.property('code', 'TENANT_SCOPE_REQUIRED');
      expect(() => runWithTenant('acme', () => bindTenant(42 as never))).to.throw(TypeError);
    });
  });

  describe('keepTenant()', () => {
    it('runs listeners as its tenant when another tenant emits, and removes them by the original function', () => {
      const emitter = runWithTenant('acme', () => keepTenant(new EventEmitter()));
      const seen: string[] = [];
      const listener = (): void => {
        seen.push(currentTenant().id);
      };
      emitter.on('tick', listener);
      emitter.once('tick', listener);
      runWithTenant('globex', () => emitter.emit('tick'));
      expect(seen).to.deep.equal(['acme', 'acme']);
      emitter.off('tick', listener);
      runWithTenant('globex', () => emitter.emit('tick'));
      expect(seen).to.deep.equal(['acme', 'acme']);
      expect(emitter.listenerCount('tick')).to.equal(0);
    });
    it('refuses outside a scope and on a non-emitter', () => {
      expect(() => keepTenant(new EventEmitter()))
        .to.throw()
        .with.property('code', 'TENANT_SCOPE_REQUIRED');
      expect(() => runWithTenant('acme', () => keepTenant({} as never))).to.throw(TypeError);
    });
    it('refuses a pipeline of one stream', async () => {
      const { Readable } = await import('node:stream');
      const error = await runWithTenant('acme', () =>
        tenantPipeline(Readable.from([])).then(
          () => undefined,
          (e: unknown) => e,
        ),
      );
      expect(error).to.be.instanceOf(TypeError);
    });
  });
});
