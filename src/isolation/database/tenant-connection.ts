import { parseIntoClientConfig } from 'pg-connection-string';
import type { TenantDatabaseSettings, TenantRecord } from '../../context/tenant-record';
import { TenancyConfigError, TenantUnavailableError } from '../../errors';
import { tenantDatabaseName } from './tenant-database-name';

/** A PostgreSQL server tenant databases may live on (database mode). */
export interface TenantServer {
  /** Host name, address or unix socket directory. Required. */
  readonly host: string;
  /** Port. Default: `5432`. */
  readonly port?: number;
  /**
   * Region label (data residency): tenants pinned to a region are placed only
   * on servers with that label. Default: none (no pinned tenant is placed here).
   */
  readonly region?: string | undefined;
}

/**
 * Which `passwordRef` names a tenant record may use. A name is resolved only
 * when it starts with `prefix` or is listed in `allow`.
 */
export interface PasswordRefPolicy {
  /** Names starting with this are allowed (e.g. `TENANT_DB_PASSWORD_`). Default: none. */
  readonly prefix?: string;
  /** Names allowed exactly. Default: `[]`. */
  readonly allow?: readonly string[];
}

/**
 * Where tenant records may point their database (database mode). Anyone who
 * can write a tenant record must not be able to send a password to a server
 * of their choosing, nor have any secret of the process resolved for them.
 *
 * @example
 * ```ts
 * const policy: TenantPlacementPolicy = {
 *   servers: { eu1: { host: 'pg-eu1.internal' }, us1: { host: 'pg-us1.internal', port: 5433 } },
 *   passwordRefs: { prefix: 'TENANT_DB_PASSWORD_' },
 * };
 * ```
 */
export interface TenantPlacementPolicy {
  /**
   * The servers tenant databases may live on, by name. A record picks one
   * with `isolation.database.server`; a record that gives `host`/`port`
   * instead must match one of them (or the base connection's). Default: `{}`
   * (only the base connection's server).
   */
  readonly servers?: Readonly<Record<string, TenantServer>> | undefined;
  /** Which `passwordRef` names may be resolved. Default: none (every `passwordRef` is refused). */
  readonly passwordRefs?: PasswordRefPolicy | undefined;
}

/** A node-postgres connection config (what `knex({ connection })` accepts as an object). */
export type PgConnectionConfig = Readonly<Record<string, unknown>>;

/** Where one tenant's database is, after the policy checks (no secret). */
export interface TenantDatabaseTarget {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly passwordRef?: string | undefined;
}

const SERVER_NAME = /^[A-Za-z0-9_.-]{1,63}$/;

/**
 * The base connection as an object: a URL is parsed with
 * `pg-connection-string` (what node-postgres itself uses: unix sockets,
 * `sslmode`, `options`, ...), an object is copied, and a `connectionString`
 * inside an object is expanded (node-postgres would let it override the
 * fields tenantry sets). Never mutates its input.
 */
export function connectionObject(connection: unknown): Record<string, unknown> {
  if (typeof connection === 'string') return withoutEmpty(parseIntoClientConfig(connection));
  if (connection !== null && typeof connection === 'object' && !Array.isArray(connection)) {
    const { connectionString, ...rest } = connection as Record<string, unknown>;
    if (typeof connectionString === 'string') {
      return { ...rest, ...withoutEmpty(parseIntoClientConfig(connectionString)) };
    }
    return { ...rest };
  }
  throw new TenancyConfigError(
    'Cannot build tenant database connections because the base connection is not a URL or an object. ' +
      'Give knex a connection string or a connection object.',
  );
}

function withoutEmpty(config: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value !== undefined && value !== null) out[key] = value;
  }
  return out;
}

/**
 * The one place every tenant connection (pools, provisioning, migrations) is
 * built: the base connection object with only host, port, database, user
 * and password replaced, so `ssl` and every other option of the base apply
 * to tenants too. A password of `undefined` keeps none.
 */
