/**
 * The full load test: in each isolation mode, 100+ tenants and 10,000+
 * mixed requests against the demo over loopback, then every response and
 * every row verified (zero cross-tenant reads, zero writes in the wrong
 * tenant, zero lost acknowledged writes). Bounded; stops by itself; exits
 * non-zero on any violation.
 *
 *   node build/bench/load/load-test.js
 *   LOAD_MODES=row,schema LOAD_TENANTS=200 LOAD_REQUESTS=20000 LOAD_CONCURRENCY=32 node build/bench/load/load-test.js
 *   TENANTRY_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node build/bench/load/load-test.js
 */
import 'reflect-metadata';
import { openBenchDatabase } from './bench-database';
import { formatReport, isClean, runLoad, uniquePrefix, type LoadReport } from './run-load';

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(
      `Cannot run the load test because ${name}=${String(raw)} is not a positive integer.`,
    );
  }
  return value;
}

async function main(): Promise<void> {
  const modes = (process.env.LOAD_MODES ?? 'row,schema,database').split(',').map((m) => m.trim());
  for (const m of modes) {
    if (m !== 'row' && m !== 'schema' && m !== 'database') {
      throw new TypeError(`Cannot run mode "${m}". Use row, schema and/or database.`);
    }
  }
  const tenants = int('LOAD_TENANTS', 100);
  const requests = int('LOAD_REQUESTS', 10_000);
  const concurrency = int('LOAD_CONCURRENCY', 32);
  const timeLimitMs = int('LOAD_TIME_LIMIT_S', 600) * 1000;
  const database = await openBenchDatabase('load');
  const reports: LoadReport[] = [];
  try {
    for (const mode of modes as ('row' | 'schema' | 'database')[]) {
      // A fresh central database per mode, on the same server.
      const name = `${uniquePrefix('ld')}central`;
      await database.admin(`CREATE DATABASE "${name}"`);
      const prefix = uniquePrefix('ld');
      try {
        console.log(
          `--- ${mode} mode: ${tenants} tenants, ${requests} requests, ${concurrency} in flight`,
        );
        const report = await runLoad({
          databaseUrl: database.urlFor(name),
          mode,
          tenants,
          requests,
          concurrency,
          timeLimitMs,
          databasePrefix: prefix,
          log: (line) => console.log(line),
        });
        reports.push(report);
        console.log(formatReport(report));
      } finally {
        await database
          .admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
          .catch(() => undefined);
        await database.dropLike(prefix);
      }
    }
  } finally {
    await database.close();
  }
  console.log('');
  console.log(`Load test summary (${database.kind} PostgreSQL)`);
  for (const r of reports) {
    console.log(
      `  ${r.mode.padEnd(8)} ${String(r.requests).padStart(6)} requests, ${r.tenants} tenants, ${r.perSecond.toFixed(0)} req/s, p99 ${r.p99Ms.toFixed(0)} ms: ${isClean(r) ? 'CLEAN' : 'VIOLATIONS'} (cross-tenant reads ${r.crossTenantReads}, wrong-tenant writes ${r.wrongTenantWrites}, lost writes ${r.lostWrites}, unexpected ${r.unexpected})`,
    );
  }
  if (reports.length !== modes.length || !reports.every(isClean)) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
