/**
 * A tenant database and store shared by the realtime specs: the row fixture
 * plus more tenants, each owning three `documents` rows stamped with its id,
 * so an answer's rows show whose data a statement read.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import { createRowFixture } from '../../isolation/support/row-fixture';
import { InMemoryTenantStore } from '../../../src/store/in-memory-tenant-store';
import { currentTenant } from '../../../src/context/tenant-scope';
import { withTenancy } from '../../../src/isolation/with-tenancy';
import type { TenantKnex } from '../../../src/isolation/tenant-knex';

export const REALTIME_TENANTS = [
  'acme',
  'globex',
  'initech',
  'umbrella',
  'hooli',
  'stark',
] as const;

export interface RealtimeFixture {
  readonly knex: Knex;
  readonly db: TenantKnex;
  readonly store: InMemoryTenantStore;
}

export async function createRealtimeFixture(): Promise<RealtimeFixture> {
  const { knex } = await createRowFixture();
  for (const tenant of REALTIME_TENANTS.slice(2)) {
    await knex('documents').insert(
      [1, 2, 3].map((id) => ({ tenant_id: tenant, id, title: `t${id}`, slug: `s${id}` })),
    );
  }
  const db = withTenancy(knex, {
    tenantTables: ['documents', 'comments', 'documents_global_slug'],
  });
  const store = new InMemoryTenantStore([
    ...REALTIME_TENANTS.map((id) => ({ id })),
    { id: 'frozen', status: 'suspended' as const },
  ]);
  return { knex, db, store };
}

/** What one message's handler answers: who it ran as and whose rows it read. */
export interface TenantAnswer {
  readonly n: number;
  readonly scope: string;
  readonly rows: readonly string[];
}

/** The handler every realtime spec binds: waits `delayMs`, then reads documents. */
export async function answerAsCurrentTenant(
  db: TenantKnex,
  n: number,
  delayMs: number,
): Promise<TenantAnswer> {
  await sleep(delayMs);
  const rows = (await db('documents').select('tenant_id').orderBy('id')) as {
    tenant_id: string;
  }[];
  return { n, scope: currentTenant().id, rows: rows.map((r) => r.tenant_id) };
}
