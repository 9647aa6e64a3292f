import type { Knex } from 'knex';

/**
 * The default setting RLS policies read.
 *
 * @example
 * ```ts
 * await knex.raw(`select current_setting('${DEFAULT_RLS_SETTING}', true)`);
 * ```
 */
export const DEFAULT_RLS_SETTING = 'app.tenant_id';

/**
 * The name of the policy tenantry creates on each tenant table.
 *
 * @example
 * ```ts
 * await knex.raw(`drop policy ${RLS_POLICY_NAME} on documents`);
 * ```
 */
export const RLS_POLICY_NAME = 'tenantry_tenant_isolation';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const SETTING = /^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/;

/** Options of {@link rowLevelSecurityStatements} and {@link applyRowLevelSecurity}. */
export interface RowLevelSecurityOptions {
  /** The tenant tables to protect. Required. */
  readonly tables: readonly string[];
  /** The tenant column. Default: `tenant_id`. */
  readonly tenantColumn?: string | undefined;
  /** The setting holding the current tenant. Default: `app.tenant_id`. */
  readonly setting?: string | undefined;
}

/**
 * Validates a custom setting name (`prefix.name`, lower case).
 *
 * @example
 * ```ts
 * assertRlsSetting('app.tenant_id');
 * ```
 */
export function assertRlsSetting(setting: string): string {
  if (!SETTING.test(setting)) {
    throw new TypeError(
      `Cannot use RLS setting "${setting}" because it is not of the form "prefix.name" in [a-z0-9_].`,
    );
  }
  return setting;
}

/**
 * The SQL that turns on the backstop for each tenant table: ENABLE and FORCE
 * ROW LEVEL SECURITY (FORCE so the table owner is held to it too) and one
 * policy whose USING and WITH CHECK compare the tenant column with
 * `current_setting('<setting>', true)`. A missing or empty setting yields
 * NULL, which matches no row: no tenant, no data.
 *
 * @example
 * ```ts
 * for (const sql of rowLevelSecurityStatements({ tables: ['documents'] })) await knex.raw(sql);
 * ```
 */
export function rowLevelSecurityStatements(options: RowLevelSecurityOptions): string[] {
  const column = options.tenantColumn ?? 'tenant_id';
  const setting = assertRlsSetting(options.setting ?? DEFAULT_RLS_SETTING);
  if (!IDENTIFIER.test(column)) throw new TypeError(`Cannot use tenant column "${column}".`);
  const predicate = `"${column}" = nullif(current_setting('${setting}', true), '')`;
  return options.tables.flatMap((table) => {
    if (!IDENTIFIER.test(table))
      throw new TypeError(`Cannot protect table "${table}": not a plain identifier.`);
    const t = `"${table}"`;
    return [
      `alter table ${t} enable row level security`,
      `alter table ${t} force row level security`,
      `drop policy if exists ${RLS_POLICY_NAME} on ${t}`,
      `create policy ${RLS_POLICY_NAME} on ${t} using (${predicate}) with check (${predicate})`,
    ];
  });
}

/**
 * Applies {@link rowLevelSecurityStatements} in one transaction (idempotent).
 * Run it from migrations, as the table owner.
 *
 * @example
 * ```ts
 * await applyRowLevelSecurity(adminKnex, { tables: ['documents', 'comments'] });
 * ```
 */
export async function applyRowLevelSecurity(
  knex: Knex,
  options: RowLevelSecurityOptions,
): Promise<void> {
  const statements = rowLevelSecurityStatements(options);
  await knex.transaction(async (trx) => {
    for (const sql of statements) await trx.raw(sql);
  });
}
