/**
 * A handler running one primary-key query, over HTTP: the same Express app
 * (`resolveTenant()` + `requireTenant()`, warm `CachedTenantStore`) with the
 * handler's query written
 *   H) on plain Knex with a hand-written `where('tenant_id', …)`, and
 *   W) through `withTenancy()` (no tenant filter in the handler).
 * Both servers run in one child process; autocannon drives them from this
 * one in 1-second slices, alternating H W, W H, ... Prints W/H throughput as
 * the median of the per-round ratios (goal >= 0.98) and the server's CPU
 * time per request on each side.
 *
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node build/bench/pk-handler.bench.js
 *   BENCH_ROUNDS=20 BENCH_SECONDS=1 BENCH_CONNECTIONS=16 node build/bench/pk-handler.bench.js
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import express, { type Request, type Response } from 'express';
import knexFactory, { type Knex } from 'knex';
import {
  CachedTenantStore,
  InMemoryTenantStore,
  requireTenant,
  resolveTenant,
  tenancyErrorHandler,
  withTenancy,
} from '../src/index';
import { openBenchDatabase } from './load/bench-database';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const TENANTS = ['acme', 'globex', 'initech', 'umbrella'];
const ROWS = 500;

type Side = 'hand' | 'scoped';

async function serve(url: string): Promise<void> {
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 4, max: 8 } });
  const db = withTenancy(knex, { tenantTables: ['documents'] });
  const store = new CachedTenantStore(
    new InMemoryTenantStore(TENANTS.map((id) => ({ id, name: id }))),
    { ttlMs: 600_000 },
  );
  const app = (query: (req: Request, id: number) => Promise<unknown>): express.Express => {
    const a = express();
    a.disable('x-powered-by');
    a.use(resolveTenant({ store, strategies: ['header'] }));
    a.get('/documents/:id', requireTenant(), async (req: Request, res: Response) => {
      const row = await query(req, Number(req.params.id));
      if (row === undefined) res.status(404).end();
      else res.json(row);
    });
    a.use(tenancyErrorHandler());
    return a;
  };
  const hand = app((req, id) =>
    knex('documents')
      .where({ id })
      .where('tenant_id', (req.tenant as { id: string }).id)
      .first(),
  );
  const scoped = app((_req, id) => db('documents').where({ id }).first());
  const listen = (a: express.Express): Promise<number> =>
    new Promise((resolve) => {
      const server = a.listen(0, '127.0.0.1', () =>
        resolve((server.address() as AddressInfo).port),
      );
    });
  const ports: Record<Side, number> = { hand: await listen(hand), scoped: await listen(scoped) };
  process.on('message', (m: { cpu?: number }) => {
    if (typeof m?.cpu === 'number') {
      const usage = process.cpuUsage();
      process.send?.({ cpu: m.cpu, micros: usage.user + usage.system });
    }
  });
  process.send?.({ ports });
  process.on('disconnect', () => {
    void knex.destroy().finally(() => process.exit(0));
  });
}

let asks = 0;
function serverCpu(child: ChildProcess): Promise<number> {
  const ask = (asks += 1);
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

async function drive(
  child: ChildProcess,
  port: number,
  seconds: number,
): Promise<{ rps: number; cpu: number; bad: number }> {
  let n = 0;
  const before = await serverCpu(child);
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/documents/0`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        setupRequest: (request) => {
          n += 1;
          return {
            ...request,
            path: `/documents/${n % ROWS}`,
            headers: { ...request.headers, 'x-tenant-id': TENANTS[n % TENANTS.length] as string },
          };
        },
      },
    ],
  });
  const cpu = ((await serverCpu(child)) - before) / Math.max(1, result.requests.total);
  return { rps: result.requests.average, cpu, bad: result.non2xx + result.errors };
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  const database = await openBenchDatabase('pkhandler');
  const knex: Knex = knexFactory({ client: 'pg', connection: database.url });
  let child: ChildProcess | undefined;
  try {
    await knex.raw(
      'create table documents (tenant_id text not null, id integer not null, title text not null, primary key (tenant_id, id))',
    );
    for (const t of TENANTS) {
      await knex.batchInsert(
        'documents',
        Array.from({ length: ROWS }, (_, i) => ({ tenant_id: t, id: i, title: `${t} ${i}` })),
        500,
      );
    }
    await knex.raw('analyze');
    child = fork(__filename, ['--serve', database.url], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const server = child;
    const ports = await new Promise<Record<Side, number>>((resolve, reject) => {
      server.once('message', (m) => resolve((m as { ports: Record<Side, number> }).ports));
      server.once('exit', (code) => reject(new Error(`Bench server exited early (${code})`)));
    });
    await drive(server, ports.hand, 1);
    await drive(server, ports.scoped, 1);
    const rounds: Record<Side, { rps: number; cpu: number }[]> = { hand: [], scoped: [] };
    let bad = 0;
    for (let round = 0; round < ROUNDS; round += 1) {
      const order: Side[] = round % 2 === 0 ? ['hand', 'scoped'] : ['scoped', 'hand'];
      for (const side of order) {
        const r = await drive(server, ports[side], SECONDS);
        rounds[side].push(r);
        bad += r.bad;
      }
    }
    const ratios = rounds.hand.map((h, i) => (rounds.scoped[i] as { rps: number }).rps / h.rps);
    const sorted = [...ratios].sort((a, b) => a - b);
    const q = (p: number) => (sorted[Math.floor((sorted.length - 1) * p)] as number).toFixed(3);
    console.log('');
    console.log(
      `Primary-key handler: ${ROUNDS} rounds x 2 sides x ${SECONDS} s x ${CONNECTIONS} connections (${database.kind} PostgreSQL)`,
    );
    for (const side of ['hand', 'scoped'] as const) {
      console.log(
        `  ${side === 'hand' ? 'H hand-written filter' : 'W withTenancy()      '} median ${median(rounds[side].map((r) => r.rps)).toFixed(0)} req/s, server CPU ${median(rounds[side].map((r) => r.cpu)).toFixed(1)} µs/request`,
      );
    }
    const goal = median(ratios);
    console.log(
      `  throughput W/H        ${goal.toFixed(3)} (quartiles ${q(0.25)} - ${q(0.75)}); goal >= 0.98 ${goal >= 0.98 ? 'MET' : 'NOT MET'}`,
    );
    console.log(`  non-2xx + errors      ${bad}`);
    if (bad > 0) process.exitCode = 1;
  } finally {
    child?.disconnect();
    await knex.destroy();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await database.close();
  }
}

if (process.argv.includes('--serve')) {
  void serve(process.argv[process.argv.indexOf('--serve') + 1] as string);
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
