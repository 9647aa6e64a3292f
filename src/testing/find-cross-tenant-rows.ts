import { isValidTenantId } from '../context/tenant-id';
import { runWithTenant } from '../context/tenant-scope';
import { TenancyError, type TenancyErrorCode } from '../errors';

/**
 * One statement of a leak test: runs in the current tenant scope and returns
 * what the query returned (a Knex builder or an Objection query awaited, a
 * `knex.raw()` result...).
 *
 * @example
 * ```ts
 * const openInvoices: LeakTestStatement = () => db('invoices').where({ status: 'open' });
 * ```
 */
export type LeakTestStatement = () => unknown;

/** Options of {@link findCrossTenantRows}. */
export interface FindCrossTenantRowsOptions {
  /**
   * The two tenants each statement runs as (`runWithTenant()`, no status
   * check: a test helper). Both must exist in your data, with rows of their
   * own in the tables the statements read. Required.
   *
   * @example
   * ```ts
   * tenants: ['acme', 'globex']
   * ```
   */
  readonly tenants: readonly [string, string];
  /**
   * The statements to check, by name (the name appears in the report).
   * Required, at least one.
   *
   * @example
   * ```ts
   * statements: { 'open invoices': () => db('invoices').where({ status: 'open' }) }
   * ```
   */
  readonly statements: Readonly<Record<string, LeakTestStatement>>;
  /**
   * Which tenant a returned row belongs to: a column name, or a function of
   * the row (for schema or database mode, where rows carry no tenant
   * column, select a column that names the owner, e.g. one your seed fills).
   * Default: `'tenant_id'`.
   *
   * @example
   * ```ts
   * owner: (row) => row.owner_tenant
   * ```
   */
  readonly owner?: string | ((row: Readonly<Record<string, unknown>>) => unknown) | undefined;
}

/** A row one tenant's statement returned that belongs to another tenant. */
export interface CrossTenantRow {
  /** The statement's name. */
  readonly statement: string;
  /** The tenant the statement ran as. */
  readonly runAs: string;
  /** The tenant the row belongs to (as `owner` read it). */
  readonly owner: string;
  /** The row as returned. */
  readonly row: Readonly<Record<string, unknown>>;
}

/** What {@link findCrossTenantRows} found. */
export interface CrossTenantReport {
  /** Rows of another tenant: a leak. Empty when isolation holds. */
  readonly crossTenantRows: readonly CrossTenantRow[];
  /** Statements that returned rows without an owner value (not checkable: select the owner column). */
  readonly unownedRows: readonly { statement: string; runAs: string; count: number }[];
  /** Statements tenantry refused (e.g. 500 `UNSAFE_QUERY`): they cannot leak, and your code cannot use them as written. */
  readonly refused: readonly {
    statement: string;
    runAs: string;
    code: TenancyErrorCode;
    message: string;
  }[];
  /** Rows returned and checked, over both tenants. */
  readonly checkedRows: number;
}

function returnedRows(value: unknown): Record<string, unknown>[] {
  const list: unknown[] = Array.isArray(value)
    ? value
    : typeof value === 'object' &&
        value !== null &&
        Array.isArray((value as { rows?: unknown }).rows)
      ? (value as { rows: unknown[] }).rows
      : typeof value === 'object' && value !== null
        ? [value]
        : [];
  return list.filter((r): r is Record<string, unknown> => typeof r === 'object' && r !== null);
}

/**
 * A leak test for your own schema: runs every statement as each of two
 * tenants and reports the returned rows that belong to the other tenant (and
 * the statements tenantry refused). Run it in your test suite against a
 * database seeded with rows of both tenants; `crossTenantRows` must be empty.
 * A statement that throws anything but a `TenancyError` rejects the call.
 *
 * @throws TypeError when `tenants` is not two distinct valid ids, `statements`
 *   is empty or holds a non-function, or `owner` is neither a string nor a function.
 * @example
 * ```ts
 * import { findCrossTenantRows } from 'tenantry/testing';
 * const report = await findCrossTenantRows({
 *   tenants: ['acme', 'globex'],
 *   statements: {
 *     'invoices with customers': () => db('invoices').join('customers', 'customers.id', 'invoices.customer_id'),
 *     'search': () => db('invoices').where('title', 'like', '%a%').orWhere('total', '>', 0),
 *   },
 * });
 * assert.deepStrictEqual(report.crossTenantRows, []);
 * ```
 */
export function findCrossTenantRows(
  options: FindCrossTenantRowsOptions,
): Promise<CrossTenantReport> {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('findCrossTenantRows(options) needs an options object.');
  }
  const { tenants, statements, owner = 'tenant_id' } = options;
  if (
    !Array.isArray(tenants) ||
    tenants.length !== 2 ||
    !tenants.every((t) => isValidTenantId(t)) ||
    tenants[0] === tenants[1]
  ) {
    throw new TypeError(
      'Cannot run the leak test because tenants is not two distinct valid tenant ids. Pass e.g. tenants: ["acme", "globex"].',
    );
  }
  const named =
    typeof statements === 'object' && statements !== null ? Object.entries(statements) : [];
  if (named.length === 0 || named.some(([, s]) => typeof s !== 'function')) {
    throw new TypeError(
      'Cannot run the leak test because statements is not a non-empty object of functions. Pass e.g. statements: { all: () => db("invoices") }.',
    );
  }
  if (typeof owner !== 'string' && typeof owner !== 'function') {
    throw new TypeError(
      'Cannot run the leak test because owner is neither a column name nor a function.',
    );
  }
  // Options are checked synchronously (a TypeError at the call), the statements run after.
  const ownerOf =
    typeof owner === 'string' ? (row: Readonly<Record<string, unknown>>) => row[owner] : owner;
  return runLeakTest(tenants, named, ownerOf);
}

async function runLeakTest(
  tenants: readonly [string, string],
  named: [string, LeakTestStatement][],
  ownerOf: (row: Readonly<Record<string, unknown>>) => unknown,
): Promise<CrossTenantReport> {
  const crossTenantRows: CrossTenantRow[] = [];
  const unownedRows: { statement: string; runAs: string; count: number }[] = [];
  const refused: { statement: string; runAs: string; code: TenancyErrorCode; message: string }[] =
    [];
  let checkedRows = 0;
  for (const [statement, fn] of named) {
    for (const runAs of tenants) {
      let value: unknown;
      try {
        value = await runWithTenant(runAs, async () => await fn());
      } catch (error) {
        if (!(error instanceof TenancyError)) throw error;
        refused.push({ statement, runAs, code: error.code, message: error.message });
        continue;
      }
      let unowned = 0;
      for (const row of returnedRows(value)) {
        checkedRows += 1;
        const rowOwner = ownerOf(row);
        if (rowOwner === undefined || rowOwner === null) unowned += 1;
        else if (String(rowOwner) !== runAs) {
          crossTenantRows.push({ statement, runAs, owner: String(rowOwner), row });
        }
      }
      if (unowned > 0) unownedRows.push({ statement, runAs, count: unowned });
    }
  }
  return { crossTenantRows, unownedRows, refused, checkedRows };
}
