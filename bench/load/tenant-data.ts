/**
 * Reads every tenant's documents straight from PostgreSQL, around tenantry
 * (plain `pg` clients, no scoped Knex), so the load test, the attack corpus
 * and the fault specs can check where rows really are. Knows the demo's
 * placement: row mode = one shared `documents` table with `tenant_id`;
 * schema mode = `<schema>.documents` per tenant; database mode = `documents`
 * in each tenant's database. Not library code.
 */
import pg from 'pg';

/** One stored document, with the tenant whose storage holds it. */
export interface StoredDocument {
  /** The tenant whose storage the row was found in (row mode: its `tenant_id`). */
  readonly tenant: string;
  readonly id: string;
  readonly title: string;
  readonly body: string;
  /** ISO timestamp, to see updates. */
  readonly updatedAt: string;
}

interface TenantRow {
  id: string;
  isolation: { schema?: string; database?: { database: string } } | string | null;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

interface DocRow {
  id: string;
  tenant_id?: string;
  title: string;
  body: string;
  updated_at: Date;
}

function toStored(tenant: string, row: DocRow): StoredDocument {
  return {
    tenant,
    id: row.id,
    title: row.title,
    body: row.body,
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/**
 * Every document of every tenant, sorted by tenant then id.
 *
 * @example
 * const before = await readEveryDocument(centralUrl, 'schema');
 */
export async function readEveryDocument(
  centralUrl: string,
  mode: 'row' | 'schema' | 'database',
): Promise<StoredDocument[]> {
  const out: StoredDocument[] = [];
  if (mode === 'row') {
    const rows = await query<DocRow>(
      centralUrl,
      'SELECT id, tenant_id, title, body, updated_at FROM documents',
    );
    for (const row of rows) out.push(toStored(row.tenant_id ?? '(null)', row));
  } else {
    const tenants = await query<TenantRow>(centralUrl, 'SELECT id, isolation FROM tenants');
    for (const t of tenants) {
      const isolation = typeof t.isolation === 'string' ? JSON.parse(t.isolation) : t.isolation;
      if (mode === 'schema') {
        const schema = (isolation as { schema?: string } | null)?.schema;
        if (schema === undefined) continue;
        const rows = await query<DocRow>(
          centralUrl,
          `SELECT id, title, body, updated_at FROM ${pg.escapeIdentifier(schema)}.documents`,
        );
        for (const row of rows) out.push(toStored(t.id, row));
      } else {
        const database = (isolation as { database?: { database: string } } | null)?.database;
        if (database === undefined) continue;
        const rows = await query<DocRow>(
          withDatabase(centralUrl, database.database),
          'SELECT id, title, body, updated_at FROM documents',
        );
        for (const row of rows) out.push(toStored(t.id, row));
      }
    }
  }
  return out.sort((a, b) =>
    a.tenant === b.tenant ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.tenant < b.tenant ? -1 : 1,
  );
}

/** Groups documents by tenant. */
export function byTenant(docs: readonly StoredDocument[]): Map<string, StoredDocument[]> {
  const map = new Map<string, StoredDocument[]>();
  for (const d of docs) {
    const list = map.get(d.tenant) ?? [];
    list.push(d);
    map.set(d.tenant, list);
  }
  return map;
}
