/**
 * Cost of the per-message tenant binding of wsTenancy(): the same handler
 * on two `ws` servers in one process,
 *   A) plain `ws.on('message', handler)` (the tenant id kept in a closure), and
 *   B) `ws.on('message', tenancy.bind(ws, handler))` behind wsTenancy()
 *      (resolveTenant() + requireTenant() on the upgrade, the handler reads
 *      currentTenant()),
 * driven by real `ws` clients on 127.0.0.1 (CLIENTS connections over 8
 * tenants, each sending MESSAGES ping-pong messages per round). Rounds
 * alternate A B, B A, ... so machine noise hits both alike; prints the
 * median of the per-round time ratios B/A (goal <= 1.05).
 *
 *   node build/bench/websocket.bench.js
 *   BENCH_ROUNDS=20 BENCH_CLIENTS=16 BENCH_MESSAGES=200 node build/bench/websocket.bench.js
 */
import 'reflect-metadata';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import {
  CachedTenantStore,
  InMemoryTenantStore,
  currentTenant,
  requireTenant,
  resolveTenant,
} from '../src/index';
import { wsTenancy } from '../src/integrations/ws';

const ROUNDS = positive('BENCH_ROUNDS', 20);
const CLIENTS = positive('BENCH_CLIENTS', 16);
const MESSAGES = positive('BENCH_MESSAGES', 200);
const TENANTS = Array.from({ length: 8 }, (_, i) => `tenant-${i}`);

function positive(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(
      `Cannot run the bench because ${name}=${String(raw)} is not a positive integer.`,
    );
  }
  return value;
}

/** The work of one message on both sides: parse, answer with the tenant. */
function reply(raw: WebSocket.RawData, tenant: string): string {
  const message = JSON.parse(String(raw)) as { n: number };
  return JSON.stringify({ n: message.n, tenant });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

async function plainServer(): Promise<{ url: string; server: Server }> {
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer();
  server.on('upgrade', (req: IncomingMessage, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      const tenant = String(req.headers['x-tenant-id']);
      ws.on('message', (raw) => ws.send(reply(raw, tenant)));
    }),
  );
  return { url: await listen(server), server };
}

async function tenantServer(): Promise<{ url: string; server: Server }> {
  const store = new CachedTenantStore(new InMemoryTenantStore(TENANTS.map((id) => ({ id }))));
  const tenancy = wsTenancy<WebSocket>({
    handlers: [resolveTenant({ store }), requireTenant()],
    store,
    recheckIntervalMs: 0,
  });
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer();
  server.on('upgrade', (req: IncomingMessage, socket, head) =>
    tenancy.handleUpgrade(wss, req, socket, head, (ws) => {
      ws.on(
        'message',
        tenancy.bind(ws, (raw: WebSocket.RawData) => ws.send(reply(raw, currentTenant().id))),
      );
    }),
  );
  return { url: await listen(server), server };
}

function open(url: string, tenant: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { 'X-Tenant-ID': tenant } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Every client sends MESSAGES messages one after another; resolves with the elapsed ms. */
async function round(clients: readonly WebSocket[]): Promise<number> {
  const start = process.hrtime.bigint();
  await Promise.all(
    clients.map(
      (ws, i) =>
        new Promise<void>((resolve, reject) => {
          let n = 0;
          const expected = TENANTS[i % TENANTS.length] as string;
          const onMessage = (raw: WebSocket.RawData): void => {
            const answer = JSON.parse(String(raw)) as { n: number; tenant: string };
            if (answer.tenant !== expected) {
              reject(new Error(`answer of ${answer.tenant} on a ${expected} connection`));
              return;
            }
            n += 1;
            if (n === MESSAGES) {
              ws.off('message', onMessage);
              resolve();
            } else ws.send(JSON.stringify({ n }));
          };
          ws.on('message', onMessage);
          ws.send(JSON.stringify({ n }));
        }),
    ),
  );
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const plain = await plainServer();
  const bound = await tenantServer();
  const connect = (url: string) =>
    Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => open(url, TENANTS[i % TENANTS.length] as string)),
    );
  const a = await connect(plain.url);
  const b = await connect(bound.url);
  await round(a); // warm-up
  await round(b);
  const ratios: number[] = [];
  const timesA: number[] = [];
  const timesB: number[] = [];
  for (let r = 0; r < ROUNDS; r += 1) {
    let ta: number;
    let tb: number;
    if (r % 2 === 0) {
      ta = await round(a);
      tb = await round(b);
    } else {
      tb = await round(b);
      ta = await round(a);
    }
    timesA.push(ta);
    timesB.push(tb);
    ratios.push(tb / ta);
  }
  const perMessage = (ms: number) => ((ms * 1000) / (CLIENTS * MESSAGES)).toFixed(1);
  console.log(
    `websocket: ${ROUNDS} rounds x ${CLIENTS} clients x ${MESSAGES} messages (ping-pong, ${TENANTS.length} tenants)`,
  );
  console.log(`  A plain ws handler        median ${perMessage(median(timesA))} µs/message`);
  console.log(`  B wsTenancy().bind()      median ${perMessage(median(timesB))} µs/message`);
  console.log(`  B/A time ratio (median of rounds): ${median(ratios).toFixed(3)} (goal <= 1.05)`);
  for (const ws of [...a, ...b]) ws.terminate();
  await new Promise<void>((resolve) => plain.server.close(() => resolve()));
  await new Promise<void>((resolve) => bound.server.close(() => resolve()));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
