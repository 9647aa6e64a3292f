/**
 * The test suite's PostgreSQL: the server named by TENANTRY_TEST_DATABASE_URL
 * when set, else an embedded PostgreSQL started for the run. Each run works in
 * its own fresh database (dropped at the end), so concurrent runs against one
 * server do not see each other.
 */
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../demo/embedded-postgres';

/** The server and the run's database. */
export interface TestServer {
  /** `embedded` or `external`. */
  readonly kind: 'embedded' | 'external';
  /** URL of the run's own database. */
  readonly databaseUrl: string;
  /** Name of the run's own database. */
  readonly databaseName: string;
  /** URL of another database on the same server. */
  urlFor(database: string): string;
}

let server: TestServer | undefined;
let embedded: EmbeddedPostgresServer | undefined;
const knexes = new Set<Knex>();

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** Runs one statement on the server's maintenance database. */
export async function adminQuery(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client(testServer().urlFor('postgres'));
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/** Starts (or connects to) the server and creates the run's database. */
export async function startTestServer(): Promise<TestServer> {
  if (server) return server;
  const external = process.env.TENANTRY_TEST_DATABASE_URL;
  let urlFor: (database: string) => string;
  let kind: TestServer['kind'];
  if (external) {
    urlFor = (database) => withDatabase(external, database);
    kind = 'external';
  } else {
    embedded = await startEmbeddedPostgres({ name: 'test-pg' });
    urlFor = embedded.urlFor;
    kind = 'embedded';
  }
  const databaseName = `tenantry_spec_${process.pid}_${randomBytes(3).toString('hex')}`;
  server = { kind, databaseName, databaseUrl: urlFor(databaseName), urlFor };
  await adminQuery(`CREATE DATABASE "${databaseName}"`);
  return server;
}

/** The started server; throws if the root hooks have not started it. */
export function testServer(): TestServer {
  if (!server)
    throw new Error('The test server is not started: spec/support/root-hooks must run first.');
  return server;
}

/**
 * A Knex on the run's database (or `database`), destroyed after the run.
 *
 * @example
 * const knex = createTestKnex({ pool: { min: 0, max: 1 } });
 */
export function createTestKnex(overrides: Partial<Knex.Config> = {}, database?: string): Knex {
  const s = testServer();
  const knex = knexFactory({
    client: 'pg',
    connection: database ? s.urlFor(database) : s.databaseUrl,
    pool: { min: 0, max: 5 },
    ...overrides,
  });
  knexes.add(knex);
  return knex;
}

/** Destroys a Knex created by {@link createTestKnex} early. */
export async function destroyTestKnex(knex: Knex): Promise<void> {
  knexes.delete(knex);
  await knex.destroy();
}

/**
 * Creates a scratch database on the test server; it is dropped with the run.
 * Names are random so concurrent runs never clash.
 */
export async function createScratchDatabase(prefix = 'scratch'): Promise<string> {
  const name = `tenantry_${prefix}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  scratch.add(name);
  return name;
}
const scratch = new Set<string>();

/** Stops everything the run started. */
export async function stopTestServer(): Promise<void> {
  await Promise.allSettled([...knexes].map((k) => k.destroy()));
  knexes.clear();
  if (server) {
    for (const name of [server.databaseName, ...scratch]) {
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
    }
    scratch.clear();
  }
  server = undefined;
  await embedded?.stop();
  embedded = undefined;
}
