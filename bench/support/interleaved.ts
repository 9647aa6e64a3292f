/**
 * Timing helpers for the isolation benches: variants alternate call by call
 * (A B, B A, A B, ...) in one process against one server, so drift in the
 * machine's load (a noisy VM swings medians by 15% from one second to the
 * next) hits both alike, and neither always runs first. Not library code.
 */
import { performance } from 'node:perf_hooks';
import knexFactory, { type Knex } from 'knex';

/** A named operation to time. */
export interface Variant {
  readonly name: string;
  run(i: number): Promise<unknown>;
}

/** Per-variant median and p95 latency in microseconds. */
export interface Timing {
  readonly name: string;
  readonly medianUs: number;
  readonly p95Us: number;
  readonly meanUs: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

/**
 * Runs `rounds` x `perRound` sequential calls of each variant, alternating
 * variants call by call and reversing their order every other call.
 */
export async function interleave(
  variants: readonly Variant[],
  rounds: number,
  perRound: number,
): Promise<Timing[]> {
  const samples = variants.map(() => [] as number[]);
  for (const v of variants) for (let i = 0; i < 200; i += 1) await v.run(i); // warm-up
  const forward = [...variants.keys()];
  const backward = [...forward].reverse();
  for (let r = 0; r < rounds; r += 1) {
    for (let i = 0; i < perRound; i += 1) {
      for (const index of i % 2 === 0 ? forward : backward) {
        const v = variants[index] as Variant;
        const t0 = performance.now();
        await v.run(r * perRound + i);
        (samples[index] as number[]).push((performance.now() - t0) * 1000);
      }
    }
  }
  return variants.map((v, index) => {
    const sorted = (samples[index] as number[]).slice().sort((a, b) => a - b);
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    return {
      name: v.name,
      medianUs: percentile(sorted, 0.5),
      p95Us: percentile(sorted, 0.95),
      meanUs: mean,
    };
  });
}

/** Microseconds per call of a synchronous function. */
export function microsPerCall(fn: (i: number) => unknown, calls: number): number {
  for (let i = 0; i < 1000; i += 1) fn(i);
  const t0 = performance.now();
  for (let i = 0; i < calls; i += 1) fn(i);
  return ((performance.now() - t0) * 1000) / calls;
}

/** Formats a timing line. */
export function line(t: Timing): string {
  return `${t.name.padEnd(34)} median ${t.medianUs.toFixed(0).padStart(6)} µs  p95 ${t.p95Us.toFixed(0).padStart(6)} µs  mean ${t.meanUs.toFixed(0).padStart(6)} µs`;
}

/** Knex instances (pool 1..4) opened by a bench, destroyed together at its end. */
export function benchKnexes(): { open(url: string): Knex; destroyAll(): Promise<void> } {
  const opened: Knex[] = [];
  return {
    open(url) {
      const k = knexFactory({ client: 'pg', connection: url, pool: { min: 1, max: 4 } });
      opened.push(k);
      return k;
    },
    async destroyAll() {
      for (const k of opened.splice(0)) await k.destroy();
    },
  };
}
