import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import WebSocket, { WebSocketServer } from 'ws';
import { TenantChangeNotifier, requireTenant, resolveTenant } from '../../src/index';
import {
  TENANT_CLOSE_CODES,
  TenantConnections,
  createUpgradeResolver,
  wsTenancy,
  type WsTenancy,
} from '../../src/integrations/ws';
import {
  REALTIME_TENANTS,
  answerAsCurrentTenant,
  createRealtimeFixture,
  type RealtimeFixture,
  type TenantAnswer,
} from './support/realtime-fixture';

interface Harness {
  readonly url: string;
  readonly tenancy: WsTenancy<WebSocket>;
  close(): Promise<void>;
}

async function startServer(
  fixture: RealtimeFixture,
  extra: { connections?: TenantConnections; recheckIntervalMs?: number; unbound?: boolean } = {},
): Promise<Harness> {
  const tenancy = wsTenancy<WebSocket>({
    handlers: [resolveTenant({ store: fixture.store }), requireTenant()],
    store: fixture.store,
    recheckIntervalMs: extra.recheckIntervalMs ?? 0,
    ...(extra.connections !== undefined ? { connections: extra.connections } : {}),
  });
  const wss = new WebSocketServer({ noServer: true });
  const server: Server = createServer();
  server.on('upgrade', (req: IncomingMessage, socket, head) =>
    tenancy.handleUpgrade(wss, req, socket, head, (ws) => {
      const handler = async (raw: WebSocket.RawData) => {
        const { n, delayMs } = JSON.parse(String(raw)) as { n: number; delayMs: number };
        try {
          ws.send(JSON.stringify(await answerAsCurrentTenant(fixture.db, n, delayMs)));
        } catch (error) {
          ws.send(JSON.stringify({ n, error: (error as { code?: string }).code }));
        }
      };
      ws.on(
        'message',
        extra.unbound === true ? (raw) => void handler(raw) : tenancy.bind(ws, handler),
      );
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/live`,
    tenancy,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function connect(url: string, tenant: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { 'X-Tenant-ID': tenant } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`upgrade refused with ${res.statusCode}`)),
    );
  });
}

/** A client that sends numbered messages and collects the answers by number. */
function ask(
  ws: WebSocket,
  n: number,
  delayMs: number,
): Promise<TenantAnswer & { error?: string }> {
  return new Promise((resolve) => {
    const listener = (raw: WebSocket.RawData) => {
      const answer = JSON.parse(String(raw)) as TenantAnswer & { error?: string };
      if (answer.n !== n) return;
      ws.off('message', listener);
      resolve(answer);
    };
    ws.on('message', listener);
    ws.send(JSON.stringify({ n, delayMs }));
  });
}

/** The refused upgrade's HTTP answer: status, content type and problem document. */
function refusedUpgrade(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; type: string; problem: { code: string; status: number } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type']),
          problem: JSON.parse(body) as { code: string; status: number },
        }),
      );
    });
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

describe('wsTenancy() with real ws clients', () => {
  let fixture: RealtimeFixture;
  let harness: Harness;

  before(async () => {
    fixture = await createRealtimeFixture();
    harness = await startServer(fixture);
  });
  after(async () => {
    await harness.close();
  });

  it('runs each message in its connection tenant: many tenants interleaved, 0 cross-tenant answers', async () => {
    const sockets = await Promise.all(
      REALTIME_TENANTS.flatMap((tenant) => [0, 1, 2].map(() => connect(harness.url, tenant))),
    );
    const tenants = REALTIME_TENANTS.flatMap((tenant) => [tenant, tenant, tenant]);
    let n = 0;
    const asked: Promise<{ tenant: string; answer: TenantAnswer & { error?: string } }>[] = [];
    for (let round = 0; round < 8; round += 1) {
      sockets.forEach((ws, i) => {
        const tenant = tenants[i] as string;
        // Delays shuffle completion order across tenants and on one connection.
        const delayMs = (n * 7919) % 23;
        n += 1;
        asked.push(ask(ws, n, delayMs).then((answer) => ({ tenant, answer })));
      });
    }
    const answers = await Promise.all(asked);
    expect(answers).to.have.length(REALTIME_TENANTS.length * 3 * 8);
    const wrong = answers.filter(
      ({ tenant, answer }) =>
        answer.error !== undefined ||
        answer.scope !== tenant ||
        answer.rows.length !== 3 ||
        answer.rows.some((row) => row !== tenant),
    );
    expect(wrong).to.deep.equal([]);
    for (const ws of sockets) ws.close();
  });

  it('keeps both tenants when the second message finishes first (another tenant, and the same connection)', async () => {
    const acme = await connect(harness.url, 'acme');
    const globex = await connect(harness.url, 'globex');
    const order: string[] = [];
    const slow = ask(acme, 1, 250).then((a) => (order.push('acme-slow'), a));
    await sleep(20);
    const fast = ask(globex, 2, 0).then((a) => (order.push('globex-fast'), a));
    const sameFast = ask(acme, 3, 0).then((a) => (order.push('acme-fast'), a));
    const [a, g, s] = await Promise.all([slow, fast, sameFast]);
    expect(order[order.length - 1]).to.equal('acme-slow');
    expect([a.scope, ...a.rows]).to.deep.equal(['acme', 'acme', 'acme', 'acme']);
    expect([g.scope, ...g.rows]).to.deep.equal(['globex', 'globex', 'globex', 'globex']);
    expect([s.scope, ...s.rows]).to.deep.equal(['acme', 'acme', 'acme', 'acme']);
    acme.close();
    globex.close();
  });

  it('refuses statements of a handler not bound with tenancy.bind() (fail closed, no tenant)', async () => {
    const unbound = await startServer(fixture, { unbound: true });
    try {
      const ws = await connect(unbound.url, 'acme');
      const answer = await ask(ws, 1, 0);
      expect(answer.error).to.equal('TENANT_SCOPE_REQUIRED');
      ws.close();
    } finally {
      await unbound.close();
    }
  });

  it('answers a refused upgrade with the HTTP status and problem+json of HTTP, before any switch', async () => {
    const cases: [Record<string, string>, number, string][] = [
      [{}, 401, 'TENANT_REQUIRED'],
      [{ 'X-Tenant-ID': 'nobody' }, 404, 'TENANT_NOT_FOUND'],
      [{ 'X-Tenant-ID': 'frozen' }, 403, 'TENANT_SUSPENDED'],
      [{ 'X-Tenant-ID': 'Bad Id!' }, 400, 'TENANT_INVALID'],
    ];
    for (const [headers, status, code] of cases) {
      const refused = await refusedUpgrade(harness.url, headers);
      expect(refused.status, code).to.equal(status);
      expect(refused.type).to.match(/^application\/problem\+json/);
      expect(refused.problem.code).to.equal(code);
      expect(refused.problem.status).to.equal(status);
    }
  });

  it('applies the chain rules of HTTP: two sources naming different tenants are refused 403 TENANT_CONFLICT', async () => {
    const tenancy = wsTenancy<WebSocket>({
      handlers: [
        resolveTenant({
          store: fixture.store,
          strategies: ['header', 'path'],
          path: { prefix: '/t' },
        }),
      ],
      store: fixture.store,
      recheckIntervalMs: 0,
    });
    const wss = new WebSocketServer({ noServer: true });
    const server = createServer();
    server.on('upgrade', (req: IncomingMessage, socket, head) =>
      tenancy.handleUpgrade(wss, req, socket, head, () => undefined),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const refused = await refusedUpgrade(`ws://127.0.0.1:${port}/t/globex/live`, {
        'X-Tenant-ID': 'acme',
      });
      expect(refused.status).to.equal(403);
      expect(refused.problem.code).to.equal('TENANT_CONFLICT');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('disconnects a tenant suspended while connected on the re-check interval (4403 TENANT_SUSPENDED)', async () => {
    const timed = await startServer(fixture, { recheckIntervalMs: 40 });
    await fixture.store.create({ id: 'wayne' });
    try {
      const wayne = await connect(timed.url, 'wayne');
      const acme = await connect(timed.url, 'acme');
      const ended = closed(wayne);
      await fixture.store.update('wayne', { status: 'suspended' });
      const { code, reason } = await ended;
      expect(code).to.equal(TENANT_CLOSE_CODES.TENANT_SUSPENDED);
      expect(reason).to.equal('TENANT_SUSPENDED');
      await sleep(100); // several more re-checks: acme stays connected
      expect(acme.readyState).to.equal(WebSocket.OPEN);
      expect((await ask(acme, 9, 0)).scope).to.equal('acme');
      acme.close();
    } finally {
      await timed.close();
    }
  });

  it('disconnects on a TenantChangeNotifier notification (real LISTEN/NOTIFY), 4404 once deleted', async () => {
    const connections = new TenantConnections({ store: fixture.store, recheckIntervalMs: 0 });
    const notifier = new TenantChangeNotifier(fixture.knex);
    await notifier.listen(connections);
    const notified = await startServer(fixture, { connections });
    await fixture.store.create({ id: 'cyberdyne' });
    try {
      const ws = await connect(notified.url, 'cyberdyne');
      expect(connections.size).to.equal(1);
      const ended = closed(ws);
      await fixture.store.update('cyberdyne', { status: 'deleted' });
      await notifier.publish('cyberdyne');
      const { code, reason } = await ended;
      expect(code).to.equal(TENANT_CLOSE_CODES.TENANT_NOT_FOUND);
      expect(reason).to.equal('TENANT_NOT_FOUND');
      await sleep(20);
      expect(connections.size).to.equal(0);
    } finally {
      await notifier.close();
      await notified.close();
    }
  });

  it('keeps connections when the store fails during a re-check', async () => {
    const failing = {
      findById: () => Promise.reject(new Error('store down')),
    } as unknown as RealtimeFixture['store'];
    const connections = new TenantConnections({ store: failing, recheckIntervalMs: 0 });
    let closes = 0;
    connections.track('acme', () => (closes += 1));
    await connections.recheck('acme');
    expect(closes).to.equal(0);
    expect(connections.size).to.equal(1);
  });

  it('survives a handler that throws or rejects (logged, the process keeps serving)', async () => {
    const tenancy = wsTenancy<WebSocket>({
      handlers: [resolveTenant({ store: fixture.store })],
      store: fixture.store,
      recheckIntervalMs: 0,
    });
    const fake = { close: () => undefined, once: () => undefined } as unknown as WebSocket;
    expect(() =>
      tenancy.bind(fake, () => {
        throw new Error('boom');
      })(),
    ).not.to.throw();
    tenancy.bind(fake, () => Promise.reject(new Error('boom')))();
    await sleep(10);
  });

  describe('bad options', () => {
    it('refuses a resolver without handlers (TENANCY_CONFIG_INVALID)', () => {
      expect(() => createUpgradeResolver({ handlers: [] }))
        .to.throw()
        .with.property('code', 'TENANCY_CONFIG_INVALID');
    });
    it('refuses a negative re-check interval and a missing store (TypeError)', () => {
      expect(() => new TenantConnections({ store: fixture.store, recheckIntervalMs: -1 })).to.throw(
        TypeError,
        /recheckIntervalMs/,
      );
      expect(() => wsTenancy({ handlers: [resolveTenant({ store: fixture.store })] })).to.throw(
        TypeError,
        /store/,
      );
    });
  });
});
