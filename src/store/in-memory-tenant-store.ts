import { assertValidTenantId } from '../context/tenant-id';
import type { TenantRecord } from '../context/tenant-record';
import { TenantNotFoundError, TenantStateError } from '../errors';
import type { NewTenant, TenantListOptions, TenantPatch, TenantStore } from './tenant-store';
import { quoteInput } from '../message-text';

function copy(record: TenantRecord): TenantRecord {
  // Callers get their own copy: mutating a returned record must never change the store.
  return structuredClone(record);
}

/**
 * A {@link TenantStore} kept in process memory: for tests, demos and apps
 * whose tenants are fixed at start-up.
 *
 * @example
 * ```ts
 * const store = new InMemoryTenantStore([{ id: 'acme', name: 'Acme' }, { id: 'initech', status: 'suspended' }]);
 * await store.findById('acme'); // { id: 'acme', status: 'active', ... }
 * ```
 */
export class InMemoryTenantStore implements TenantStore {
  readonly #tenants = new Map<string, TenantRecord>();

  /** Seeds the store; throws `TENANT_INVALID` / `TENANT_STATE_INVALID` like {@link create}. */
  constructor(seed: readonly NewTenant[] = []) {
    for (const tenant of seed) this.#insert(tenant);
  }

  async findById(id: string): Promise<TenantRecord | undefined> {
    const found = this.#tenants.get(id);
    return found === undefined ? undefined : copy(found);
  }

  async list(options: TenantListOptions = {}): Promise<TenantRecord[]> {
    return [...this.#tenants.values()]
      .filter((t) => options.status === undefined || options.status.includes(t.status))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map(copy);
  }

  async create(tenant: NewTenant): Promise<TenantRecord> {
    return copy(this.#insert(tenant));
  }

  async update(id: string, patch: TenantPatch): Promise<TenantRecord> {
    const current = this.#tenants.get(id);
    if (current === undefined) {
      throw new TenantNotFoundError(
        `Cannot update tenant ${quoteInput(id)} because it does not exist. Create it first.`,
      );
    }
    const next: TenantRecord = {
      ...current,
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.status !== undefined ? { status: patch.status } : {}),
      ...(patch.statusReason !== undefined ? { statusReason: patch.statusReason } : {}),
      ...(patch.isolation !== undefined ? { isolation: structuredClone(patch.isolation) } : {}),
      ...(patch.config !== undefined ? { config: structuredClone(patch.config) } : {}),
      ...(patch.domains !== undefined ? { domains: structuredClone(patch.domains) } : {}),
      updatedAt: new Date(),
    };
    this.#tenants.set(id, next);
    return copy(next);
  }

  async remove(id: string): Promise<boolean> {
    return this.#tenants.delete(id);
  }

  async findByDomain(domain: string): Promise<TenantRecord | undefined> {
    for (const tenant of this.#tenants.values()) {
      if (tenant.domains?.some((d) => d.verified && d.domain === domain)) return copy(tenant);
    }
    return undefined;
  }

  #insert(tenant: NewTenant): TenantRecord {
    const id = assertValidTenantId(tenant.id, 'new tenant');
    if (this.#tenants.has(id)) {
      throw new TenantStateError(
        `Cannot create tenant "${id}" because it already exists. Pick another id.`,
      );
    }
    const now = new Date();
    const record: TenantRecord = {
      id,
      name: tenant.name ?? id,
      status: tenant.status ?? 'active',
      statusReason: null,
      isolation: structuredClone(tenant.isolation ?? {}),
      config: structuredClone(tenant.config ?? {}),
      ...(tenant.domains !== undefined ? { domains: structuredClone(tenant.domains) } : {}),
      createdAt: now,
      updatedAt: now,
    };
    this.#tenants.set(id, record);
    return record;
  }
}
