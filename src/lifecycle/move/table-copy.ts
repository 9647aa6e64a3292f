import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { ident, literal, type MoveTable } from './storage-session';

/** A source table and its counterpart on the target, with what is copied between them. */
export interface TablePair {
  readonly source: MoveTable;
  readonly target: MoveTable;
  /** Target columns written, in order. */
  readonly columns: readonly string[];
  /** The source expression of each written column (a column, or the tenant id for a row target's tenant column). */
  readonly select: readonly string[];
  /** Columns compared by the verification: both sides' columns but the tenant column. */
  readonly compared: readonly string[];
}

type CopyStreams = typeof import('pg-copy-streams');
let copyStreams: CopyStreams | undefined;

// pg-copy-streams is an optional peer: only moves need it.
function streams(): CopyStreams {
  if (copyStreams === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      copyStreams = require('pg-copy-streams') as CopyStreams;
    } catch (cause) {
      throw new TypeError(
        'Cannot move a tenant because the optional peer dependency pg-copy-streams is not installed. Run npm install pg-copy-streams.',
        { cause },
      );
    }
  }
  return copyStreams;
}

/** Throws unless the optional peer `pg-copy-streams` can be loaded. */
export function assertCopyStreams(): void {
  streams();
}

/** `where "tenant_id" = 'acme'` on a row-tier table, nothing otherwise. */
export function tenantFilter(table: MoveTable, tenantId: string, alias = ''): string {
  if (table.tenantColumn === undefined) return 'true';
  return `${alias}${ident(table.tenantColumn)} = ${literal(tenantId)}`;
}

/**
 * Pairs the source tables with the target's by name. A source table without
 * a counterpart is an error when it holds rows of the tenant (they would be
 * left behind), and so is a table without a primary key (the capture records
 * keys).
 */
export async function pairTables(
  sourceClient: pg.Client,
  tenantId: string,
  sources: readonly MoveTable[],
  targets: readonly MoveTable[],
): Promise<TablePair[]> {
  const byName = new Map(targets.map((t) => [t.name, t]));
  const pairs: TablePair[] = [];
  for (const source of sources) {
    const target = byName.get(source.name);
    if (target === undefined) {
      const { rows } = await sourceClient.query(
        `select 1 from ${source.qualified} where ${tenantFilter(source, tenantId)} limit 1`,
      );
      if (rows.length === 0) continue;
      throw new Error(
        `table ${source.schema}.${source.name} holds rows of the tenant and has no counterpart on the target (run the tenant migrations there)`,
      );
    }
    if (source.primaryKey.length === 0) {
      throw new Error(
        `table ${source.schema}.${source.name} has no primary key, which the change capture records`,
      );
    }
    const missingKey = source.primaryKey.filter((c) => !target.columns.includes(c));
    if (missingKey.length > 0 || target.primaryKey.join() !== source.primaryKey.join()) {
      throw new Error(
        `table ${source.name} has primary key (${source.primaryKey.join(', ')}) on the source and (${target.primaryKey.join(', ')}) on the target`,
      );
    }
    const columns: string[] = [];
    const select: string[] = [];
    for (const c of target.columns) {
      // A row target's tenant column is always the tenant (a schema or database tier may leave it null).
      if (c === target.tenantColumn) {
        columns.push(c);
        select.push(`${literal(tenantId)}::text`);
      } else if (source.columns.includes(c)) {
        columns.push(c);
        select.push(ident(c));
      }
    }
    const compared = columns.filter(
      (c) => c !== target.tenantColumn && c !== source.tenantColumn && source.columns.includes(c),
    );
    pairs.push({ source, target, columns, select, compared });
  }
  // The target's foreign-key order.
  const order = new Map(targets.map((t, i) => [t.name, i]));
  return pairs.sort((a, b) => (order.get(a.target.name) ?? 0) - (order.get(b.target.name) ?? 0));
}

/** Empties the target tables of this tenant (a resumed or retried first pass starts clean). */
export async function clearTarget(
  target: pg.Client,
  tenantId: string,
  pairs: readonly TablePair[],
): Promise<void> {
  const own = pairs.filter((p) => p.target.tenantColumn === undefined);
  if (own.length > 0) {
    await target.query(`truncate ${own.map((p) => p.target.qualified).join(', ')}`);
  }
  for (const p of [...pairs].reverse()) {
    if (p.target.tenantColumn === undefined) continue;
    await target.query(
      `delete from ${p.target.qualified} where ${tenantFilter(p.target, tenantId)}`,
    );
  }
}

/**
 * A COPY pair failed on the wire: both sessions are unusable and must be
 * ended (which rolls their transactions back), never given another statement.
 */
export class CopyInterruptedError extends Error {
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'CopyInterruptedError';
  }
}

/**
 * The first pass: every table with `COPY ... TO STDOUT` piped into
 * `COPY ... FROM STDIN`, parents first, from one REPEATABLE READ snapshot of
 * the source (so foreign keys hold on the target) into one target
 * transaction. Returns the rows copied per table. Throws
 * {@link CopyInterruptedError} when a COPY fails on the wire: the caller must
 * then end both sessions.
 */
