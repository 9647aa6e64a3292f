import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { Server } from 'socket.io';
import { io as connectClient } from 'socket.io-client';
import WebSocket, { WebSocketServer } from 'ws';
import { InMemoryTenantStore, resolveTenant, type TenantResolutionStrategy } from '../../src/index';
import { socketIoTenancy } from '../../src/integrations/socket-io';
import { createUpgradeResolver, wsTenancy } from '../../src/integrations/ws';

/** A strategy that never answers (a hung identity provider, a store that lost its socket). */
function hangingStrategy(): TenantResolutionStrategy & { readonly calls: number } {
  let calls = 0;
  return {
    name: 'hanging',
    get calls() {
      return calls;
    },
    resolve: () => {
      calls += 1;
      return new Promise<never>(() => undefined);
    },
  };
}

const store = new InMemoryTenantStore([{ id: 'acme' }]);

async function listen(server: HttpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('upgrade resolution timeout (timeoutMs)', () => {
  it('refuses a ws upgrade whose strategy never answers with 503 UPGRADE_TIMEOUT problem+json, and closes the socket', async () => {
    const strategy = hangingStrategy();
    const tenancy = wsTenancy<WebSocket>({
      handlers: [resolveTenant({ store, strategies: [strategy] })],
      store,
      recheckIntervalMs: 0,
      timeoutMs: 150,
    });
    const wss = new WebSocketServer({ noServer: true });
    const server = createServer();
    let connections = 0;
    server.on('upgrade', (req: IncomingMessage, socket, head) =>
      tenancy.handleUpgrade(wss, req, socket, head, () => (connections += 1)),
    );
    const port = await listen(server);
    try {
      const started = Date.now();
      const answer = await new Promise<{
        status: number;
        type: string;
        body: string;
        ended: boolean;
      }>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/live`, {
          headers: { 'X-Tenant-ID': 'acme' },
        });
        ws.once('open', () => reject(new Error('the upgrade was accepted')));
        ws.once('error', () => undefined);
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              type: String(res.headers['content-type']),
              body,
              ended: res.headers.connection === 'close',
            }),
          );
        });
      });
      expect(Date.now() - started).to.be.at.least(140);
      expect(answer.status).to.equal(503);
      expect(answer.type).to.match(/^application\/problem\+json/);
      expect(JSON.parse(answer.body)).to.include({ code: 'UPGRADE_TIMEOUT', status: 503 });
      expect(answer.ended).to.equal(true);
      expect(strategy.calls).to.equal(1);
      expect(connections).to.equal(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses a Socket.IO handshake whose strategy never answers: connect_error with status 503', async () => {
    const tenancy = socketIoTenancy({
      handlers: [resolveTenant({ store, strategies: [hangingStrategy()] })],
      store,
      recheckIntervalMs: 0,
      timeoutMs: 150,
    });
    const http = createServer();
    const io = new Server(http, { transports: ['websocket'] });
    io.use(tenancy.middleware);
    const port = await listen(http);
    const socket = connectClient(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      extraHeaders: { 'X-Tenant-ID': 'acme' },
    });
    try {
      const error = await new Promise<
        Error & { data?: { status: number; problem: { code: string } } }
      >((resolve, reject) => {
        socket.once('connect', () => reject(new Error('the handshake was accepted')));
        socket.once('connect_error', resolve);
      });
      expect(error.data?.status).to.equal(503);
      expect(error.data?.problem.code).to.equal('UPGRADE_TIMEOUT');
    } finally {
      socket.disconnect();
      await io.close();
    }
  });

  it('still admits upgrades that answer in time, and ignores an answer arriving after the timeout', async () => {
    let release: (() => void) | undefined;
    const slow: TenantResolutionStrategy = {
      name: 'slow',
      resolve: () =>
        new Promise((resolve) => {
          release = () => resolve({ tenantId: 'acme', trusted: false });
        }),
    };
    const resolveUpgrade = createUpgradeResolver({
      handlers: [resolveTenant({ store, strategies: [slow] })],
      timeoutMs: 100,
    });
    const server = createServer();
    const port = await listen(server);
    try {
      const req = await new Promise<IncomingMessage>((resolve) => {
        server.once('request', (r: IncomingMessage, res) => {
          resolve(r);
          res.end();
        });
        void fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
      });
      const outcome = await resolveUpgrade(req);
      expect(outcome.ok).to.equal(false);
      if (!outcome.ok) expect(outcome.refusal.status).to.equal(503);
      release?.(); // the late answer settles nothing and throws nowhere
      await new Promise((r) => setTimeout(r, 20));

      const quick = createUpgradeResolver({
        handlers: [resolveTenant({ store, strategies: ['header'] })],
        timeoutMs: 100,
      });
      req.headers['x-tenant-id'] = 'acme';
      const admitted = await quick(req);
      expect(admitted.ok).to.equal(true);
      if (admitted.ok) {
        expect(admitted.tenantId).to.equal('acme');
        admitted.release();
      }
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses a timeoutMs that is not a whole number of ms (TypeError), and accepts 0 (no limit)', () => {
    const handlers = [resolveTenant({ store })];
    for (const bad of [-1, 1.5, Number.NaN, Infinity, '100', 2 ** 31]) {
      expect(
        () => createUpgradeResolver({ handlers, timeoutMs: bad as never }),
        String(bad),
      ).to.throw(TypeError, /timeoutMs/);
    }
    expect(createUpgradeResolver({ handlers, timeoutMs: 0 })).to.be.a('function');
  });
});
