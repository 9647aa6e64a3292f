/**
 * HTTP overhead of tenantry: the same handler behind
 *   A) bare Express, and
 *   B) Express + resolveTenant() (header strategy, warm CachedTenantStore)
 *      + requireTenant() + a service resolved from the per-request container,
 * and, as a reference, F) the floor: the least any design with the same
 * parts must do, written by hand without tenantry (one AsyncLocalStorage
 * scope, one tsyringe child container holding the tenant, the service
 * resolved through it, a route-level check), driven by autocannon on
 * 127.0.0.1 in short slices whose order rotates (A F B, F B A, B A F, ...) so
 * machine noise hits every side alike. Prints B/A throughput as the median of
 * the per-round ratios (goal >= 0.95), F/A and B/F, latency, and the server's
 * own CPU time per request on each side (measured in the server process, so
 * the load generator's share of the two cores does not enter it).
 *
 *   node build/bench/http.bench.js
 *   BENCH_ROUNDS=20 BENCH_SECONDS=1 BENCH_CONNECTIONS=32 node build/bench/http.bench.js
 *
 * The servers run in a child process so the load generator does not share
 * their event loop. No database: the store is in memory, behind the cache, as
 * on a warm production path.
 */
import 'reflect-metadata';
import { AsyncLocalStorage } from 'node:async_hooks';
import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import autocannon from 'autocannon';
import express, { type NextFunction, type Request, type Response } from 'express';
import { container, injectable } from 'tsyringe';
import {
  CachedTenantStore,
  InMemoryTenantStore,
  TenantContext,
  requireTenant,
  resolveTenant,
  tenancyErrorHandler,
} from '../src/index';

const ROUNDS = positive('BENCH_ROUNDS', 20);
const SECONDS = positive('BENCH_SECONDS', 1);
const CONNECTIONS = positive('BENCH_CONNECTIONS', 32);
const TENANTS = 100;

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

/** What the handler builds: the same object on both sides. */
@injectable()
class Greeting {
  constructor(private readonly tenant?: TenantContext) {}
  body(): { tenant: string; items: number[] } {
    return { tenant: this.tenant?.id ?? 'none', items: [1, 2, 3] };
  }
}

function handler(req: Request, res: Response): void {
  // B resolves through the request's child container; A builds the service itself.
  const greeting = req.container ? req.container.resolve(Greeting) : new Greeting();
  res.json(greeting.body());
}

async function listen(app: express.Express): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      resolve({ server, port: (server.address() as AddressInfo).port });
    });
  });
}

/** Child process: both servers, ports reported over IPC. */
async function serve(): Promise<void> {
  const bare = express();
  bare.disable('x-powered-by');
  bare.get('/documents', handler);

  const ids = Array.from({ length: TENANTS }, (_, i) => `tenant-${i}`);
  const store = new CachedTenantStore(
    new InMemoryTenantStore(ids.map((id) => ({ id, name: id }))),
    {
      ttlMs: 600_000,
    },
  );
  const tenanted = express();
  tenanted.disable('x-powered-by');
  tenanted.use(resolveTenant({ store, strategies: ['header'] }));
  tenanted.get('/documents', requireTenant(), handler);
  tenanted.use(tenancyErrorHandler());

  // F: the floor, by hand. A plain { id } object stands in for TenantContext
  // (no scope check), looked up in a Map (no validation, no store, no cache).
  const floorTenants = new Map(ids.map((id) => [id, { id }]));
  const floorScope = new AsyncLocalStorage<{ id: string }>();
  const floor = express();
  floor.disable('x-powered-by');
  floor.use((req: Request, _res: Response, next: NextFunction) => {
    const tenant = floorTenants.get(String(req.headers['x-tenant-id']));
    if (tenant === undefined) {
      next();
      return;
    }
    const child = container.createChildContainer();
    child.register(TenantContext, { useValue: tenant as unknown as TenantContext });
    req.container = child;
    floorScope.run(tenant, next);
  });
  floor.get(
    '/documents',
    (req: Request, res: Response, next: NextFunction) => {
      if (req.container === undefined) res.status(401).end();
      else next();
    },
    handler,
  );

  const a = await listen(bare);
  const b = await listen(tenanted);
  const f = await listen(floor);
  // The parent asks for the server's CPU time around each slice.
  process.on('message', (m: { cpu?: number }) => {
    if (typeof m?.cpu === 'number') {
      const usage = process.cpuUsage();
      process.send?.({ cpu: m.cpu, micros: usage.user + usage.system });
    }
  });
  process.send?.({ bare: a.port, tenanted: b.port, floor: f.port });
  process.on('disconnect', () => {
    a.server.close();
    b.server.close();
    f.server.close();
    process.exit(0);
  });
}

interface Round {
  readonly rps: number;
  /** Server CPU time per request (µs). */
  readonly cpuPerRequest: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
  readonly non2xx: number;
  readonly errors: number;
}

let cpuAsks = 0;
function serverCpu(child: ChildProcess): Promise<number> {
  const ask = (cpuAsks += 1);
  return new Promise((resolve) => {
    const onMessage = (m: { cpu?: number; micros?: number }) => {
      if (m?.cpu !== ask || typeof m.micros !== 'number') return;
      child.off('message', onMessage);
      resolve(m.micros);
    };
    child.on('message', onMessage);
    child.send({ cpu: ask });
  });
}

