/**
 * The per-statement tracing hook (`telemetry`, on by default): its cost with
 * no tracer registered versus the hook turned off (`telemetry: false`, where
 * only an `undefined` check is left), in one run, variants alternating.
 * Goal: nothing measurable (ratio within noise, <= 1.01).
 *
 * 1. CPU path, no network: compile + final-SQL check + hook of one statement,
 *    batches of calls alternating (A B, B A, ...), median over rounds. This
 *    is the strictest ratio: PostgreSQL's time is not in the denominator.
 * 2. End to end: the same statement sent to PostgreSQL.
 * 3. For information: with an OpenTelemetry SDK tracer provider registered
 *    and a recording span active (events written), on the CPU path.
 * 4. Instruction counts under `valgrind --tool=callgrind` (load does not
 *    change them), node run with `--predictable`: the whole-process ratio at
 *    2N statements, and per statement (Ir of 2N - Ir of N) / N. V8's own
 *    run-to-run variation is far larger than the hook, so this bounds the
 *    hook's cost rather than measuring it. Only with TRACING_BENCH_CALLGRIND=1
 *    and valgrind installed (about 15 minutes on the shared machine).
 *
 *   npm run build:test && node build/bench/tracing.bench.js
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node build/bench/tracing.bench.js
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import knexFactory, { type Knex } from 'knex';
import { runWithTenant, withTenancy, type TenantKnex } from '../src/index';
import { telemetryHooks } from '../src/telemetry/tenancy-telemetry';
import { openBenchDatabase } from './load/bench-database';
import { interleave, line } from './support/interleaved';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 31);
const BATCH = Number(process.env.BENCH_BATCH ?? 2000);
const E2E_ROUNDS = Number(process.env.BENCH_E2E_ROUNDS ?? 6);
const E2E_PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 500);
const TENANTS = ['acme', 'globex', 'initech', 'umbrella'];
const tenant = (i: number): string => TENANTS[i % TENANTS.length] as string;

type Check = (compiled: unknown) => void;

/**
 * The scoped Knex's final check of one compiled statement (what its
 * `query()` runs before sending, hook included), reached through the
 * instance's internal probe symbol: the CPU path without a connection.
 */
function finalCheck(db: TenantKnex): Check {
  const symbol = Object.getOwnPropertySymbols(db).find(
    (s) => s.description === 'tenantry.probeCheck',
  );
  if (symbol === undefined) throw new Error('the scoped Knex has no probe check');
  return (db as unknown as Record<symbol, Check>)[symbol] as Check;
}

