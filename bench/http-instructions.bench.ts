/**
 * Server CPU per HTTP request as instruction counts, which the load of the
 * machine does not change (wall-clock ratios on the shared 2-core machine
 * move by ±10 % between runs). The same four servers as `http.bench.ts`
 * (bench/support/http-sides.ts: A bare Express, F the hand-written floor,
 * N the floor with the app container's own `createChildContainer()`, B the
 * tenantry chain) at 0, 500 and 2,000 registrations in the app container.
 *
 * Each server runs alone in a Node process under `valgrind --tool=callgrind`
 * (`--single-threaded`, so V8 compiles on the main thread, counted, and a run
 * repeats itself); the load generator is this process, outside valgrind, so
 * its instructions are not counted. After WARM requests (JIT and caches warm)
 * the server zeroes callgrind's counters (`callgrind_control -z`, asked over
 * stdin), answers MEASURED requests, and dumps them (`callgrind_control -d`);
 * then it zeroes and dumps with no request between, the cost of the two
 * control calls, which is subtracted. That window is repeated WINDOWS times
 * per process and the whole is run REPEATS times (fresh processes); printed
 * is the median over every window, with the spread.
 *
 * GC and V8's compiler run inside the windows, as they do in production; the
 * median over windows keeps one window's major GC from deciding the figure.
 * `BENCH_FULL_GC=1` runs a full GC (`--expose-gc`) and REWARM requests before
 * each window instead. That was the default until 2026-12-02, and it skews the figure:
 * the forced GC makes V8 recompile the request path inside the window (callgrind:
 * 300,000–650,000 of the floor's 1.1 million instructions per request were
 * compiler work with it, 110,000–290,000 without it, windows of 800 requests).
 *
 *   node build/bench/http-instructions.bench.js
 *   BENCH_SIZES=0,500,2000 BENCH_WARM=2000 BENCH_MEASURED=1000 BENCH_WINDOWS=3 BENCH_REPEATS=1 BENCH_JOBS=2 node build/bench/http-instructions.bench.js
 *   BENCH_SIDES=floor,tenanted node build/bench/http-instructions.bench.js
 *
 * Prints, per size, instructions per request of each side, B/F (goal <= 1.02:
 * tenantry within 2 % of the floor), B/A and, across sizes, B at each size
 * against B at the first size (goal: independent of the registrations).
 * Without valgrind on the PATH it says so and exits 0.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LABEL, SIDES, TENANTS, sideApp, type Side } from './support/http-sides';

const SIZES = list('BENCH_SIZES', '0,500,2000').map(Number);
const WARM = positive('BENCH_WARM', 2000);
const FULL_GC = process.env.BENCH_FULL_GC === '1';
const REWARM = positive('BENCH_REWARM', 500);
const MEASURED = positive('BENCH_MEASURED', 1000);
const WINDOWS = positive('BENCH_WINDOWS', 3);
const REPEATS = positive('BENCH_REPEATS', 1);
const JOBS = positive('BENCH_JOBS', 2);
const CONNECTIONS = 4;
const WANTED = list('BENCH_SIDES', SIDES.join(',')) as Side[];

function list(name: string, fallback: string): string[] {
  const raw = process.env[name] ?? fallback;
  const values = raw.split(',').filter((v) => v !== '');
  if (name === 'BENCH_SIDES' && !values.every((v) => (SIDES as string[]).includes(v))) {
    throw new TypeError(
      `Cannot run the bench because ${name}=${raw} is not a list of ${SIDES.join(', ')}.`,
    );
  }
  if (name === 'BENCH_SIZES' && !values.every((v) => Number.isSafeInteger(Number(v)))) {
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

/**
 * Server mode: one side, on a loopback port printed on stdout. Lines on
 * stdin: `gc` runs a full GC; `zero` / `dump <name>` run callgrind_control on
 * this process; each answers `ok`; end of stdin exits.
 */