async function drive(child: ChildProcess, port: number): Promise<Round> {
  let n = 0;
  const cpuBefore = await serverCpu(child);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/documents`,
    connections: CONNECTIONS,
    duration: SECONDS,
    // Tenants rotate per request, so the chain and the cache really work per tenant.
    requests: [
      {
        // Both sides get the same request stream (and the load generator, which
        // shares the CPUs, does the same work); bare Express ignores the header.
        setupRequest: (request) => {
          n += 1;
          return {
            ...request,
            headers: { ...request.headers, 'x-tenant-id': `tenant-${n % TENANTS}` },
          };
        },
      },
    ],
  });
  const cpu = (await serverCpu(child)) - cpuBefore;
  return {
    rps: result.requests.average,
    cpuPerRequest: cpu / Math.max(1, result.requests.total),
    p50: result.latency.p50,
    p99: result.latency.p99,
    mean: result.latency.average,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

type Side = 'bare' | 'floor' | 'tenanted';
const SIDES: readonly Side[] = ['bare', 'floor', 'tenanted'];
const LABEL: Record<Side, string> = {
  bare: 'A bare Express      ',
  floor: 'F floor, by hand    ',
  tenanted: 'B tenantry chain    ',
};

async function main(): Promise<void> {
  const child: ChildProcess = fork(__filename, ['--serve'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ports = await new Promise<Record<Side, number>>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Record<Side, number>));
    child.once('exit', (code) => reject(new Error(`Bench server exited early (${code})`)));
  });
  try {
    // Warm-up: JIT and the tenant cache, not measured.
    await Promise.all(
      SIDES.map((side) =>
        autocannon({
          url: `http://127.0.0.1:${ports[side]}/documents`,
          connections: 8,
          amount: 2000,
          requests: [
            {
              setupRequest: (r) => ({
                ...r,
                headers: { 'x-tenant-id': `tenant-${Math.floor(Math.random() * TENANTS)}` },
              }),
            },
          ],
        }),
      ),
    );
    const rounds: Record<Side, Round[]> = { bare: [], floor: [], tenanted: [] };
    for (let round = 0; round < ROUNDS; round += 1) {
      // Rotate which side goes first, so drift does not favour one.
      const order = SIDES.map((_, i) => SIDES[(i + round) % SIDES.length] as Side);
      for (const side of order) {
        const r = await drive(child, ports[side]);
        rounds[side].push(r);
        if (process.env.BENCH_VERBOSE) {
          console.log(
            `round ${round + 1} ${LABEL[side]} ${r.rps.toFixed(0).padStart(7)} req/s  server CPU ${r.cpuPerRequest.toFixed(1)} µs/request  p50 ${r.p50} ms  p99 ${r.p99} ms  non2xx ${r.non2xx}  errors ${r.errors}`,
          );
        }
      }
    }
    const bad = SIDES.reduce(
      (sum, side) => sum + rounds[side].reduce((s, r) => s + r.non2xx + r.errors, 0),
      0,
    );
    // Per-round ratios: a noisy neighbour slowing one round hurts every side of that round.
    const ratios = (top: Side, bottom: Side): number[] =>
      rounds[bottom].map((r, i) => (rounds[top][i] as Round).rps / r.rps);
    const describe = (values: number[]): string => {
      const sorted = [...values].sort((x, y) => x - y);
      const q = (p: number) => (sorted[Math.floor((sorted.length - 1) * p)] as number).toFixed(3);
      return `${median(values).toFixed(3)} (quartiles ${q(0.25)} - ${q(0.75)})`;
    };
    console.log('');
    console.log(
      `HTTP bench: ${ROUNDS} rounds x ${SIDES.length} sides x ${SECONDS} s x ${CONNECTIONS} connections, ${TENANTS} tenants`,
    );
    for (const side of SIDES) {
      const rs = rounds[side];
      console.log(
        `  ${LABEL[side]} median ${median(rs.map((r) => r.rps)).toFixed(0)} req/s, server CPU ${median(rs.map((r) => r.cpuPerRequest)).toFixed(1)} µs/request, p50 ${median(rs.map((r) => r.p50))} ms, p99 ${median(rs.map((r) => r.p99))} ms`,
      );
    }
    const goal = median(ratios('tenanted', 'bare'));
    console.log(
      `  throughput B/A       ${describe(ratios('tenanted', 'bare'))}, median of ${ROUNDS} rounds; goal >= 0.95 ${goal >= 0.95 ? 'MET' : 'NOT MET'}`,
    );
    console.log(
      `  throughput F/A       ${describe(ratios('floor', 'bare'))}: the floor of any ALS + per-request child container design`,
    );
    console.log(
      `  throughput B/F       ${describe(ratios('tenanted', 'floor'))}: what tenantry adds over the floor`,
    );
    console.log(`  non-2xx + errors     ${bad}`);
    if (bad > 0) process.exitCode = 1;
  } finally {
    child.disconnect();
  }
}

if (process.argv.includes('--serve')) {
  void serve();
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
