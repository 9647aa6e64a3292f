import knexFactory, { type Knex } from 'knex';
import type { TenantIsolationSettings, TenantRecord, TenantTier } from '../context/tenant-record';
import { TenantUnavailableError } from '../errors';
import {
  envCredentialsResolver,
  type CredentialsResolver,
} from '../isolation/database/credentials-resolver';
import {
  TenantPlacementRules,
  connectionObject,
  tenantConnectionConfig,
  type TenantPlacementPolicy,
} from '../isolation/database/tenant-connection';
import {
  DEFAULT_DATABASE_PREFIX,
  tenantDatabaseName,
} from '../isolation/database/tenant-database-name';
import { DEFAULT_SCHEMA_PREFIX, tenantSchemaName } from '../isolation/schema/tenant-schema-name';
import { tenantTierOf } from '../isolation/tiered/tenant-tier';
import type { IsolationMode } from '../isolation/with-tenancy-options';
import { toTenancyLogger, type TenancyLogger, type TenancyLoggerInput } from '../logger';
import { inSchema } from './migration-sources';
import { quoteInput } from '../message-text';
import { assertResidencyPolicy, assertServerAllowedForTenant } from './tenant-residency';

/** Name of the per-tenant Knex migration ledger (in each schema or database). */
export const TENANT_MIGRATIONS_TABLE = 'tenantry_migrations';

/**
 * How provisioning and migrations reach tenant storage. In database mode the
 * `servers` and `passwordRefs` rules are those of {@link TenantPlacementPolicy}:
 * a tenant record that points elsewhere is refused before anything is sent.
 */
export interface TenantPlacementOptions extends TenantPlacementPolicy {
  /** The isolation mode; with `tiers`, the default tier of new tenants. Default: `row`. */
  readonly mode?: IsolationMode | undefined;
  /**
   * Mixed fleets (tiered tenancy): each tenant on its record's tier
   * (`isolation.tier`, else `mode`); new tenants get their tier stored.
   * Default: `false` (every tenant on `mode`).
   */
  readonly tiers?: boolean | undefined;
  /**
   * Region label of the central server (data residency): row- and
   * schema-tier tenants pinned to another region are refused. Default: none.
   */
  readonly centralRegion?: string | undefined;
  /** Schema prefix (schema mode). Default: `tenant_`. */
  readonly schemaPrefix?: string | undefined;
  /** Database prefix (database mode). Default: `tenant_`. */
  readonly databasePrefix?: string | undefined;
  /** Resolves `passwordRef` (database mode). Default: an environment variable. */
  readonly credentials?: CredentialsResolver | undefined;
  /** Receives the log lines of the Knex instances opened per tenant database. Default: silent. */
  readonly logger?: TenancyLoggerInput | undefined;
}

/**
 * Knex's `log` option writing to a {@link TenancyLogger}: Knex's own logger
 * prints with `console.log`, on stdout, where it would break `--json` output.
 */
export function knexLogTo(logger: TenancyLogger): Knex.Logger {
  const text = (message: unknown) => (typeof message === 'string' ? message : String(message));
  return {
    warn: (message: unknown) => logger.warn(`knex: ${text(message)}`),
    error: (message: unknown) => logger.error(`knex: ${text(message)}`),
    deprecate: (method: string, alternative: string) =>
      logger.warn(`knex: ${method} is deprecated, use ${alternative}`),
    debug: (message: unknown) => logger.debug(`knex: ${text(message)}`),
  };
}

/** A seed: fills a freshly provisioned tenant. Runs in one transaction. */
export type TenantSeed = (knex: Knex, tenant: TenantRecord) => Promise<void>;

type Conn = Record<string, unknown> & { database: string };

function baseConnection(knex: Knex): Record<string, unknown> {
  return connectionObject(
    (knex.client as { config?: { connection?: unknown } }).config?.connection,
  );
}

/**
 * The per-mode mechanics of provisioning and migrating one tenant (internal).
 * Names always come from the validated-id mapping and are quoted as
 * identifiers; nothing else is interpolated.
 */
