/**
 * A PostgreSQL for a bench or load run: the server named by
 * TENANTRY_BENCH_DATABASE_URL (a fresh database is created on it and dropped
 * afterwards), else an embedded PostgreSQL started for the run and stopped
 * afterwards. Not library code.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../demo/embedded-postgres';

/** A database for one run. */
export interface BenchDatabase {
  /** `external` (TENANTRY_BENCH_DATABASE_URL) or `embedded`. */
  readonly kind: 'external' | 'embedded';
  /** URL of the run's own database. */
  readonly url: string;
  /** URL of another database on the same server. */
  urlFor(database: string): string;
  /** Runs one statement on the maintenance database. */
  admin(sql: string): Promise<void>;
  /** Drops every database whose name starts with `prefix`. */
  dropLike(prefix: string): Promise<void>;
  /** Drops the run's database (and every database whose name starts with its name), stops an embedded server. */
  close(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

async function run(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * Opens a database for a run.
 *
 * @example
 * const db = await openBenchDatabase('lookup');
 * try { ... } finally { await db.close(); }
 */
export async function openBenchDatabase(label: string): Promise<BenchDatabase> {
  const name = `tenantry_${label}_${process.pid}_${randomBytes(3).toString('hex')}`;
  const external = process.env.TENANTRY_BENCH_DATABASE_URL;
  let urlFor: (database: string) => string;
  let stop: () => Promise<void> = async () => undefined;
  let kind: BenchDatabase['kind'];
  if (external) {
    urlFor = (database) => withDatabase(external, database);
    kind = 'external';
  } else {
    const baseDir = mkdtempSync(path.join(tmpdir(), 'tenantry-bench-'));
    const server = await startEmbeddedPostgres({ baseDir, name: `pg-${label}` });
    urlFor = server.urlFor;
    stop = async () => {
      await server.stop();
      rmSync(baseDir, { recursive: true, force: true });
    };
    kind = 'embedded';
  }
  const admin = async (sql: string): Promise<void> => {
    await run(urlFor('postgres'), sql);
  };
  await admin(`CREATE DATABASE "${name}"`);
  const dropLike = async (prefix: string): Promise<void> => {
    const found = await run(
      urlFor('postgres'),
      `SELECT datname FROM pg_database WHERE starts_with(datname, ${pg.escapeLiteral(prefix)})`,
    );
    for (const row of found.rows as { datname: string }[]) {
      await admin(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(row.datname)} WITH (FORCE)`).catch(
        () => undefined,
      );
    }
  };
  return {
    dropLike,
    kind,
    url: urlFor(name),
    urlFor,
    admin,
    async close() {
      try {
        await dropLike(name);
      } finally {
        await stop();
      }
    },
  };
}
