import { TenancyConfigError } from '../errors';
import type { VerifierTables } from './verifier/statement-proof';
import type { SharedTableOption, WithTenancyOptions } from './with-tenancy-options';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** A table reference as written in a statement: `name`, `schema.name`, with an optional alias. */
export interface TableRef {
  readonly schema: string | undefined;
  readonly name: string;
  readonly alias: string | undefined;
}

/** What a table reference is. */
export type TableKind = 'tenant' | 'shared' | 'cte' | 'unknown';

function assertIdentifier(value: string, what: string): string {
  if (!IDENTIFIER.test(value)) {
    throw new TypeError(
      `Cannot use ${what} "${value}" because it is not a plain identifier. Use letters, digits and _.`,
    );
  }
  return value;
}

function splitQualified(value: string, what: string): { schema: string | undefined; name: string } {
  const parts = value.split('.');
  if (parts.length === 1) return { schema: undefined, name: assertIdentifier(value, what) };
  if (parts.length === 2) {
    return {
      schema: assertIdentifier(parts[0] as string, `${what} schema`),
      name: assertIdentifier(parts[1] as string, what),
    };
  }
  throw new TypeError(`Cannot use ${what} "${value}" because it has more than one dot.`);
}

const parseCache = new Map<string, TableRef | null>();
const AS_PATTERN = /^\s*([^\s]+?)(?:\s+as\s+([^\s]+))?\s*$/i;

/**
 * Parses a Knex table string (`documents`, `public.documents`,
 * `documents as d`); `null` when it is not a plain table reference (then the
 * caller refuses it on tenant-relevant statements).
 */
export function parseTableString(value: string, schema?: string): TableRef | null {
  const key = schema === undefined ? value : `${schema}\u0000${value}`;
  const cached = parseCache.get(key);
  if (cached !== undefined) return cached;
  let result: TableRef | null = null;
  // A quote inside a table string is part of an identifier to knex (it escapes
  // it); never strip it and read another name than PostgreSQL will.
  const m = value.includes('"') ? null : AS_PATTERN.exec(value);
  if (m) {
    const target = m[1] as string;
    const parts = target.split('.');
    const alias = m[2];
    if (parts.length === 1 && IDENTIFIER.test(parts[0] as string)) {
      result = { schema, name: parts[0] as string, alias };
    } else if (
      parts.length === 2 &&
      schema === undefined &&
      IDENTIFIER.test(parts[0] as string) &&
      IDENTIFIER.test(parts[1] as string)
    ) {
      result = { schema: parts[0], name: parts[1] as string, alias };
    }
    if (result && alias !== undefined && !IDENTIFIER.test(alias)) result = null;
  }
  if (parseCache.size > 10_000) parseCache.clear();
  parseCache.set(key, result);
  return result;
}

/**
 * The tenant and shared tables of one `withTenancy()` instance. Discovery
 * (row mode) adds tenant tables once, before the first statement runs.
 */
export class TableCatalog {
  /** tenant table name -> schema it was declared in (undefined: any/public). */
  readonly #tenant = new Map<string, string | undefined>();
  /** shared table name -> declared schemas. */
  readonly #shared = new Map<string, Set<string>>();
  readonly #unknownTables: 'refuse' | 'shared';

  constructor(options: WithTenancyOptions) {
    const tenantOption = options.tenantTables ?? [];
    const list = Array.isArray(tenantOption)
      ? (tenantOption as readonly string[])
      : ((tenantOption as { tables?: readonly string[] }).tables ?? []);
    for (const entry of list) {
      const { schema, name } = splitQualified(entry, 'tenant table');
      this.#tenant.set(name, schema);
    }
    for (const entry of options.sharedTables ?? []) this.#addShared(entry);
    for (const name of this.#tenant.keys()) {
      if (this.#shared.has(name)) {
        throw new TenancyConfigError(
          `Cannot declare table "${name}" both tenant-scoped and shared. Remove it from one list.`,
        );
      }
    }
    const unknown = options.unknownTables ?? 'refuse';
    if (unknown !== 'refuse' && unknown !== 'shared') {
      throw new TypeError(
        `Cannot use unknownTables "${String(unknown)}". Use "refuse" or "shared".`,
      );
    }
    this.#unknownTables = unknown;
  }

  #addShared(entry: SharedTableOption): void {
    const { schema, name } =
      typeof entry === 'string'
        ? splitQualified(entry, 'shared table')
        : {
            schema:
              entry.schema === undefined ? undefined : assertIdentifier(entry.schema, 'schema'),
            name: assertIdentifier(entry.name, 'shared table'),
          };
    const set = this.#shared.get(name) ?? new Set<string>();
    set.add(schema ?? 'public');
    this.#shared.set(name, set);
  }

  /** Adds discovered tenant tables (tables already declared shared are left shared). */
  addDiscovered(names: readonly string[]): void {
    for (const name of names) if (!this.#shared.has(name)) this.#tenant.set(name, undefined);
  }

  /** The tenant table names. */
  tenantTables(): string[] {
    return [...this.#tenant.keys()];
  }

  /** The shared table names, schema-qualified when not public. */
  sharedTables(): string[] {
    const out: string[] = [];
    for (const [name, schemas] of this.#shared) {
      for (const s of schemas) out.push(s === 'public' ? name : `${s}.${name}`);
    }
    return out;
  }

  /** The schema a shared table is declared in (first declared). */
  sharedSchema(name: string): string {
    const set = this.#shared.get(name);
    return set ? ([...set][0] as string) : 'public';
  }

  /** Classifies a reference. `cteNames` are the WITH names visible at this point. */
  classify(ref: TableRef, cteNames: ReadonlySet<string>): TableKind {
    if (ref.schema === undefined && cteNames.has(ref.name)) return 'cte';
    if (this.#tenant.has(ref.name)) {
      const declared = this.#tenant.get(ref.name);
      if (ref.schema === undefined || ref.schema === (declared ?? 'public')) return 'tenant';
    }
    const shared = this.#shared.get(ref.name);
    if (shared && (ref.schema === undefined || shared.has(ref.schema))) return 'shared';
    // An undeclared table counts as shared only in public: never in another
    // (tenant) schema, and never a catalog relation (pg_*), which PostgreSQL
    // finds before public.
    const publicName = ref.schema === undefined || ref.schema === 'public';
    return this.#unknownTables === 'shared' && publicName && !ref.name.startsWith('pg_')
      ? 'shared'
      : 'unknown';
  }

  /** Whether `name` is a tenant table name. */
  isTenantName(name: string): boolean {
    return this.#tenant.has(name);
  }

  /**
   * The declared (and discovered) tables as the final-SQL verifier reads
   * them: live views of this catalog's own maps, so discovery is seen.
   */
  verifierTables(): VerifierTables {
    return { tenant: this.#tenant, shared: this.#shared, unknownTables: this.#unknownTables };
  }
}
