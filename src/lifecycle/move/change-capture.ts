import type pg from 'pg';
import { TENANT_MOVING_SQLSTATE } from '../../errors';
import { ident, literal, type MoveTable } from './storage-session';

/**
 * Change capture of an online move (internal). On the source storage, in a
 * schema of its own (`tenantry_move`, outside every search path so no tenant
 * table, purge or doctor sees it):
 *
 * - `state` holds a row per tenant being moved (`frozen` once the write
 *   freeze began);
 * - `changes` gets the primary key of every row of that tenant inserted,
 *   updated or deleted, written by an AFTER row trigger on each of its
 *   tables (the shared tables on the row tier, filtered by the tenant
 *   column; its own tables on the schema and database tiers);
 * - the same trigger refuses writes of a frozen tenant (SQLSTATE `T1M01`,
 *   answered 503 `TENANT_UNAVAILABLE` with `Retry-After`): requests already
 *   in flight when the freeze began would otherwise write to the source after
 *   the last pass, and their acknowledged writes would be lost;
 * - a BEFORE TRUNCATE statement trigger refuses a TRUNCATE of a table holding
 *   a tenant being moved (same SQLSTATE), which no row trigger would see.
 *
 * Each write of a moving tenant holds a shared transaction-level advisory
 * lock; the freeze takes it exclusive, so it waits for every writing
 * transaction in flight to commit (their changes are then in `changes`),
 * and writes that arrive while it waits are refused at once (the lock
 * manager queues fairly: no freeze starves). The `for share` read of the
 * state row makes a REPEATABLE READ writer whose snapshot predates the
 * freeze fail with a serialization error instead of writing unseen.
 */
export const CAPTURE_SCHEMA = 'tenantry_move';

const S = ident(CAPTURE_SCHEMA);
const TRIGGER = 'tenantry_move_capture';
const TRUNCATE_TRIGGER = 'tenantry_move_truncate';
/** How long the capture's removal waits for one lock before it gives way to writers and retries. */
const REMOVE_LOCK_TIMEOUT_MS = 200;
/** Attempts of the capture's removal before its error is reported (the move can be resumed). */
const REMOVE_ATTEMPTS = 100;

const SETUP = `
create schema if not exists ${S};
create table if not exists ${S}.state (tenant text primary key, frozen boolean not null default false);
create table if not exists ${S}.changes (
  id bigserial primary key, tenant text not null, tbl text not null, pk jsonb not null);
create index if not exists changes_tenant_tbl_idx on ${S}.changes (tenant, tbl);
create or replace function ${S}.capture() returns trigger language plpgsql as $fn$
declare
  images jsonb[] := '{}';
  image jsonb;
  tid text;
  is_frozen boolean;
  key jsonb;
begin
  if TG_OP in ('UPDATE', 'DELETE') then images := images || to_jsonb(OLD); end if;
  if TG_OP in ('UPDATE', 'INSERT') then images := images || to_jsonb(NEW); end if;
  foreach image in array images loop
    tid := case when TG_ARGV[0] = 'column' then image ->> TG_ARGV[1] else TG_ARGV[1] end;
    continue when tid is null;
    -- The mover's own removal of the source rows.
    continue when current_setting('tenantry.move_bypass', true) = tid;
    perform 1 from ${S}.state s where s.tenant = tid;
    continue when not found;
    if not pg_try_advisory_xact_lock_shared(hashtextextended('tenantry.move:' || tid, 0)) then
      raise exception using errcode = '${TENANT_MOVING_SQLSTATE}',
        message = format('Cannot write rows of tenant "%s" because it is being moved (write freeze). Retry in a moment.', tid);
    end if;
    select s.frozen into is_frozen from ${S}.state s where s.tenant = tid for share;
    continue when not found;
    if is_frozen then
      raise exception using errcode = '${TENANT_MOVING_SQLSTATE}',
        message = format('Cannot write rows of tenant "%s" because it is being moved (write freeze). Retry in a moment.', tid);
    end if;
    select jsonb_object_agg(c, image -> c) into key from unnest(TG_ARGV[2:]) as c;
    insert into ${S}.changes (tenant, tbl, pk) values (tid, TG_TABLE_NAME, key);
  end loop;
  return null;
end
$fn$;
create or replace function ${S}.refuse_truncate() returns trigger language plpgsql as $fn$
declare
  moving text;
begin
  -- A TRUNCATE fires no row trigger, so the capture could not record it:
  -- refused while a tenant stored in the table is being moved.
  select string_agg(s.tenant, ', ') into moving from ${S}.state s
   where TG_ARGV[0] = 'column' or s.tenant = TG_ARGV[1];
  if moving is not null then
    raise exception using errcode = '${TENANT_MOVING_SQLSTATE}',
      message = format('Cannot truncate table %s because tenant(s) %s stored in it are being moved. Retry once the move is done.', TG_TABLE_NAME, moving);
  end if;
  return null;
end
$fn$;`;