/** One statement's CPU path: build, compile (rewrite), final check (+ hook). */
function statement(db: TenantKnex, check: Check, i: number): void {
  runWithTenant(tenant(i), () =>
    check(
      db('documents')
        .where({ id: i % 500 })
        .first()
        .toSQL(),
    ),
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** A variant of the CPU path: runs BATCH statements from `offset`. */
type Batch = (offset: number) => void;

function plainBatch(db: TenantKnex): Batch {
  const check = finalCheck(db);
  return (offset) => {
    for (let i = 0; i < BATCH; i += 1) statement(db, check, offset + i);
  };
}

/** ns per statement of each variant: batches alternating A B, B A, ...; median over rounds. */
function cpuPath(variants: readonly Batch[]): number[] {
  const samples = variants.map(() => [] as number[]);
  const timed = (index: number, offset: number): number => {
    const t0 = performance.now();
    variants[index]!(offset);
    return ((performance.now() - t0) * 1e6) / BATCH;
  };
  for (let w = 0; w < 3; w += 1) variants.forEach((_, index) => timed(index, w * BATCH));
  const order = [...variants.keys()];
  for (let r = 0; r < ROUNDS; r += 1) {
    for (const index of r % 2 === 0 ? order : [...order].reverse()) {
      samples[index]!.push(timed(index, r * BATCH));
    }
  }
  return samples.map(median);
}

/** Callgrind child: runs N statements of one variant and exits. */
async function callgrindChild(variant: string, count: number): Promise<void> {
  const knex = knexFactory({ client: 'pg' });
  const db = withTenancy(knex, {
    tenantTables: ['documents'],
    ...(variant === 'off' ? { telemetry: false as const } : {}),
  });
  await db.tenancy.ready();
  const check = finalCheck(db);
  for (let i = 0; i < 2000; i += 1) statement(db, check, i); // same warm-up in every run
  for (let i = 0; i < count; i += 1) statement(db, check, i);
  await knex.destroy();
}

function instructions(variant: string, count: number): number | undefined {
  const result = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      '--callgrind-out-file=/dev/null',
      '--smc-check=all-non-file',
      process.execPath,
      // V8 without randomness or background threads: counts repeat from run to run.
      '--predictable',
      '--random-seed=1',
      '--hash-seed=1',
      __filename,
      '--callgrind-child',
      variant,
      String(count),
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  const match = /Collected\s*:\s*(\d+)/.exec(result.stderr ?? '');
  return match ? Number(match[1]) : undefined;
}

function callgrind(): void {
  if (process.env.TRACING_BENCH_CALLGRIND !== '1') {
    console.log('callgrind: skipped (about 15 minutes; TRACING_BENCH_CALLGRIND=1 runs it)');
    return;
  }
  if (spawnSync('valgrind', ['--version']).status !== 0) {
    console.log('callgrind: valgrind not installed, skipped');
    return;
  }
  const n = Number(process.env.BENCH_CALLGRIND_STATEMENTS ?? 2000);
  const counts: Record<string, [number, number]> = {};
  for (const variant of ['off', 'default']) {
    const one = instructions(variant, n);
    const two = instructions(variant, 2 * n);
    if (one === undefined || two === undefined) {
      console.log('callgrind: valgrind run failed, skipped');
      return;
    }
    counts[variant] = [one, two];
  }
  const [offOne, offTwo] = counts.off as [number, number];
  const [onOne, onTwo] = counts.default as [number, number];
  // V8's own run-to-run variation (GC and tier-up points) is tens of millions of
  // instructions, far above the hook's few hundred per statement: read the
  // whole-process ratio, and the per-statement estimates as an upper bound on noise.
  console.log(
    `callgrind whole process, ${2 * n} statements: hook off ${offTwo} Ir, no tracer ${onTwo} Ir, ratio ${(onTwo / offTwo).toFixed(4)}; ` +
      `per statement ((Ir(${2 * n}) - Ir(${n})) / ${n}): off ${((offTwo - offOne) / n).toFixed(0)}, no tracer ${((onTwo - onOne) / n).toFixed(0)}`,
  );
}

async function main(): Promise<void> {
  if (process.argv[2] === '--callgrind-child') {
    await callgrindChild(String(process.argv[3]), Number(process.argv[4]));
    return;
  }
  trace.disable();
  context.disable();
  const offline = knexFactory({ client: 'pg' });
  const off = withTenancy(offline, { tenantTables: ['documents'], telemetry: false });
  const noTracer = withTenancy(offline, { tenantTables: ['documents'] });
  await Promise.all([off.tenancy.ready(), noTracer.tenancy.ready()]);

  console.log(
    `tracing hook, CPU path (build + compile + final check), no tracer registered: ${ROUNDS} alternating rounds x ${BATCH} statements, median`,
  );
  // A third variant runs the off side again (an A/A check): its ratio is the noise floor.
  const again = withTenancy(offline, { tenantTables: ['documents'], telemetry: false });
  await again.tenancy.ready();
  const [offNs, noTracerNs, againNs] = cpuPath([
    plainBatch(off),
    plainBatch(noTracer),
    plainBatch(again),
  ]) as [number, number, number];
  console.log(
    `  telemetry: false ${offNs.toFixed(0)} ns/statement, default (no tracer) ${noTracerNs.toFixed(0)} ns/statement, ` +
      `ratio ${(noTracerNs / offNs).toFixed(4)} (goal <= 1.01); A/A (telemetry: false twice) ${(againNs / offNs).toFixed(4)}`,
  );
  // The hook alone, as the engine calls it with no tracer registered, against the statement's CPU path.
  const hooks = telemetryHooks(undefined);
  if (hooks !== undefined) {
    const scope = { kind: 'tenant', id: 'acme', record: {} } as const;
    const sql = 'select * from "documents" where "id" = ? and "documents"."tenant_id" = ? limit ?';
    const calls = 2_000_000;
    const perCall: number[] = [];
    for (let r = 0; r < 5; r += 1) {
      const t0 = performance.now();
      for (let i = 0; i < calls; i += 1) hooks.statement(scope, 'row', 'first', sql);
      perCall.push(((performance.now() - t0) * 1e6) / calls);
    }
    const hookNs = median(perCall);
    console.log(
      `  the hook alone (no tracer): ${hookNs.toFixed(1)} ns/call, ${((100 * hookNs) / offNs).toFixed(2)} % of the statement's CPU path ` +
        `(ratio ${((offNs + hookNs) / offNs).toFixed(4)})`,
    );
  }

  const database = await openBenchDatabase('tracingbench');
  const knex: Knex = knexFactory({
    client: 'pg',
    connection: database.url,
    pool: { min: 1, max: 4 },
  });
  try {
    await knex.raw(
      'create table documents (tenant_id text not null, id integer not null, title text not null, primary key (tenant_id, id))',
    );
    for (const t of TENANTS) {
      await knex.batchInsert(
        'documents',
        Array.from({ length: 500 }, (_, i) => ({ tenant_id: t, id: i, title: `d${i}` })),
        500,
      );
    }
    await knex.raw('analyze');
    const dbOff = withTenancy(knex, { tenantTables: ['documents'], telemetry: false });
    const dbOn = withTenancy(knex, { tenantTables: ['documents'] });
    const send = (db: TenantKnex, i: number) =>
      runWithTenant(
        tenant(i),
        async () =>
          await db('documents')
            .where({ id: i % 500 })
            .first(),
      );
    console.log(
      `tracing hook, end to end (PostgreSQL), no tracer registered: ${E2E_ROUNDS} interleaved rounds x ${E2E_PER_ROUND} statements`,
    );
    const [e2eOff, e2eOn] = await interleave(
      [
        { name: 'telemetry: false', run: (i) => send(dbOff, i) },
        { name: 'default (no tracer)', run: (i) => send(dbOn, i) },
      ],
      E2E_ROUNDS,
      E2E_PER_ROUND,
    );
    if (!e2eOff || !e2eOn) throw new Error('missing timing');
    console.log(line(e2eOff));
    console.log(line(e2eOn));
    console.log(`  ratio (median) ${(e2eOn.medianUs / e2eOff.medianUs).toFixed(3)} (goal <= 1.01)`);
  } finally {
    await knex.destroy();
    await database.close();
  }

  // For information: a registered SDK provider and a recording span per 100 statements.
  const exporter = new InMemorySpanExporter();
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  const tracer = trace.getTracer('tracing-bench');
  const tracedOff = withTenancy(offline, { tenantTables: ['documents'], telemetry: false });
  const traced = withTenancy(offline, { tenantTables: ['documents'] });
  await Promise.all([tracedOff.tenancy.ready(), traced.tenancy.ready()]);
  // The same spans on both sides (one per 100 statements, under the SDK's
  // 128-events-per-span limit): only the hook differs.
  const spannedBatch = (db: TenantKnex): Batch => {
    const check = finalCheck(db);
    return (offset) => {
      for (let i = 0; i < BATCH; i += 100) {
        tracer.startActiveSpan('batch', (span) => {
          for (let k = 0; k < 100; k += 1) statement(db, check, offset + i + k);
          span.end();
        });
      }
      exporter.reset();
    };
  };
  const [tracedOffNs, tracedNs] = cpuPath([spannedBatch(tracedOff), spannedBatch(traced)]) as [
    number,
    number,
  ];
  console.log(
    `tracing hook with a tracer provider registered and a recording span (for information): telemetry: false ${tracedOffNs.toFixed(0)} ns, ` +
      `default ${tracedNs.toFixed(0)} ns per statement, ratio ${(tracedNs / tracedOffNs).toFixed(3)}, +${(tracedNs - tracedOffNs).toFixed(0)} ns (an event and an attribute per statement)`,
  );
  trace.disable();
  context.disable();
  await offline.destroy();

  callgrind();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