export class TenantPlacement {
  readonly mode: IsolationMode;
  /** Whether tenants live on their record's tier (mixed fleet). */
  readonly tiers: boolean;
  readonly #centralRegion: string | undefined;
  readonly #central: Knex;
  readonly #schemaPrefix: string;
  readonly #databasePrefix: string;
  readonly #credentials: CredentialsResolver;
  readonly #log: Knex.Logger;
  readonly #policy: TenantPlacementPolicy;
  #rules: { base: Record<string, unknown>; rules: TenantPlacementRules } | undefined;

  constructor(central: Knex, options: TenantPlacementOptions = {}) {
    this.mode = options.mode ?? 'row';
    if (!['row', 'schema', 'database'].includes(this.mode)) {
      throw new TypeError(
        `Cannot use isolation mode ${quoteInput(this.mode)} because it is unknown. Use "row", "schema" or "database".`,
      );
    }
    if (options.tiers !== undefined && typeof options.tiers !== 'boolean') {
      throw new TypeError('Cannot use option tiers because it must be true or false.');
    }
    this.tiers = options.tiers === true;
    this.#centralRegion = options.centralRegion;
    this.#central = central;
    this.#schemaPrefix = options.schemaPrefix ?? DEFAULT_SCHEMA_PREFIX;
    this.#databasePrefix = options.databasePrefix ?? DEFAULT_DATABASE_PREFIX;
    this.#credentials = options.credentials ?? envCredentialsResolver;
    this.#log = knexLogTo(toTenancyLogger(options.logger));
    this.#policy = { servers: options.servers ?? {}, passwordRefs: options.passwordRefs ?? {} };
    assertResidencyPolicy({ servers: this.#policy.servers, centralRegion: this.#centralRegion });
    // Validates the servers at start-up. A mixed fleet checks them on its first
    // database-tier tenant: an app without one need not give knex a connection object.
    if (this.mode === 'database') this.#rulesOf();
    tenantSchemaName({ id: 'probe' }, this.#schemaPrefix);
    tenantDatabaseName('probe', this.#databasePrefix);
  }

  /**
   * The tier a tenant lives on: its record's (mixed fleet), else the mode.
   * An unknown tier in a record is 503 `TENANT_UNAVAILABLE`.
   */
  tierOf(tenant: Pick<TenantRecord, 'id' | 'isolation'>): TenantTier {
    return this.tiers ? tenantTierOf(tenant, this.mode) : this.mode;
  }

  /**
   * Data residency: 409 `TENANT_REGION_MISMATCH` when the tenant is pinned
   * to a region and its storage (by tier and server) is outside it.
   */
  assertResidency(tenant: Pick<TenantRecord, 'id' | 'isolation'>): void {
    const server =
      this.tierOf(tenant) === 'database' ? tenant.isolation.database?.server : undefined;
    assertServerAllowedForTenant(tenant, server, {
      servers: this.#policy.servers,
      centralRegion: this.#centralRegion,
    });
  }

  /**
   * The isolation settings a new tenant gets (stored on its record);
   * `server` places a database-tier tenant on a server of the map.
   */
  initialIsolation(
    id: string,
    given: TenantIsolationSettings | undefined,
    server?: string | undefined,
  ): TenantIsolationSettings {
    if (given?.tier !== undefined && !this.tiers && given.tier !== this.mode) {
      throw new TypeError(
        `Cannot put tenant "${id}" on the ${String(given.tier)} tier because every tenant is on the ${this.mode} tier. ` +
          'Turn tiers on (isolation.tiers) to mix tiers.',
      );
    }
    const tier = this.tierOf({ id, isolation: given ?? {} });
    if (server !== undefined && tier !== 'database') {
      throw new TypeError(
        `Cannot put tenant "${id}" on server ${quoteInput(server)} because it is on the ${tier} tier, which lives on the central server. Use the database tier.`,
      );
    }
    const tiered: TenantIsolationSettings | undefined = this.tiers ? { ...given, tier } : given;
    return this.#initialFor(tier, id, tiered, server);
  }

  #initialFor(
    tier: TenantTier,
    id: string,
    given: TenantIsolationSettings | undefined,
    server: string | undefined,
  ): TenantIsolationSettings {
    if (tier === 'schema') {
      return {
        ...given,
        schema: tenantSchemaName({ id, isolation: given ?? {} }, this.#schemaPrefix),
      };
    }
    if (tier === 'database') {
      return {
        ...given,
        database: {
          ...given?.database,
          ...(server !== undefined ? { server } : {}),
          database: given?.database?.database ?? tenantDatabaseName(id, this.#databasePrefix),
        },
      };
    }
    return given ?? {};
  }

  /** Creates the schema/database if missing; returns whether it was created now. */
  async ensureStorage(tenant: TenantRecord): Promise<boolean> {
    this.assertResidency(tenant);
    const tier = this.tierOf(tenant);
    if (tier === 'schema') {
      const schema = tenantSchemaName(tenant, this.#schemaPrefix);
      const { rows } = (await this.#central.raw('select 1 from pg_namespace where nspname = ?', [
        schema,
      ])) as { rows: unknown[] };
      if (rows.length > 0) return false;
      await this.#central.raw('create schema if not exists ??', [schema]);
      return true;
    }
    if (tier === 'database') {
      return this.#onServerOf(tenant, async (admin, database) => {
        if (await databaseExists(admin, database)) return false;
        try {
          await admin.raw('create database ??', [database]);
          return true;
        } catch (error) {
          // 42P04: a concurrent provisioning created it first: not ours to roll back.
          if ((error as { code?: string }).code === '42P04') return false;
          throw error;
        }
      });
    }
    return false;
  }

  /** Runs `fn` on the maintenance database of the tenant's server, with the tenant database's name. */
  async #onServerOf<T>(
    tenant: TenantRecord,
    fn: (admin: Knex, database: string) => Promise<T>,
  ): Promise<T> {
    const conn = await this.#connectionOf(tenant);
    const admin = this.#knexFor({ ...conn, database: 'postgres' }, 1);
    try {
      return await fn(admin, conn.database);
    } finally {
      await admin.destroy();
    }
  }

  /**
   * Whether the placement policy lets this record reach any storage (always
   * in row and schema mode; in database mode, a record naming a server or
   * host outside the configured ones reaches none, and nothing is connected).
   */
  reachable(tenant: TenantRecord): boolean {
    if (this.tierOf(tenant) !== 'database') return true;
    try {
      this.#rulesOf().rules.targetOf(tenant);
      return true;
    } catch (error) {
      if (error instanceof TenantUnavailableError) return false;
      throw error;
    }
  }

  /**
   * Whether the tenant's schema/database exists (always `false` in row mode):
   * what a purge verifies gone, and what must not exist before an id is
   * created anew.
   */
  async storageExists(tenant: TenantRecord): Promise<boolean> {
    const tier = this.tierOf(tenant);
    if (tier === 'schema') {
      const { rows } = (await this.#central.raw('select 1 from pg_namespace where nspname = ?', [
        tenantSchemaName(tenant, this.#schemaPrefix),
      ])) as { rows: unknown[] };
      return rows.length > 0;
    }
    if (tier === 'database') {
      return this.#onServerOf(tenant, (admin, database) => databaseExists(admin, database));
    }
    return false;
  }