function serve(side: Side, size: number): void {
  const server = sideApp(side, size).listen(0, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  // Under valgrind a request takes ~100x longer: no idle or request timeout may
  // close a keep-alive connection the load generator is about to reuse.
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  let buffered = '';
  process.stdin.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const [command, name] = buffered.slice(0, nl).split(' ');
      buffered = buffered.slice(nl + 1);
      if (command === 'gc') {
        // A full GC before each window, so a major GC owed by earlier work does not land in it.
        (globalThis as { gc?: () => void }).gc?.();
      } else {
        const args = command === 'zero' ? ['-z'] : ['-d', name ?? 'window'];
        execFileSync('callgrind_control', [...args, String(process.pid)], { stdio: 'ignore' });
      }
      process.stdout.write('ok\n');
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

/** Sends `count` GET /documents over CONNECTIONS keep-alive connections; rejects on a non-200. */
async function drive(port: number, count: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const n = sent;
      sent += 1;
      const req = http.get(
        {
          host: '127.0.0.1',
          port,
          path: '/documents',
          agent,
          headers: { 'x-tenant-id': `tenant-${n % TENANTS}` },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200
              ? resolve()
              : reject(new Error(`Bench server answered ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
    });
  const lane = async (): Promise<void> => {
    while (sent < count) await one();
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, lane));
  agent.destroy();
}

/** Instructions per request of one server process, one figure per window. */
async function perRequestOf(side: Side, size: number, tag: string): Promise<number[]> {
  const base = `tenantry-callgrind-${process.pid}-${tag}.out`;
  const out = path.join(os.tmpdir(), base);
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${out}`,
      process.execPath,
      '--single-threaded',
      '--expose-gc',
      __filename,
      '--serve',
      side,
      String(size),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  const early = exited.then((code) => {
    throw new Error(`Bench server exited early (${code}): ${stderr}`);
  });
  const nextLine = (): Promise<string> =>
    Promise.race([
      new Promise<string>((resolve) => {
        const line = lines.shift();
        if (line !== undefined) resolve(line);
        else waiting.push(resolve);
      }),
      early,
    ]);
  const ask = async (command: string): Promise<void> => {
    child.stdin.write(`${command}\n`);
    if ((await nextLine()) !== 'ok') throw new Error(`Bench server did not answer ${command}`);
  };
  const port = (JSON.parse(await nextLine()) as { port: number }).port;
  await drive(port, WARM);
  for (let w = 0; w < WINDOWS; w += 1) {
    if (FULL_GC) {
      await ask('gc');
      await drive(port, REWARM);
    }
    await ask('zero');
    await drive(port, MEASURED);
    await ask(`dump requests-${w}`);
    await ask('zero');
    await ask(`dump empty-${w}`);
  }
  child.stdin.end();
  early.catch(() => undefined);
  const code = await exited;
  if (code !== 0) throw new Error(`Bench server exited with ${code}: ${stderr}`);
  const dumps = new Map<string, number>();
  for (const file of readdirSync(os.tmpdir()).filter((f) => f.startsWith(base))) {
    const text = readFileSync(path.join(os.tmpdir(), file), 'utf8');
    const trigger = /^desc: Trigger: Client Request: (\S+)|^desc: Trigger: dump (\S+)/m.exec(text);
    const totals = /^totals:\s+(\d+)/m.exec(text);
    const name = trigger?.[1] ?? trigger?.[2];
    if (name !== undefined && totals !== null) dumps.set(name, Number(totals[1]));
    rmSync(path.join(os.tmpdir(), file), { force: true });
  }
  return Array.from({ length: WINDOWS }, (_, w) => {
    const requests = dumps.get(`requests-${w}`);
    const empty = dumps.get(`empty-${w}`);
    if (requests === undefined || empty === undefined) {
      throw new Error(
        `No callgrind dump of window ${w} of ${side} (${[...dumps.keys()].join(', ')})`,
      );
    }
    return (requests - empty) / MEASURED;
  });
}

const LETTER: Record<Side, string> = { bare: 'A', floor: 'F', naive: 'N', tenanted: 'B' };

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Runs `tasks` with at most JOBS at a time. */
async function pool<T>(tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next;
      next += 1;
      results[i] = await (tasks[i] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(JOBS, tasks.length) }, worker));
  return results;
}

async function main(): Promise<void> {
  if (spawnSync('valgrind', ['--version']).status !== 0) {
    console.log('valgrind is not installed: no instruction counts (apt-get install valgrind).');
    return;
  }
  console.log(
    `HTTP instructions per request (callgrind), ${WARM} warm-up requests, then ${WINDOWS} windows of ${FULL_GC ? `(full GC, ${REWARM} requests, ${MEASURED} measured requests)` : `${MEASURED} requests`}, ${REPEATS} process(es) per side, sides ${WANTED.join(', ')}`,
  );
  const perRequest: Record<string, number[]> = {};
  const tasks: (() => Promise<void>)[] = [];
  for (const size of SIZES) {
    for (let r = 0; r < REPEATS; r += 1) {
      const order = WANTED.map((_, i) => WANTED[(i + r) % WANTED.length] as Side);
      for (const side of order) {
        tasks.push(async () => {
          const figures = await perRequestOf(side, size, `${size}-${side}-${r}`);
          (perRequest[`${size}:${side}`] ??= []).push(...figures);
        });
      }
    }
  }
  await pool(tasks);
  for (const size of SIZES) {
    const of = (side: Side): number[] => perRequest[`${size}:${side}`] ?? [];
    const spread = (values: number[]): string =>
      `${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)}`;
    console.log('');
    console.log(`app container with ${size} registrations:`);
    for (const side of WANTED) {
      console.log(
        `  ${LABEL[side]} ${median(of(side)).toFixed(0).padStart(9)} instructions/request (runs ${spread(of(side))})`,
      );
    }
    const ratio = (top: Side, bottom: Side, goal?: number): void => {
      if (!WANTED.includes(top) || !WANTED.includes(bottom)) return;
      const value = median(of(top)) / median(of(bottom));
      const pairs = of(top).map((t, i) => t / (of(bottom)[i] ?? NaN));
      const verdict =
        goal === undefined ? '' : `; goal <= ${goal} ${value <= goal ? 'MET' : 'NOT MET'}`;
      console.log(
        `  ${LETTER[top]}/${LETTER[bottom]} ${value.toFixed(3)} (per window ${Math.min(...pairs).toFixed(3)}–${Math.max(...pairs).toFixed(3)})${verdict}`,
      );
    };
    ratio('tenanted', 'floor', 1.02);
    ratio('tenanted', 'bare');
    ratio('floor', 'bare');
    ratio('naive', 'bare');
    ratio('naive', 'floor');
  }
  if (SIZES.length > 1) {
    console.log('');
    const first = SIZES[0] as number;
    for (const side of WANTED) {
      const base = median(perRequest[`${first}:${side}`] ?? []);
      const cells = SIZES.map(
        (size) => `${size}: ${(median(perRequest[`${size}:${side}`] ?? []) / base).toFixed(3)}`,
      );
      console.log(`  ${LABEL[side]} against ${first} registrations  ${cells.join('  ')}`);
    }
  }
}

if (process.argv.includes('--serve')) {
  const at = process.argv.indexOf('--serve');
  serve(process.argv[at + 1] as Side, Number(process.argv[at + 2]));
} else {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