export function tenantConnectionConfig(
  base: PgConnectionConfig,
  target: Pick<TenantDatabaseTarget, 'host' | 'port' | 'database' | 'user'>,
  password: string | undefined,
  extra: PgConnectionConfig = {},
): Record<string, unknown> {
  const { password: _basePassword, ...rest } = base;
  return {
    ...rest,
    ...extra,
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    ...(password !== undefined ? { password } : {}),
  };
}

/** Checks tenant records against a {@link TenantPlacementPolicy} and resolves their target. */
export class TenantPlacementRules {
  readonly #servers: ReadonlyMap<string, { host: string; port: number }>;
  readonly #base: { host: string; port: number; user: string };
  readonly #prefix: string | undefined;
  readonly #allow: ReadonlySet<string>;
  readonly #databasePrefix: string;

  constructor(
    policy: TenantPlacementPolicy,
    base: { host: string; port: number; user: string },
    databasePrefix: string,
  ) {
    const servers = new Map<string, { host: string; port: number }>();
    for (const [name, server] of Object.entries(policy.servers ?? {})) {
      if (!SERVER_NAME.test(name)) {
        throw new TypeError(
          `Cannot use server name "${name}": use [A-Za-z0-9_.-], 1-63 characters.`,
        );
      }
      if (typeof server?.host !== 'string' || server.host === '') {
        throw new TypeError(`Cannot use server "${name}" because it has no host.`);
      }
      const port = server.port ?? 5432;
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new TypeError(`Cannot use server "${name}" because its port is not 1-65535.`);
      }
      servers.set(name, { host: server.host, port });
    }
    const prefix = policy.passwordRefs?.prefix;
    if (prefix !== undefined && (typeof prefix !== 'string' || prefix === '')) {
      throw new TypeError(
        'Cannot use passwordRefs.prefix "": give a non-empty prefix or leave it out.',
      );
    }
    this.#servers = servers;
    this.#base = base;
    this.#prefix = prefix;
    this.#allow = new Set(policy.passwordRefs?.allow ?? []);
    this.#databasePrefix = databasePrefix;
  }

  /**
   * The tenant's database target, or a `TenantUnavailableError` (the
   * caller's request cannot be served) saying which field of the record is
   * not allowed. Nothing is resolved or sent before this check passes.
   */
  targetOf(tenant: TenantRecord): TenantDatabaseTarget {
    const s: Partial<TenantDatabaseSettings> = tenant.isolation.database ?? {};
    const refuse = (why: string): never => {
      throw new TenantUnavailableError(
        `Cannot connect to the database of tenant "${tenant.id}" because its record ${why}. ` +
          'Fix the tenant record, or configure the server (database.servers) or secret name (database.passwordRefs).',
      );
    };
    let server = { host: this.#base.host, port: this.#base.port };
    if (s.server !== undefined) {
      const named = typeof s.server === 'string' ? this.#servers.get(s.server) : undefined;
      if (named === undefined) refuse('names a server that is not configured');
      server = named as { host: string; port: number };
      if (
        (s.host !== undefined && s.host !== server.host) ||
        (s.port !== undefined && s.port !== server.port)
      ) {
        refuse('gives a host or port that differs from its server');
      }
    } else if (s.host !== undefined || s.port !== undefined) {
      const wanted = { host: s.host ?? this.#base.host, port: s.port ?? this.#base.port };
      const known =
        (wanted.host === this.#base.host && wanted.port === this.#base.port) ||
        [...this.#servers.values()].some((c) => c.host === wanted.host && c.port === wanted.port);
      if (!known) refuse('gives a host and port that are not one of the configured servers');
      server = wanted;
    }
    if (s.passwordRef !== undefined) {
      const ref = s.passwordRef;
      const allowed =
        typeof ref === 'string' &&
        (this.#allow.has(ref) || (this.#prefix !== undefined && ref.startsWith(this.#prefix)));
      if (!allowed) refuse('names a password secret that is not allowed');
    }
    return {
      host: server.host,
      port: server.port,
      database: s.database ?? tenantDatabaseName(tenant.id, this.#databasePrefix),
      user: s.user ?? this.#base.user,
      ...(s.passwordRef !== undefined ? { passwordRef: s.passwordRef } : {}),
    };
  }
}