  /** Where the tenant's storage is, for messages: `schema "x"`, `database "y"`. */
  storageName(tenant: TenantRecord): string {
    const tier = this.tierOf(tenant);
    if (tier === 'schema') return `schema "${tenantSchemaName(tenant, this.#schemaPrefix)}"`;
    if (tier === 'database') {
      return `database ${quoteInput(tenant.isolation.database?.database ?? tenantDatabaseName(tenant.id, this.#databasePrefix))}`;
    }
    return 'rows';
  }

  /** Drops the tenant's schema/database (rollback of a failed provisioning, or purge). */
  async dropStorage(tenant: TenantRecord): Promise<void> {
    const tier = this.tierOf(tenant);
    if (tier === 'schema') {
      await this.#central.raw('drop schema if exists ?? cascade', [
        tenantSchemaName(tenant, this.#schemaPrefix),
      ]);
    } else if (tier === 'database') {
      await this.#onServerOf(tenant, (admin, database) =>
        admin.raw('drop database if exists ?? with (force)', [database]),
      );
    }
  }

  /**
   * Runs `work` with a Knex that reaches the tenant's storage, and the
   * options Knex's migrator needs for its ledger there. `migrationKnex` is
   * reused in schema mode (shared pool) and created per tenant otherwise.
   */
  async withTenantStorage<T>(
    tenant: TenantRecord,
    migrationKnex: Knex,
    work: (
      knex: Knex,
      wrap: (source: Knex.MigrationSource<unknown>) => Knex.MigratorConfig,
      scopeSql: { schema?: string },
    ) => Promise<T>,
  ): Promise<T> {
    const tier = this.tierOf(tenant);
    if (tier === 'schema') {
      const schema = tenantSchemaName(tenant, this.#schemaPrefix);
      return work(
        migrationKnex,
        (source) => ({
          migrationSource: inSchema(source, schema),
          schemaName: schema,
          tableName: TENANT_MIGRATIONS_TABLE,
        }),
        { schema },
      );
    }
    if (tier === 'database') {
      const knex = this.#knexFor(await this.#connectionOf(tenant), 2);
      try {
        return await work(
          knex,
          (source) => ({ migrationSource: source, tableName: TENANT_MIGRATIONS_TABLE }),
          {},
        );
      } finally {
        await knex.destroy();
      }
    }
    return work(
      migrationKnex,
      (source) => ({ migrationSource: source, tableName: TENANT_MIGRATIONS_TABLE }),
      {},
    );
  }

  /**
   * The node-postgres connection config that reaches the tenant's storage:
   * its own database in database mode (after the placement checks, password
   * resolved), the base connection otherwise. Used by online moves, which
   * stream `COPY` over plain clients.
   */
  async connectionConfig(tenant: TenantRecord): Promise<Record<string, unknown>> {
    if (this.mode === 'database') return this.#connectionOf(tenant);
    return { ...this.#rulesOf().base };
  }

  #rulesOf(): { base: Record<string, unknown>; rules: TenantPlacementRules } {
    if (this.#rules === undefined) {
      const base = baseConnection(this.#central);
      const defaults = {
        host: typeof base.host === 'string' ? base.host : '127.0.0.1',
        port: base.port !== undefined ? Number(base.port) : 5432,
        user: typeof base.user === 'string' ? base.user : 'postgres',
      };
      this.#rules = {
        base,
        rules: new TenantPlacementRules(this.#policy, defaults, this.#databasePrefix),
      };
    }
    return this.#rules;
  }

  // The same checks and the same connection builder as the runtime pools.
  async #connectionOf(tenant: TenantRecord): Promise<Conn> {
    const { base, rules } = this.#rulesOf();
    const target = rules.targetOf(tenant);
    const password =
      target.passwordRef !== undefined
        ? await this.#credentials(target.passwordRef, tenant)
        : typeof base.password === 'string'
          ? base.password
          : undefined;
    return { ...tenantConnectionConfig(base, target, password), database: target.database };
  }

  #knexFor(conn: Conn, max: number): Knex {
    return knexFactory({
      client: 'pg',
      connection: { ...conn },
      pool: { min: 0, max },
      log: this.#log,
    });
  }
}

async function databaseExists(admin: Knex, database: string): Promise<boolean> {
  const { rows } = (await admin.raw('select 1 from pg_database where datname = ?', [database])) as {
    rows: unknown[];
  };
  return rows.length > 0;
}
