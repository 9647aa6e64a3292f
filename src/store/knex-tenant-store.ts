import type { Knex } from 'knex';
import { assertValidTenantId } from '../context/tenant-id';
import type {
  TenantDomain,
  TenantIsolationSettings,
  TenantRecord,
  TenantStatus,
} from '../context/tenant-record';
import { TenantNotFoundError, TenantStateError } from '../errors';
import { DEFAULT_TENANTS_TABLE, assertTableName } from './central-migrations';
import type { NewTenant, TenantListOptions, TenantPatch, TenantStore } from './tenant-store';
import { quoteInput } from '../message-text';

/** Options of {@link KnexTenantStore}. */
export interface KnexTenantStoreOptions {
  /** Name of the central tenants table. Default: `tenants`. */
  readonly tableName?: string | undefined;
}

interface TenantRow {
  id: string;
  name: string;
  status: TenantStatus;
  status_reason: string | null;
  isolation: TenantIsolationSettings | null;
  config: Record<string, unknown> | null;
  domains?: TenantDomain[] | null;
  created_at: Date;
  updated_at: Date;
}

const STATUSES: ReadonlySet<TenantStatus> = new Set([
  'active',
  'moving',
  'suspended',
  'archived',
  'provisioning',
  'provisioning_failed',
  'deleted',
]);

function assertStatus(status: TenantStatus): TenantStatus {
  if (!STATUSES.has(status)) {
    throw new TypeError(
      `Cannot use tenant status ${quoteInput(status)} because it is unknown. Use one of ${[...STATUSES].join(', ')}.`,
    );
  }
  return status;
}

function toRecord(row: TenantRow): TenantRecord {
  return Object.freeze({
    id: row.id,
    name: row.name,
    status: row.status,
    statusReason: row.status_reason,
    isolation: Object.freeze(row.isolation ?? {}),
    config: Object.freeze(row.config ?? {}),
    ...(row.domains !== undefined && row.domains !== null && row.domains.length > 0
      ? { domains: Object.freeze(row.domains.map((d) => Object.freeze({ ...d }))) }
      : {}),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  });
}

/**
 * A {@link TenantStore} over the central `tenants` table in PostgreSQL
 * (created by the central migrations: `migrateCentral(knex)`). Every value
 * is a bound parameter; ids are validated before any statement is sent.
 * Wrap it in a `CachedTenantStore` for request-time lookups.
 *
 * @example
 * ```ts
 * await migrateCentral(knex);
 * const store = new KnexTenantStore(knex);
 * await store.create({ id: 'acme', name: 'Acme Inc.' });
 * ```
 */
export class KnexTenantStore implements TenantStore {
  readonly #knex: Knex;
  readonly #table: string;

  constructor(knex: Knex, options: KnexTenantStoreOptions = {}) {
    if (typeof knex !== 'function') {
      throw new TypeError('Cannot create KnexTenantStore because knex is not a Knex instance.');
    }
    this.#knex = knex;
    this.#table = assertTableName(options.tableName ?? DEFAULT_TENANTS_TABLE, 'tableName');
  }

  /** The Knex instance this store writes to (the central database). */
  get knex(): Knex {
    return this.#knex;
  }

  /** The table name. */
  get tableName(): string {
    return this.#table;
  }

  async findById(id: string): Promise<TenantRecord | undefined> {
    assertValidTenantId(id, 'tenant store lookup');
    const row = (await this.#knex<TenantRow>(this.#table).where({ id }).first()) as
      TenantRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  async list(options: TenantListOptions = {}): Promise<TenantRecord[]> {
    const query = this.#knex<TenantRow>(this.#table).select('*').orderBy('id', 'asc');
    if (options.status !== undefined) {
      query.whereIn('status', options.status.map(assertStatus));
    }
    const rows = (await query) as TenantRow[];
    return rows.map(toRecord);
  }

  async create(tenant: NewTenant): Promise<TenantRecord> {
    const id = assertValidTenantId(tenant.id, 'new tenant');
    const rows = (await this.#knex(this.#table)
      .insert({
        id,
        name: tenant.name ?? id,
        status: assertStatus(tenant.status ?? 'active'),
        isolation: JSON.stringify(tenant.isolation ?? {}),
        config: JSON.stringify(tenant.config ?? {}),
        ...(tenant.domains !== undefined ? { domains: JSON.stringify(tenant.domains) } : {}),
      })
      .onConflict('id')
      .ignore()
      .returning('*')) as TenantRow[];
    const row = rows[0];
    if (!row) {
      throw new TenantStateError(
        `Cannot create tenant "${id}" because a tenant with this id already exists. Pick another id.`,
      );
    }
    return toRecord(row);
  }

  async update(id: string, patch: TenantPatch): Promise<TenantRecord> {
    assertValidTenantId(id, 'tenant store update');
    const changes = this.#columns(patch);
    const rows = (await this.#knex(this.#table)
      .where({ id })
      .update(changes)
      .returning('*')) as TenantRow[];
    const row = rows[0];
    if (!row) {
      throw new TenantNotFoundError(`Cannot update tenant "${id}" because it does not exist.`);
    }
    return toRecord(row);
  }

  /**
   * Updates a tenant only while its status is one of `from`: the
   * compare-and-set that lifecycle transitions use, so two processes racing
   * on one tenant cannot both win. Returns `undefined` when the tenant is
   * missing or in another status.
   *
   * @example
   * ```ts
   * await store.updateIfStatus('acme', ['active'], { status: 'suspended' });
   * ```
   */
  async updateIfStatus(
    id: string,
    from: readonly TenantStatus[],
    patch: TenantPatch,
  ): Promise<TenantRecord | undefined> {
    assertValidTenantId(id, 'tenant store update');
    const changes = this.#columns(patch);
    const rows = (await this.#knex(this.#table)
      .where({ id })
      .whereIn('status', from.map(assertStatus))
      .update(changes)
      .returning('*')) as TenantRow[];
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** The columns a patch changes, validated, with `updated_at` stamped by the server. */
  #columns(patch: TenantPatch): Record<string, unknown> {
    const changes: Record<string, unknown> = { updated_at: this.#knex.fn.now() };
    if (patch.name !== undefined) changes.name = patch.name;
    if (patch.status !== undefined) changes.status = assertStatus(patch.status);
    if (patch.statusReason !== undefined) changes.status_reason = patch.statusReason;
    if (patch.isolation !== undefined) changes.isolation = JSON.stringify(patch.isolation);
    if (patch.config !== undefined) changes.config = JSON.stringify(patch.config);
    if (patch.domains !== undefined) changes.domains = JSON.stringify(patch.domains);
    return changes;
  }

  /** The tenant holding `domain` as a verified custom domain (a containment query on the GIN-indexed `domains`). */
  async findByDomain(domain: string): Promise<TenantRecord | undefined> {
    const row = (await this.#knex<TenantRow>(this.#table)
      .whereRaw('?? @> ?::jsonb', ['domains', JSON.stringify([{ domain, verified: true }])])
      .orderBy('id', 'asc')
      .first()) as TenantRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  async remove(id: string): Promise<boolean> {
    assertValidTenantId(id, 'tenant store remove');
    const count = await this.#knex(this.#table).where({ id }).delete();
    return Number(count) > 0;
  }
}