async function inTransaction<T>(client: pg.Client, work: () => Promise<T>): Promise<T> {
  await client.query('begin');
  try {
    const result = await work();
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}

/**
 * Installs the capture for `tenantId` on `tables` in one transaction. Each
 * table is locked first (SHARE ROW EXCLUSIVE waits for the writers in
 * flight), so every write committed after this returns is captured.
 */
export async function installCapture(
  client: pg.Client,
  tenantId: string,
  tables: readonly MoveTable[],
  lockTimeoutMs: number,
): Promise<void> {
  await inTransaction(client, async () => {
    await client.query(`set local lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    // One mover at a time creates the shared objects (concurrent moves of row tenants).
    await client.query(`select pg_advisory_xact_lock(hashtextextended('tenantry.move.setup', 0))`);
    await client.query(SETUP);
    await client.query(`insert into ${S}.state (tenant) values ($1) on conflict do nothing`, [
      tenantId,
    ]);
    for (const t of tables) {
      const args =
        t.tenantColumn !== undefined
          ? ['column', t.tenantColumn, ...t.primaryKey]
          : ['fixed', tenantId, ...t.primaryKey];
      await client.query(`lock table ${t.qualified} in share row exclusive mode`);
      await client.query(`drop trigger if exists ${TRIGGER} on ${t.qualified}`);
      await client.query(
        `create trigger ${TRIGGER} after insert or update or delete on ${t.qualified}
           for each row execute function ${S}.capture(${args.map(literal).join(', ')})`,
      );
      await client.query(`drop trigger if exists ${TRUNCATE_TRIGGER} on ${t.qualified}`);
      await client.query(
        `create trigger ${TRUNCATE_TRIGGER} before truncate on ${t.qualified}
           for each statement execute function ${S}.refuse_truncate(${args.slice(0, 2).map(literal).join(', ')})`,
      );
    }
  });
}

/**
 * The write freeze at the database: waits (up to `timeoutMs`) for the
 * tenant's writing transactions in flight, then marks it frozen.
 */
export async function freezeWrites(
  client: pg.Client,
  tenantId: string,
  timeoutMs: number,
): Promise<void> {
  await inTransaction(client, async () => {
    await client.query(`set local lock_timeout = ${Math.max(1, Math.floor(timeoutMs))}`);
    await client.query(
      `select pg_advisory_xact_lock(hashtextextended('tenantry.move:' || $1, 0))`,
      [tenantId],
    );
    const { rowCount } = await client.query(
      `update ${S}.state set frozen = true where tenant = $1`,
      [tenantId],
    );
    if (rowCount !== 1) throw new Error('the change capture of the source is missing');
  });
}

/** The captured primary keys, per table name. */
export async function capturedChanges(
  client: pg.Client,
  tenantId: string,
): Promise<Map<string, Record<string, unknown>[]>> {
  const { rows } = await client.query<{ tbl: string; pks: Record<string, unknown>[] }>(
    `select tbl, jsonb_agg(distinct pk) as pks from ${S}.changes where tenant = $1 group by tbl`,
    [tenantId],
  );
  return new Map(rows.map((r) => [r.tbl, r.pks]));
}

/** Whether the capture schema exists on this storage. */
async function captureExists(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query(`select 1 from pg_namespace where nspname = $1`, [
    CAPTURE_SCHEMA,
  ]);
  return rows.length > 0;
}

/**
 * Removes the capture of `tenantId` (unfreezing it): its state and changes,
 * and, once no other move uses this storage, the triggers and the schema.
 * Idempotent.
 */
export async function removeCapture(
  client: pg.Client,
  tenantId: string,
  tables: readonly MoveTable[],
  lockTimeoutMs = REMOVE_LOCK_TIMEOUT_MS,
): Promise<void> {
  if (!(await captureExists(client))) return;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await inTransaction(client, async () => {
        // A writer locks its table first and reaches the capture's state from the trigger; dropping the
        // capture locks the state and then each table. Taking the tables first (as installCapture does)
        // keeps that order, and a lock timeout below deadlock_timeout (1 s) makes the remover, not a
        // writer, give way when a writer's transaction holds the tables in another order: it retries.
        await client.query(`set local lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
        for (const t of tables) {
          await client.query(`lock table ${t.qualified} in share row exclusive mode`);
        }
        await client.query(
          `select pg_advisory_xact_lock(hashtextextended('tenantry.move.setup', 0))`,
        );
        await client.query(`delete from ${S}.state where tenant = $1`, [tenantId]);
        await client.query(`delete from ${S}.changes where tenant = $1`, [tenantId]);
        const { rows } = await client.query(`select 1 from ${S}.state limit 1`);
        if (rows.length === 0) {
          // Dropping the function drops every trigger calling it.
          await client.query(`drop schema ${S} cascade`);
        } else {
          for (const t of tables) {
            if (t.tenantColumn === undefined) {
              await client.query(`drop trigger if exists ${TRIGGER} on ${t.qualified}`);
              await client.query(`drop trigger if exists ${TRUNCATE_TRIGGER} on ${t.qualified}`);
            }
          }
        }
      });
      return;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      // 55P03 lock_not_available (our lock timeout), 40P01 deadlock_detected.
      if ((code !== '55P03' && code !== '40P01') || attempt >= REMOVE_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * attempt)));
    }
  }
}
