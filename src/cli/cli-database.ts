import type { Knex } from 'knex';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { TenancyConfig } from '../config/tenancy-config';
import { TenancyConfigError } from '../errors';
import { clause, quoteInput } from '../message-text';

/** Where the CLI's central database comes from, in this order. */
export interface CliDatabaseSources {
  /** `--database-url`. */
  readonly databaseUrl?: string | undefined;
  /** `--knexfile`. */
  readonly knexfile?: string | undefined;
  /** `--env` (the knexfile's environment; else `NODE_ENV`, else `development`, as Knex's CLI). */
  readonly knexEnv?: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  /** The loaded config: `tenancy.database.url`. */
  readonly config: TenancyConfig;
}

/** The central database's connection, as Knex takes it. */
export interface CliDatabase {
  readonly connection: Knex.Config['connection'];
  /** The knexfile's `searchPath`, so the CLI finds the central tables where the app's migrations put them. */
  readonly searchPath?: string | readonly string[];
  /** What named it, for messages. */
  readonly source: '--database-url' | '--knexfile' | 'DATABASE_URL' | 'tenancy.database.url';
}

const PG_CLIENTS = ['pg', 'postgres', 'postgresql'];

function knexfileError(file: string, why: string): TenancyConfigError {
  return new TenancyConfigError(`Cannot use knexfile ${quoteInput(file)} because ${why}`);
}

/**
 * Reads a knexfile as Knex's CLI does: a config object, or one per
 * environment (`development`, `production`, ...), possibly as the module's
 * `default`. Only its `client` (must be PostgreSQL), `connection` and
 * `searchPath` are used. `.ts` knexfiles load when a TypeScript loader is
 * registered.
 */
function loadKnexfile(file: string, knexEnv: string): CliDatabase {
  const resolved = path.resolve(file);
  if (!existsSync(resolved)) throw knexfileError(file, 'it does not exist. Check the path.');
  let loaded: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require(resolved) as unknown;
  } catch (cause) {
    throw new TenancyConfigError(
      `Cannot use knexfile ${quoteInput(file)} because loading it failed: ${clause(cause instanceof Error ? cause.message : String(cause))}. Fix the file (a .ts knexfile needs a TypeScript loader).`,
      { cause },
    );
  }
  const isObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  let config: unknown = loaded;
  if (isObj(config) && isObj(config.default) && !('client' in config)) config = config.default;
  if (isObj(config) && !('client' in config) && !('connection' in config)) {
    if (!(knexEnv in config)) {
      throw knexfileError(
        file,
        `it has no environment ${quoteInput(knexEnv)} (it has: ${Object.keys(config).join(', ') || 'none'}). Pass --env or set NODE_ENV.`,
      );
    }
    config = config[knexEnv];
  }
  if (!isObj(config)) throw knexfileError(file, 'it does not export a Knex config object.');
  const client = config.client;
  if (typeof client !== 'string' || !PG_CLIENTS.includes(client)) {
    throw knexfileError(
      file,
      `its client is ${typeof client === 'string' ? quoteInput(client) : 'not a name'}; tenantry needs PostgreSQL. Set client: 'pg'.`,
    );
  }
  const connection = config.connection;
  if (typeof connection !== 'string' && !isObj(connection) && typeof connection !== 'function') {
    throw knexfileError(file, 'it has no connection. Set connection to a URL or an object.');
  }
  const searchPath = config.searchPath;
  const validPath =
    typeof searchPath === 'string' ||
    (Array.isArray(searchPath) && searchPath.every((s) => typeof s === 'string'));
  if (searchPath !== undefined && !validPath) {
    throw knexfileError(file, 'its searchPath is neither a schema name nor a list of them.');
  }
  return {
    connection: connection as Knex.Config['connection'],
    ...(validPath ? { searchPath: searchPath as string | string[] } : {}),
    source: '--knexfile',
  };
}

/**
 * The CLI's central database: `--database-url`, else `--knexfile`, else
 * `DATABASE_URL`, else the config file's `tenancy.database.url`; undefined
 * when none names one (the CLI refuses `--database-url` with `--knexfile`).
 */
export function cliDatabase(sources: CliDatabaseSources): CliDatabase | undefined {
  if (sources.databaseUrl !== undefined) {
    return { connection: sources.databaseUrl, source: '--database-url' };
  }
  if (sources.knexfile !== undefined) {
    const knexEnv = sources.knexEnv ?? sources.env.NODE_ENV ?? 'development';
    return loadKnexfile(sources.knexfile, knexEnv);
  }
  if (sources.env.DATABASE_URL)
    return { connection: sources.env.DATABASE_URL, source: 'DATABASE_URL' };
  const fromConfig = sources.config.tenancy.database.url;
  if (fromConfig !== undefined) return { connection: fromConfig, source: 'tenancy.database.url' };
  return undefined;
}
