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
 * the per-round ratios (goal >= 0.95), F/A and B/F (goal >= 0.98), latency,
 * and the server's own CPU time per request on each side (measured in the
 * server process, so the load generator's share of the two cores does not
 * enter it).
 *
 * It runs at several sizes of the app's container (default 0, 500 and 2,000
 * registrations: values, classes, singletons, factories, and at 500 and more
 * 5 of them `Lifecycle.ContainerScoped`), the parent of every request
 * container. F makes its request container as a child of a container
 * prepared once at start-up, which holds only the app container's
 * ContainerScoped copies (the least a child container can cost with tsyringe's
 * public API); N, a reference, calls the app container's own
 * `createChildContainer()` per request, which walks every registration.
 *
 *   node build/bench/http.bench.js
 *   BENCH_SIZES=0,500,2000 BENCH_ROUNDS=20 BENCH_SECONDS=1 BENCH_CONNECTIONS=32 node build/bench/http.bench.js
 *
 * The servers run in a child process so the load generator does not share
 * their event loop. No database: the store is in memory, behind the cache, as
 * on a warm production path.
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import autocannon from 'autocannon';
import type express from 'express';
import { LABEL, SIDES, TENANTS, sideApp, type Side } from './support/http-sides';

const ROUNDS = positive('BENCH_ROUNDS', 20);
const SECONDS = positive('BENCH_SECONDS', 1);
const CONNECTIONS = positive('BENCH_CONNECTIONS', 32);
const SIZES = sizes('BENCH_SIZES', [0, 500, 2000]);

function sizes(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const values = raw.split(',').map(Number);
  if (values.length === 0 || !values.every((v) => Number.isSafeInteger(v) && v >= 0)) {
    throw new TypeError(
      `Cannot run the bench because ${name}=${raw} is not a list of registration counts (e.g. 0,500,2000).`,
    );
  }
  return values;
}

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

async function listen(app: express.Express): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => {
      resolve({ server, port: (server.address() as AddressInfo).port });
    });
  });
}

type Ports = Record<Side, number>;

/** The four servers of one size (the servers are built in bench/support/http-sides.ts). */
async function serveSize(size: number, bare: number): Promise<Ports> {
  const b = await listen(sideApp('tenanted', size));
  const f = await listen(sideApp('floor', size));
  const n = await listen(sideApp('naive', size));
  return { bare, floor: f.port, naive: n.port, tenanted: b.port };
}

/** Child process: the servers of every size, ports reported over IPC. */
async function serve(): Promise<void> {
  const bare = await listen(sideApp('bare', 0));
  const ports: Record<string, Ports> = {};
  for (const size of SIZES) ports[size] = await serveSize(size, bare.port);
  // The parent asks for the server's CPU time around each slice.
  process.on('message', (m: { cpu?: number }) => {
    if (typeof m?.cpu === 'number') {
      const usage = process.cpuUsage();
      process.send?.({ cpu: m.cpu, micros: usage.user + usage.system });
    }
  });
  process.send?.({ ports });
  process.on('disconnect', () => process.exit(0));
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

async function warmUp(ports: Ports): Promise<void> {
  // JIT and the tenant cache, not measured.
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
}

/** Runs the rounds of one size and prints its figures; returns the non-2xx + error count. */
async function measure(child: ChildProcess, size: number, ports: Ports): Promise<number> {
  await warmUp(ports);
  const rounds: Record<Side, Round[]> = { bare: [], floor: [], naive: [], tenanted: [] };
  for (let round = 0; round < ROUNDS; round += 1) {
    // Rotate which side goes first, so drift does not favour one.
    const order = SIDES.map((_, i) => SIDES[(i + round) % SIDES.length] as Side);
    for (const side of order) {
      const r = await drive(child, ports[side]);
      rounds[side].push(r);
      if (process.env.BENCH_VERBOSE) {
        console.log(
          `${size} registrations, round ${round + 1} ${LABEL[side]} ${r.rps.toFixed(0).padStart(7)} req/s  server CPU ${r.cpuPerRequest.toFixed(1)} µs/request  p50 ${r.p50} ms  p99 ${r.p99} ms  non2xx ${r.non2xx}  errors ${r.errors}`,
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
  const met = (value: number, goal: number): string => (value >= goal ? 'MET' : 'NOT MET');
  console.log('');
  console.log(
    `HTTP bench, app container with ${size} registrations: ${ROUNDS} rounds x ${SIDES.length} sides x ${SECONDS} s x ${CONNECTIONS} connections, ${TENANTS} tenants`,
  );
  for (const side of SIDES) {
    const rs = rounds[side];
    console.log(
      `  ${LABEL[side]} median ${median(rs.map((r) => r.rps)).toFixed(0)} req/s, server CPU ${median(rs.map((r) => r.cpuPerRequest)).toFixed(1)} µs/request, p50 ${median(rs.map((r) => r.p50))} ms, p99 ${median(rs.map((r) => r.p99))} ms`,
    );
  }
  const ba = ratios('tenanted', 'bare');
  const bf = ratios('tenanted', 'floor');
  console.log(
    `  throughput B/A       ${describe(ba)}, median of ${ROUNDS} rounds; goal >= 0.95 ${met(median(ba), 0.95)}`,
  );
  console.log(
    `  throughput F/A       ${describe(ratios('floor', 'bare'))}: the floor of any ALS + per-request child container design`,
  );
  console.log(
    `  throughput N/A       ${describe(ratios('naive', 'bare'))}: the same with the app container's createChildContainer()`,
  );
  console.log(
    `  throughput B/F       ${describe(bf)}: what tenantry adds over the floor; goal >= 0.98 ${met(median(bf), 0.98)}`,
  );
  console.log(`  non-2xx + errors     ${bad}`);
  return bad;
}

async function main(): Promise<void> {
  const child: ChildProcess = fork(__filename, ['--serve'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ports = await new Promise<Record<string, Ports>>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { ports: Record<string, Ports> }).ports));
    child.once('exit', (code) => reject(new Error(`Bench server exited early (${code})`)));
  });
  try {
    let bad = 0;
    for (const size of SIZES) bad += await measure(child, size, ports[size] as Ports);
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