export async function copyTables(
  source: pg.Client,
  target: pg.Client,
  tenantId: string,
  pairs: readonly TablePair[],
  onTable?: (pair: TablePair) => Promise<void>,
): Promise<Record<string, number>> {
  const { to, from } = streams();
  const copied: Record<string, number> = {};
  // Set while a COPY pair is on the wire. If it fails there (a server gone,
  // a connection cut), neither client can take another statement: the
  // source's COPY TO still owns its socket (pg-copy-streams took its data
  // listener, and a destroyed stream never gives it back), so a `rollback`
  // queued on it would wait forever. The caller then ends both sessions,
  // which rolls both transactions back on the servers.
  let streaming = false;
  await source.query('begin isolation level repeatable read read only');
  await target.query('begin');
  try {
    await clearTarget(target, tenantId, pairs);
    for (const p of pairs) {
      await onTable?.(p);
      streaming = true;
      const out = source.query(
        to(
          `copy (select ${p.select.join(', ')} from ${p.source.qualified} where ${tenantFilter(p.source, tenantId)}) to stdout`,
        ),
      );
      const into = target.query(
        from(`copy ${p.target.qualified} (${p.columns.map(ident).join(', ')}) from stdin`),
      );
      await pipeline(out, into);
      streaming = false;
      copied[`${p.target.schema}.${p.target.name}`] = into.rowCount;
    }
    await target.query('commit');
    await source.query('commit');
  } catch (error) {
    if (streaming) throw new CopyInterruptedError(error);
    await target.query('rollback').catch(() => undefined);
    await source.query('rollback').catch(() => undefined);
    throw error;
  }
  return copied;
}

function keyMatch(pair: TablePair, alias: string, keys: string): string {
  const pk = pair.source.primaryKey.map(ident);
  return `(${pk.map((c) => `${alias}.${c}`).join(', ')}) in (select ${pk.map((c) => `k.${c}`).join(', ')} from ${keys} k)`;
}

/**
 * The last pass, inside the write freeze: for every captured key, the
 * source row as it is now is upserted on the target (parents first), and
 * keys the source no longer has are deleted there (children first). On a
 * row target an upsert never touches another tenant's row: the conflict
 * update is limited to the tenant's own rows and any row it could not write
 * fails the move. Returns the rows applied.
 */
export async function applyChanges(
  source: pg.Client,
  target: pg.Client,
  tenantId: string,
  pairs: readonly TablePair[],
  changes: ReadonlyMap<string, readonly Record<string, unknown>[]>,
): Promise<number> {
  let applied = 0;
  const present = new Map<TablePair, Record<string, unknown>[]>();
  for (const p of pairs) {
    const keys = changes.get(p.source.name);
    if (keys === undefined || keys.length === 0) continue;
    const { rows } = await source.query<{ r: Record<string, unknown> }>(
      `select to_jsonb(s) as r from (select ${p.select.map((e, i) => `${e} as ${ident(p.columns[i] as string)}`).join(', ')}
         from ${p.source.qualified} t
        where ${tenantFilter(p.source, tenantId, 't.')}
          and ${keyMatch(p, 't', `jsonb_populate_recordset(null::${p.source.qualified}, $1::jsonb)`)}) s`,
      [JSON.stringify(keys)],
    );
    present.set(
      p,
      rows.map((r) => r.r),
    );
  }
  await target.query('begin');
  try {
    await target.query('set constraints all deferred');
    for (const p of pairs) {
      const rows = present.get(p);
      if (rows === undefined || rows.length === 0) continue;
      const cols = p.columns.map(ident);
      const pk = p.target.primaryKey.map(ident);
      const rest = cols.filter((c) => !pk.includes(c));
      const guard =
        p.target.tenantColumn !== undefined
          ? ` where ${p.target.qualified}.${ident(p.target.tenantColumn)} = excluded.${ident(p.target.tenantColumn)}`
          : '';
      const onConflict =
        rest.length > 0
          ? `do update set ${rest.map((c) => `${c} = excluded.${c}`).join(', ')}${guard}`
          : 'do nothing';
      const result = await target.query(
        `insert into ${p.target.qualified} (${cols.join(', ')})
         select ${cols.join(', ')} from jsonb_populate_recordset(null::${p.target.qualified}, $1::jsonb)
         on conflict (${pk.join(', ')}) ${onConflict}`,
        [JSON.stringify(rows)],
      );
      if (rest.length > 0 && result.rowCount !== rows.length) {
        throw new Error(
          `${rows.length - (result.rowCount ?? 0)} changed rows of table ${p.target.name} collide with rows of another tenant on the target`,
        );
      }
      applied += rows.length;
    }
    for (const p of [...pairs].reverse()) {
      const keys = changes.get(p.source.name);
      if (keys === undefined || keys.length === 0) continue;
      const kept = new Set(
        (present.get(p) ?? []).map((r) => JSON.stringify(p.source.primaryKey.map((c) => r[c]))),
      );
      const gone = keys.filter(
        (k) => !kept.has(JSON.stringify(p.source.primaryKey.map((c) => k[c]))),
      );
      if (gone.length === 0) continue;
      const result = await target.query(
        `delete from ${p.target.qualified} t where ${tenantFilter(p.target, tenantId, 't.')}
           and ${keyMatch(p, 't', `jsonb_populate_recordset(null::${p.target.qualified}, $1::jsonb)`)}`,
        [JSON.stringify(gone)],
      );
      applied += result.rowCount ?? 0;
    }
    await target.query('commit');
  } catch (error) {
    await target.query('rollback').catch(() => undefined);
    throw error;
  }
  return applied;
}

/** Deletes the tenant's rows from the moved row-tier tables, children first (the capture let through). */
export async function deleteTenantRows(
  client: pg.Client,
  tenantId: string,
  tables: readonly MoveTable[],
): Promise<void> {
  await client.query('begin');
  try {
    await client.query(`select set_config('tenantry.move_bypass', $1, true)`, [tenantId]);
    await client.query('set constraints all deferred');
    for (const t of [...tables].reverse()) {
      await client.query(`delete from ${t.qualified} where ${tenantFilter(t, tenantId)}`);
    }
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}
