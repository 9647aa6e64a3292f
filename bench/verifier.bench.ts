/**
 * The final-SQL verifier's cost, without a database: for the statements
 * tenantry's row mode produces, the cold proof (PostgreSQL's parser + the
 * proof, a cache miss), the warm check (a cache hit plus the binding check),
 * both against knex's own compile of the same statement measured in the same
 * run, and the memory a cached proof takes.
 *
 *   npm run build:test && node build/bench/verifier.bench.js
 */
import 'reflect-metadata';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import knexFactory, { type Knex } from 'knex';
import { runWithTenant, withTenancy } from '../src/index';
import { FinalSqlVerifier } from '../src/isolation/verifier/final-sql-verifier';
import { loadSqlParser } from '../src/isolation/verifier/sql-parser';
import type { CapturedScope } from '../src/isolation/scope-capture';

const WARM_CALLS = Number(process.env.BENCH_WARM_CALLS ?? 200_000);
const COLD_CALLS = Number(process.env.BENCH_COLD_CALLS ?? 400);

function micros(calls: number, fn: (i: number) => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / 1000 / calls;
}

async function main(): Promise<void> {
  await loadSqlParser();
  // No connection is opened: toSQL() only compiles.
  const knex = knexFactory({ client: 'pg' });
  const db = withTenancy(knex, {
    tenantTables: ['documents', 'comments'],
    sharedTables: ['countries'],
  });
  const shapes: Array<[string, (k: Knex) => Knex.QueryBuilder]> = [
    ['select by id', (k) => k('documents').where({ id: 1 }).first()],
    ['list + order + limit', (k) => k('documents').where('views', '>=', 0).orderBy('id').limit(20)],
    [
      'join',
      (k) =>
        k('documents')
          .join('comments', 'comments.document_id', 'documents.id')
          .where('documents.id', 1),
    ],
    ['whereIn subquery', (k) => k('documents').whereIn('id', k('comments').select('document_id'))],
    ['insert', (k) => k('documents').insert({ id: 1, title: 't' })],
    ['update', (k) => k('documents').where({ id: 1 }).update({ title: 't' })],
    [
      'cte + union',
      (k) =>
        k
          .with('d', k('documents').select('id'))
          .select('id')
          .from('d')
          .union(k('comments').select('id')),
    ],
  ];
  const scope: CapturedScope = Object.freeze({
    kind: 'tenant',
    id: 'acme',
    record: { id: 'acme', status: 'active' } as never,
  });
  const settings = {
    mode: 'row' as const,
    tenantColumn: 'tenant_id',
    tables: {
      tenant: new Map<string, string | undefined>([
        ['documents', undefined],
        ['comments', undefined],
      ]),
      shared: new Map<string, ReadonlySet<string>>([['countries', new Set(['public'])]]),
      unknownTables: 'refuse' as const,
    },
    isSafeFunction: () => false,
    schemaFor: () => 'tenant_acme',
  };
  const toFinal = knex.client as { positionBindings(sql: string): string };

  const warmRatios: number[] = [];
  // The first pass warms the JIT up and prints nothing; the second is measured.
  for (const pass of [0, 1]) {
    if (pass === 1) {
      console.log(
        'statement                 compile µs  cold proof µs  warm check µs  warm/compile',
      );
    }
    for (const [name, build] of shapes) {
      const compiled = runWithTenant('acme', () => build(db).toSQL());
      const sql = compiled.sql;
      const bindings = compiled.bindings as unknown[];
      // Baseline: knex compiling the same statement (plain Knex, no tenantry).
      const compile = micros(20_000, () => build(knex).toSQL());
      const cold = new FinalSqlVerifier({ ...settings, cacheSize: 0 });
      const coldMicros = micros(COLD_CALLS, () =>
        cold.verify(sql, bindings, scope, undefined, toFinal),
      );
      const warm = new FinalSqlVerifier({ ...settings, cacheSize: 100 });
      warm.verify(sql, bindings, scope, undefined, toFinal);
      // A fresh string each call, as knex hands over: the cache key is hashed every time.
      const texts = Array.from({ length: 64 }, () => (' ' + sql).slice(1));
      const warmMicros = micros(WARM_CALLS, (i) =>
        warm.verify(texts[i & 63] as string, bindings, scope, undefined, toFinal),
      );
      if (pass === 0) continue;
      warmRatios.push(warmMicros / compile);
      console.log(
        `${name.padEnd(26)}${compile.toFixed(2).padStart(10)}${coldMicros.toFixed(1).padStart(15)}` +
          `${warmMicros.toFixed(3).padStart(15)}${(warmMicros / compile).toFixed(3).padStart(14)}`,
      );
    }
  }
  warmRatios.sort((a, b) => a - b);
  console.log(
    `median warm check / knex compile: ${warmRatios[warmRatios.length >> 1]?.toFixed(3)}`,
  );

  // Memory per cached proof: fill a cache with distinct statement texts.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const entries = 5000;
  const texts = Array.from(
    { length: entries },
    (_, i) =>
      `select "id", "title" from "documents" where "id" = $1 and "views" > ${i} and "documents"."tenant_id" = $2`,
  );
  const filled = new FinalSqlVerifier({ ...settings, cacheSize: entries });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const text of texts) filled.verify(text, [1, 'acme'], scope);
  gc();
  const after = process.memoryUsage().heapUsed;
  const textBytes = texts.reduce((n, t) => n + t.length, 0) / entries;
  console.log(
    `memory per cached proof: ${((after - before) / entries).toFixed(0)} bytes ` +
      `(${entries} entries of ~${textBytes.toFixed(0)}-character texts; the texts are the keys)`,
  );
  await knex.destroy();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
