import { inject, injectable } from 'tsyringe';
import { TENANT_KNEX, TenantContext, type TenantKnex } from '../src/index';

/** A document as the API shows it (the same in every isolation mode: no tenant column). */
export interface DocumentView {
  readonly id: string;
  readonly title: string;
  readonly body: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** What a new document is made of (already validated). */
export interface NewDocument {
  readonly title: string;
  readonly body?: string;
}

/** A partial change of a document (already validated; at least one field). */
export interface DocumentChanges {
  readonly title?: string;
  readonly body?: string;
}

interface DocumentRow {
  id: string;
  title: string;
  body: string;
  created_at: Date;
  updated_at: Date;
}

/** Columns read back: never `tenant_id`, so row mode answers exactly like the others. */
const COLUMNS = ['id', 'title', 'body', 'created_at', 'updated_at'] as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function toView(row: DocumentRow): DocumentView {
  return {
    id: row.id,
    title: row.title,
    body: row.body,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/**
 * The documents of the current tenant. It never sees a tenant id: the
 * scoped Knex adds the tenant predicate (row mode), the tenant schema
 * (schema mode) or the tenant's database (database mode) to every
 * statement, and stamps inserts. The injected `TenantContext` is only used
 * for logs and for the per-tenant document quota.
 */
@injectable()
export class DocumentService {
  constructor(
    private readonly tenant: TenantContext,
    @inject(TENANT_KNEX) private readonly db: TenantKnex,
  ) {}

  /** Every document of the tenant, newest first. */
  async list(): Promise<DocumentView[]> {
    const rows = (await this.db('documents')
      .select(...COLUMNS)
      .orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'asc' },
      ])) as DocumentRow[];
    return rows.map(toView);
  }

  /** The document, or `undefined` when it does not exist in this tenant (foreign ids included). */
  async get(id: string): Promise<DocumentView | undefined> {
    // A malformed id cannot exist; answering "missing" keeps ids unprobeable.
    if (!UUID.test(id)) return undefined;
    const row = (await this.db('documents')
      .select(...COLUMNS)
      .where({ id })
      .first()) as DocumentRow | undefined;
    return row ? toView(row) : undefined;
  }

  /** Creates a document in the current tenant. */
  async create(input: NewDocument): Promise<DocumentView> {
    const rows = (await this.db('documents')
      .insert({ title: input.title, body: input.body ?? '' })
      .returning([...COLUMNS])) as DocumentRow[];
    return toView(rows[0] as DocumentRow);
  }

  /** Applies `changes`; `undefined` when the document does not exist in this tenant. */
  async update(id: string, changes: DocumentChanges): Promise<DocumentView | undefined> {
    if (!UUID.test(id)) return undefined;
    const rows = (await this.db('documents')
      .where({ id })
      // Not db.fn.now(): it is a raw fragment, which the scoped Knex refuses on tenant tables.
      .update({ ...changes, updated_at: new Date() })
      .returning([...COLUMNS])) as DocumentRow[];
    const row = rows[0];
    return row ? toView(row) : undefined;
  }

  /** Deletes the document; whether it existed in this tenant. */
  async remove(id: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    const deleted = await this.db('documents').where({ id }).del();
    return deleted > 0;
  }

  /** How many documents the tenant has. */
  async count(): Promise<number> {
    const row = (await this.db('documents').count({ n: '*' }).first()) as
      { n: string | number } | undefined;
    return Number(row?.n ?? 0);
  }

  /** The tenant id, for logs. */
  get tenantId(): string {
    return this.tenant.id;
  }
}
