import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { Server, type Socket as ServerSocket } from 'socket.io';
import { io as connectClient, type Socket } from 'socket.io-client';
import { requireTenant, resolveTenant } from '../../src/index';
import {
  TENANT_CLOSED_EVENT,
  TENANT_CLOSE_CODES,
  socketIoTenancy,
  type SocketIoTenancy,
} from '../../src/integrations/socket-io';
import {
  REALTIME_TENANTS,
  answerAsCurrentTenant,
  createRealtimeFixture,
  type RealtimeFixture,
  type TenantAnswer,
} from './support/realtime-fixture';

type Answer = TenantAnswer & { error?: string };

describe('socketIoTenancy() with real socket.io clients', () => {
  let fixture: RealtimeFixture;
  let http: HttpServer;
  let io: Server;
  let tenancy: SocketIoTenancy;
  let url: string;
  const clients: Socket[] = [];

  before(async () => {
    fixture = await createRealtimeFixture();
    tenancy = socketIoTenancy({
      handlers: [resolveTenant({ store: fixture.store }), requireTenant()],
      store: fixture.store,
      recheckIntervalMs: 0,
    });
    http = createServer();
    io = new Server(http, { transports: ['websocket'] });
    io.use(tenancy.middleware);
    io.on('connection', (socket: ServerSocket) => {
      socket.on('docs', async (n: number, delayMs: number, ack: (a: Answer) => void) => {
        try {
          ack(await answerAsCurrentTenant(fixture.db, n, delayMs));
        } catch (error) {
          ack({ n, scope: '', rows: [], error: (error as { code?: string }).code ?? 'ERROR' });
        }
      });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await io.close();
  });

  function client(tenant?: string): Socket {
    const socket = connectClient(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      ...(tenant !== undefined ? { extraHeaders: { 'X-Tenant-ID': tenant } } : {}),
    });
    clients.push(socket);
    return socket;
  }

  async function connected(tenant: string): Promise<Socket> {
    const socket = client(tenant);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return socket;
  }

  const ask = (socket: Socket, n: number, delayMs: number): Promise<Answer> =>
    socket.timeout(10_000).emitWithAck('docs', n, delayMs) as Promise<Answer>;

  it('runs each event in its socket tenant: many tenants interleaved, 0 cross-tenant answers', async () => {
    const sockets = await Promise.all(
      REALTIME_TENANTS.flatMap((tenant) => [connected(tenant), connected(tenant)]),
    );
    const tenants = REALTIME_TENANTS.flatMap((tenant) => [tenant, tenant]);
    let n = 0;
    const asked: Promise<{ tenant: string; answer: Answer }>[] = [];
    for (let round = 0; round < 8; round += 1) {
      sockets.forEach((socket, i) => {
        n += 1;
        const tenant = tenants[i] as string;
        asked.push(ask(socket, n, (n * 7919) % 23).then((answer) => ({ tenant, answer })));
      });
    }
    const answers = await Promise.all(asked);
    expect(answers).to.have.length(REALTIME_TENANTS.length * 2 * 8);
    const wrong = answers.filter(
      ({ tenant, answer }) =>
        answer.error !== undefined ||
        answer.scope !== tenant ||
        answer.rows.length !== 3 ||
        answer.rows.some((row) => row !== tenant),
    );
    expect(wrong).to.deep.equal([]);
  });

  it('keeps both tenants when the second event finishes first', async () => {
    const acme = await connected('acme');
    const globex = await connected('globex');
    const order: string[] = [];
    const slow = ask(acme, 1, 250).then((a) => (order.push('acme'), a));
    await sleep(20);
    const fast = ask(globex, 2, 0).then((a) => (order.push('globex'), a));
    const [a, g] = await Promise.all([slow, fast]);
    expect(order).to.deep.equal(['globex', 'acme']);
    expect([a.scope, ...a.rows]).to.deep.equal(['acme', 'acme', 'acme', 'acme']);
    expect([g.scope, ...g.rows]).to.deep.equal(['globex', 'globex', 'globex', 'globex']);
  });

  it('refuses a handshake with the status and problem of HTTP in connect_error', async () => {
    const cases: [string | undefined, number, string][] = [
      [undefined, 401, 'TENANT_REQUIRED'],
      ['nobody', 404, 'TENANT_NOT_FOUND'],
      ['frozen', 403, 'TENANT_SUSPENDED'],
      ['Bad Id!', 400, 'TENANT_INVALID'],
    ];
    for (const [tenant, status, code] of cases) {
      const socket = client(tenant);
      const error = await new Promise<Error & { data?: unknown }>((resolve, reject) => {
        socket.once('connect', () => reject(new Error(`${code}: the handshake was accepted`)));
        socket.once('connect_error', resolve);
      });
      const data = error.data as { status: number; problem: { code: string; status: number } };
      expect(data.status, code).to.equal(status);
      expect(data.problem.code).to.equal(code);
      expect(data.problem.status).to.equal(status);
    }
  });

  it('disconnects the sockets of a tenant suspended while connected, after tenancy:closed', async () => {
    await fixture.store.create({ id: 'tyrell' });
    const tyrell = await connected('tyrell');
    const acme = await connected('acme');
    const told = new Promise<{ code: number; reason: string }>((resolve) =>
      tyrell.once(TENANT_CLOSED_EVENT, resolve),
    );
    const gone = new Promise<string>((resolve) => tyrell.once('disconnect', resolve));
    await fixture.store.update('tyrell', { status: 'suspended' });
    await tenancy.connections.recheck('tyrell');
    expect(await told).to.deep.equal({
      code: TENANT_CLOSE_CODES.TENANT_SUSPENDED,
      reason: 'TENANT_SUSPENDED',
    });
    expect(await gone).to.equal('io server disconnect');
    await tenancy.connections.recheck('acme');
    expect(acme.connected).to.equal(true);
    expect((await ask(acme, 5, 0)).scope).to.equal('acme');
  });
});
