import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';
import pg from 'pg';
import type {
  TenantIsolationSettings,
  TenantRecord,
  TenantTier,
} from '../../context/tenant-record';
import { TenantMoveError, TenantStateError, TenantNotFoundError } from '../../errors';
import {
  tenantDatabaseName,
  DEFAULT_DATABASE_PREFIX,
} from '../../isolation/database/tenant-database-name';
import { tenantSchemaName, DEFAULT_SCHEMA_PREFIX } from '../../isolation/schema/tenant-schema-name';
import type { TenancyLogger } from '../../logger';
import { clause } from '../../message-text';
import type { TenantPatch, TenantStore } from '../../store/tenant-store';
import { FleetMigrator } from '../fleet-migrator';
import type { TenantMigrationsOption } from '../migration-sources';
import type { TenantEvents } from '../tenant-events';
import { TenantPlacement, type TenantPlacementOptions } from '../tenant-placement';
import { capturedChanges, freezeWrites, installCapture, removeCapture } from './change-capture';
import { MoveLedger } from './move-ledger';
import {
  MOVE_STEPS,
  type MoveTenantOptions,
  type TenantMove,
  type TenantMoveStep,
} from './move-types';
import {
  closeSession,
  describeTables,
  openSession,
  type MoveTable,
  type TierStorage,
} from './storage-session';
import { verifyTables } from './table-checksum';
import {
  applyChanges,
  assertCopyStreams,
  clearTarget,
  copyTables,
  deleteTenantRows,
  pairTables,
  type TablePair,
} from './table-copy';

type CasStore = TenantStore & {
  updateIfStatus?(
    id: string,
    from: readonly TenantRecord['status'][],
    patch: TenantPatch,
  ): Promise<TenantRecord | undefined>;
};

/** What {@link TenantMover} needs from the manager (internal). */
export interface TenantMoverContext {
  readonly knex: Knex;
  readonly store: CasStore;
  readonly placement: TenantPlacementOptions;
  readonly migrations: TenantMigrationsOption | undefined;
  /** The tier of records without one (the application's `isolation.mode`). */
  readonly defaultTier: TenantTier;
  /** Row tier: the tables holding tenants' rows, with their tenant column. */
  readonly rowTables: () => Promise<{ schema: string; name: string; column: string }[]>;
  readonly rlsSetting: string;
  readonly events: TenantEvents;
  readonly logger: TenancyLogger;
  /** Invalidates the caches of every instance (local caches and the notifier). */
  readonly changed: (tenant: TenantRecord) => Promise<void>;
}

const DEFAULT_FREEZE_TIMEOUT_MS = 10_000;
const DEFAULT_DRAIN_MS = 1000;

function stepIndex(step: TenantMoveStep): number {
  return MOVE_STEPS.indexOf(step);
}

function describeError(error: unknown): string {
  return clause(error instanceof Error ? error.message : String(error));
}

/** How long a mover waits for another mover's lock (a killed one's goes with its connection) before refusing. */
const MOVER_LOCK_WAIT_MS = 5_000;

interface Sides {
  source: pg.Client;
  target: pg.Client;
  pairs: TablePair[];
  sourceTables: MoveTable[];
}

/**
 * Moves one tenant online between tiers and servers (internal; used by
 * `TenantManager.move()`). Each step is recorded in `tenantry_tenant_moves`
 * before the next begins, and every step can run again: a move whose
 * process died resumes from its last recorded step, or rolls back to the
 * source, which keeps serving until the switch.
 */
export class TenantMover {
  readonly #ctx: TenantMoverContext;
  readonly #ledger: MoveLedger;
  readonly #placements = new Map<TenantTier, TenantPlacement>();

  constructor(ctx: TenantMoverContext) {
    this.#ctx = ctx;
    this.#ledger = new MoveLedger(ctx.knex);
  }

  /** The open move of a tenant, if any. */
  openMove(id: string): Promise<TenantMove | undefined> {
    return this.#ledger.open(id);
  }

  /** Every move of a tenant, newest first. */
  history(id: string): Promise<TenantMove[]> {
    return this.#ledger.history(id);
  }

  /** Starts a move and runs it to the end (or rolls it back on failure). */
  async move(tenant: TenantRecord, options: MoveTenantOptions): Promise<TenantMove> {
    const target = this.#targetOf(tenant, options);
    const source = this.#isolationOf(tenant);
    if (tenant.status !== 'active') {
      throw new TenantStateError(
        `Cannot move tenant "${tenant.id}" because it is ${tenant.status}. Move only active tenants.`,
      );
    }
    assertCopyStreams();
    return this.#locked(tenant.id, async () => {
      if (await this.#ledger.open(tenant.id)) {
        throw new TenantStateError(
          `Cannot move tenant "${tenant.id}" because an earlier move of it is not finished. Resume it, roll it back or clean it up first.`,
        );
      }
      // Storage already at the target is not ours to fill, nor to drop on rollback.
      const targetTier = target.tier as TenantTier;
      if (
        targetTier !== 'row' &&
        (await this.#placementFor(targetTier).storageExists(this.#as(tenant, target)))
      ) {
        throw new TenantStateError(
          `Cannot move tenant "${tenant.id}" because its target ${this.#placementFor(targetTier).storageName(this.#as(tenant, target))} exists already. Drop it or choose another target.`,
        );
      }
      const move = await this.#ledger.start(tenant.id, source, target, options.keepSource === true);
      if (move === undefined) {
        throw new TenantStateError(
          `Cannot move tenant "${tenant.id}" because another move of it has just started. Wait for it.`,
        );
      }
      await this.#emit('tenant.move_started', tenant, move);
      return this.#run(
        tenant.id,
        move,
        options.freezeTimeoutMs ?? DEFAULT_FREEZE_TIMEOUT_MS,
        options.drainMs ?? DEFAULT_DRAIN_MS,
      );
    });
  }

  /** Runs the steps after the last recorded one of the tenant's open move. */
  async resume(
    id: string,
    freezeTimeoutMs = DEFAULT_FREEZE_TIMEOUT_MS,
    drainMs = DEFAULT_DRAIN_MS,
  ): Promise<TenantMove> {
    assertCopyStreams();
    return this.#locked(id, async () => {
      const move = await this.#requireOpen(id);
      if (move.status === 'kept') {
        throw new TenantStateError(
          `Cannot resume the move of tenant "${id}" because it is finished and only keeps its source. Clean it up.`,
        );
      }
      return this.#run(id, move, freezeTimeoutMs, drainMs);
    });
  }

  /** Undoes the tenant's open move (before its switch): the tenant stays on the source. */
  async rollback(id: string): Promise<TenantMove> {
    return this.#locked(id, async () => {
      const move = await this.#requireOpen(id);
      if (stepIndex(move.step) >= stepIndex('switched')) {
        throw new TenantStateError(
          `Cannot roll back the move of tenant "${id}" because it is switched to its target already. Resume it to finish, or move the tenant back.`,
        );
      }
      await this.#rollback(id, move);
      const after = (await this.#ledger.history(id))[0] as TenantMove;
      return after;
    });
  }

  /** Removes the source a move kept (`keepSource`), then drops its capture. */
  async cleanup(id: string): Promise<TenantMove> {
    return this.#locked(id, async () => {
      const move = await this.#requireOpen(id);
      if (move.status !== 'kept') {
        throw new TenantStateError(
          `Cannot clean up the move of tenant "${id}" because it is ${move.status} at step ${move.step}, not kept. Resume or roll it back.`,
        );
      }
      const tenant = await this.#record(id);
      const done = await this.#removeSource(tenant, move);
      await this.#emit('tenant.move_succeeded', tenant, done);
      return done;
    });
  }

  async #requireOpen(id: string): Promise<TenantMove> {
    const move = await this.#ledger.open(id);
    if (move === undefined) {
      throw new TenantNotFoundError(
        `Cannot find an open move of tenant "${id}". Check the tenant id.`,
      );
    }
    return move;
  }

  async #record(id: string): Promise<TenantRecord> {
    const tenant = await this.#ctx.store.findById(id);
    if (!tenant) throw new TenantNotFoundError(`Cannot find tenant "${id}". Check the tenant id.`);
    return tenant;
  }

  // One mover per tenant at a time, across processes: a session advisory
  // lock on the central database, released by PostgreSQL when the process dies.
  async #locked<T>(id: string, work: () => Promise<T>): Promise<T> {
    const client = new pg.Client({
      ...(await this.#placementFor('row').connectionConfig(this.#as({ id } as TenantRecord, {}))),
    } as pg.ClientConfig);
    client.on('error', () => undefined);
    await client.connect();
    try {
      // A mover killed a moment ago still holds the lock until PostgreSQL notices its connection is
      // gone (seen in CI under load: a resume right after a kill -9 was refused): wait a little.
      const deadline = Date.now() + MOVER_LOCK_WAIT_MS;
      let ok = false;
      for (;;) {
        const { rows } = await client.query<{ ok: boolean }>(
          `select pg_try_advisory_lock(hashtextextended('tenantry.mover:' || $1, 0)) as ok`,
          [id],
        );
        ok = rows[0]?.ok === true;
        if (ok || Date.now() >= deadline) break;
        await sleep(100);
      }
      if (!ok) {
        throw new TenantStateError(
          `Cannot work on the move of tenant "${id}" because another process is working on it. Wait for it to finish.`,
        );
      }
      return await work();
    } finally {
      await closeSession(client);
    }
  }

  async #run(
    id: string,
    initial: TenantMove,
    freezeTimeoutMs: number,
    drainMs: number,
  ): Promise<TenantMove> {
    let move = initial;
    let tenant = await this.#record(id);
    let sides: Sides | undefined;
    const source = this.#storage(tenant, move.source);
    const target = this.#storage(tenant, move.target);
    const checkpoint = async (step: TenantMoveStep, data: TenantMove['checkpoint'] = {}) => {
      move = await this.#ledger.step(move, step, data);
      this.#ctx.logger.info('tenant move step', { tenantId: id, step, moveId: move.id });
      await this.#emit('tenant.move_checkpoint', tenant, move);
    };
    const at = (step: TenantMoveStep) => stepIndex(move.step) < stepIndex(step);
    try {
      if (at('target_created')) {
        const created = await this.#createTarget(tenant, move);
        await checkpoint('target_created', { createdTarget: created });
      }
      sides = await this.#open(tenant, source, target);
      if (at('capture_installed')) {
        await installCapture(sides.source, id, sides.sourceTables, freezeTimeoutMs);
        await checkpoint('capture_installed');
      }
      if (at('copied')) {
        const copied = await copyTables(sides.source, sides.target, id, sides.pairs);
        await checkpoint('copied', { copied });
      }
      if (at('frozen')) {
        tenant = await this.#setStatus(
          tenant,
          ['active', 'moving'],
          'moving',
          `moving to the ${move.target.tier ?? 'row'} tier`,
        );
        await freezeWrites(sides.source, id, freezeTimeoutMs);
        await checkpoint('frozen', { frozenAt: new Date().toISOString() });
      }
      if (at('applied')) {
        const changes = await capturedChanges(sides.source, id);
        const applied = await applyChanges(sides.source, sides.target, id, sides.pairs, changes);
        await checkpoint('applied', { applied });
      }
      if (at('verified')) {
        const verified = await verifyTables(sides.source, sides.target, id, sides.pairs);
        await checkpoint('verified', { verified });
      }
      if (at('switched')) {
        tenant = await this.#switch(tenant, move);
        const frozenAt = move.checkpoint.frozenAt;
        const freezeMs = frozenAt !== undefined ? Date.now() - Date.parse(frozenAt) : undefined;
        move = await this.#ledger.step(
          move,
          'switched',
          freezeMs !== undefined ? { freezeMs } : {},
          move.keepSource ? 'kept' : 'running',
        );
        await this.#emit('tenant.move_checkpoint', tenant, move);
      }
    } catch (error) {
      await closeSides(sides);
      sides = undefined;
      const reason = describeError(error);
      this.#ctx.logger.warn('tenant move failed', { tenantId: id, step: move.step, error: reason });
      if (stepIndex(move.step) < stepIndex('switched')) {
        await this.#ledger.fail(move, reason);
        const rolledBack = await this.#rollback(id, move).then(
          () => true,
          () => false,
        );
        await this.#emit('tenant.move_failed', tenant, move, reason, rolledBack);
        throw new TenantMoveError(
          `Cannot move tenant "${id}" because ${reason}. The tenant stays on its source${rolledBack ? '' : '; roll the move back once the target is reachable (tenantry tenants move ' + id + ' --rollback)'}.`,
          { cause: error },
        );
      }
      await this.#ledger.fail(move, reason);
      await this.#emit('tenant.move_failed', tenant, move, reason, false);
      throw new TenantMoveError(
        `Cannot finish the move of tenant "${id}" because ${reason}. The tenant is served from its target; resume the move to remove the source.`,
        { cause: error },
      );
    } finally {
      await closeSides(sides);
    }
    if (move.status === 'kept') {
      await this.#emit('tenant.move_succeeded', tenant, move);
      return move;
    }
    try {
      if (drainMs > 0) await sleep(drainMs);
      move = await this.#removeSource(tenant, move);
    } catch (error) {
      const reason = describeError(error);
      await this.#ledger.fail(move, reason);
      await this.#emit('tenant.move_failed', tenant, move, reason, false);
      throw new TenantMoveError(
        `Cannot remove the source of tenant "${id}" after its move because ${reason}. The tenant is served from its target; resume the move to retry.`,
        { cause: error },
      );
    }
    await this.#emit('tenant.move_succeeded', tenant, move);
    return move;
  }

  async #createTarget(tenant: TenantRecord, move: TenantMove): Promise<boolean> {
    const tier = move.target.tier ?? 'row';
    const record = this.#as(tenant, move.target);
    if (tier === 'row') return false;
    const placement = this.#placementFor(tier);
    const created = await placement.ensureStorage(record);
    if (this.#ctx.migrations !== undefined) {
      const fleet = new FleetMigrator(this.#ctx.knex, {
        ...this.#ctx.placement,
        mode: tier,
        store: this.#ctx.store,
        migrations: this.#ctx.migrations,
      });
      await fleet.migrateTenant(record);
    }
    return created;
  }

  async #open(tenant: TenantRecord, source: TierStorage, target: TierStorage): Promise<Sides> {
    const src = await openSession(await this.#resolve(source, tenant));
    let tgt: pg.Client | undefined;
    try {
      tgt = await openSession(await this.#resolve(target, tenant));
      const sourceTables = await describeTables(src, source);
      const targetTables = await describeTables(tgt, target);
      const pairs = await pairTables(src, tenant.id, sourceTables, targetTables);
      return { source: src, target: tgt, pairs, sourceTables: pairs.map((p) => p.source) };
    } catch (error) {
      await closeSession(src);
      await closeSession(tgt);
      throw error;
    }
  }

  async #resolve(storage: TierStorage, tenant: TenantRecord): Promise<TierStorage> {
    const connection = await this.#placementFor(storage.tier).connectionConfig(
      this.#as(tenant, storage.tier === 'database' ? (storage.isolation ?? {}) : {}),
    );
    return { ...storage, connection };
  }

  #storage(tenant: TenantRecord, isolation: TenantIsolationSettings): TierStorage {
    const tier = isolation.tier ?? this.#ctx.defaultTier;
    const base = { tier, tenantId: tenant.id, connection: {}, isolation };
    if (tier === 'row') {
      return {
        ...base,
        label: 'the shared tables',
        schema: undefined,
        rowTables: this.#ctx.rowTables,
        rlsSetting: this.#ctx.rlsSetting,
      };
    }
    if (tier === 'schema') {
      const schema = isolation.schema ?? tenantSchemaName({ id: tenant.id }, this.#schemaPrefix);
      return { ...base, label: `schema "${schema}"`, schema };
    }
    return {
      ...base,
      label: `database "${isolation.database?.database ?? tenant.id}"`,
      schema: 'public',
    };
  }

  // Rollback: the tenant writable on the source again, the capture gone, the target dropped.
  async #rollback(id: string, move: TenantMove): Promise<void> {
    let tenant = await this.#record(id);
    const source = await this.#resolve(this.#storage(tenant, move.source), tenant);
    if (tenant.status === 'moving') {
      tenant = await this.#setStatus(tenant, ['moving'], 'active', null);
    }
    const src = await openSession(source);
    try {
      const tables = await describeTables(src, source);
      await removeCapture(src, id, tables);
    } finally {
      await closeSession(src);
    }
    try {
      await this.#dropTarget(tenant, move);
    } catch (error) {
      const reason = describeError(error);
      await this.#ledger.fail(
        move,
        `rolled back to the source, but the target could not be dropped: ${reason}`,
      );
      throw error;
    }
    await this.#ledger.fail(move, move.error ?? 'rolled back', 'rolled_back');
  }

  async #dropTarget(tenant: TenantRecord, move: TenantMove): Promise<void> {
    const tier = move.target.tier ?? 'row';
    if (tier !== 'row') {
      await this.#placementFor(tier).dropStorage(this.#as(tenant, move.target));
      return;
    }
    const target = await this.#resolve(this.#storage(tenant, move.target), tenant);
    const client = await openSession(target);
    try {
      const tables = await describeTables(client, target);
      await clearTarget(
        client,
        tenant.id,
        tables.filter((t) => t.tenantColumn !== undefined).map((t) => ({ target: t }) as TablePair),
      );
    } finally {
      await closeSession(client);
    }
  }

  async #removeSource(tenant: TenantRecord, move: TenantMove): Promise<TenantMove> {
    const tier = move.source.tier ?? this.#ctx.defaultTier;
    const source = await this.#resolve(this.#storage(tenant, move.source), tenant);
    if (tier === 'row') {
      const client = await openSession(source);
      try {
        const targetTables = new Set(
          Object.keys(move.checkpoint.verified ?? {}).map((t) => t.split('.').pop()),
        );
        const tables = (await describeTables(client, source)).filter((t) =>
          targetTables.has(t.name),
        );
        await deleteTenantRows(client, tenant.id, tables);
        await removeCapture(client, tenant.id, tables);
      } finally {
        await closeSession(client);
      }
    } else {
      const record = this.#as(tenant, move.source);
      await this.#placementFor(tier).dropStorage(record);
      if (tier === 'schema') {
        // The capture's state lives in the central database, beside the dropped schema.
        const client = await openSession(source);
        try {
          await removeCapture(client, tenant.id, []);
        } finally {
          await closeSession(client);
        }
      }
    }
    return this.#ledger.step(move, 'source_removed', {}, 'succeeded');
  }

  async #switch(tenant: TenantRecord, move: TenantMove): Promise<TenantRecord> {
    const now = await this.#record(tenant.id);
    if (now.status === 'active' && JSON.stringify(now.isolation) === JSON.stringify(move.target))
      return now;
    return this.#setStatus(now, ['moving'], 'active', null, move.target);
  }

  async #setStatus(
    tenant: TenantRecord,
    from: readonly TenantRecord['status'][],
    to: TenantRecord['status'],
    reason: string | null,
    isolation?: TenantIsolationSettings,
  ): Promise<TenantRecord> {
    const patch: TenantPatch = {
      status: to,
      statusReason: reason,
      ...(isolation !== undefined ? { isolation } : {}),
    };
    let after: TenantRecord | undefined;
    if (this.#ctx.store.updateIfStatus) {
      after = await this.#ctx.store.updateIfStatus(tenant.id, from, patch);
    } else {
      const now = await this.#record(tenant.id);
      if (from.includes(now.status)) after = await this.#ctx.store.update(tenant.id, patch);
    }
    if (!after) {
      const now = await this.#record(tenant.id);
      throw new TenantStateError(
        `Cannot set tenant "${tenant.id}" ${to} for its move because it is ${now.status} now. Resume or roll back the move once it is active.`,
      );
    }
    await this.#ctx.changed(after);
    return after;
  }

  #isolationOf(tenant: TenantRecord): TenantIsolationSettings {
    return { ...tenant.isolation, tier: tenant.isolation.tier ?? this.#ctx.defaultTier };
  }

  #targetOf(tenant: TenantRecord, options: MoveTenantOptions): TenantIsolationSettings {
    const tier = options.tier;
    for (const key of ['freezeTimeoutMs', 'drainMs'] as const) {
      const value = options[key];
      if (
        value !== undefined &&
        !(typeof value === 'number' && Number.isFinite(value) && value >= 0)
      ) {
        throw new TypeError(
          `Cannot move tenant "${tenant.id}" with ${key}=${String(value)} because it is not a number of milliseconds >= 0. Pass a number or leave it out.`,
        );
      }
    }
    if (!['row', 'schema', 'database'].includes(tier)) {
      throw new TypeError(
        `Cannot move tenant "${tenant.id}" to tier ${JSON.stringify(tier)} because it is unknown. Use "row", "schema" or "database".`,
      );
    }
    if (options.server !== undefined && tier !== 'database') {
      throw new TypeError(
        `Cannot move tenant "${tenant.id}" to server "${options.server}" on the ${tier} tier: only a database target has a server. Leave --server out or use --tier database.`,
      );
    }
    const from = this.#isolationOf(tenant);
    const region = tenant.isolation.region !== undefined ? { region: tenant.isolation.region } : {};
    let target: TenantIsolationSettings;
    if (tier === 'row') target = { ...region, tier };
    else if (tier === 'schema')
      target = { ...region, tier, schema: tenantSchemaName({ id: tenant.id }, this.#schemaPrefix) };
    else {
      target = {
        ...region,
        tier,
        database: {
          ...(options.server !== undefined ? { server: options.server } : {}),
          database: tenantDatabaseName(tenant.id, this.#databasePrefix),
        },
      };
      // Checks the server against the placement policy before anything is created.
      if (!this.#placementFor('database').reachable(this.#as(tenant, target))) {
        throw new TypeError(
          `Cannot move tenant "${tenant.id}" to server "${options.server ?? ''}" because it is not a configured server (database.servers). Configure it or pick another.`,
        );
      }
    }
    if (
      from.tier === tier &&
      (tier !== 'database' || (from.database?.server ?? '') === (options.server ?? ''))
    ) {
      throw new TenantStateError(
        `Cannot move tenant "${tenant.id}" to the ${tier} tier${options.server !== undefined ? ` on ${options.server}` : ''} because it is there already. Pick another tier or server.`,
      );
    }
    // Data residency: a pinned tenant never moves to storage outside its region (409, nothing recorded).
    this.#placementFor(tier).assertResidency(this.#as(tenant, target));
    return target;
  }

  get #schemaPrefix(): string {
    return this.#ctx.placement.schemaPrefix ?? DEFAULT_SCHEMA_PREFIX;
  }

  get #databasePrefix(): string {
    return this.#ctx.placement.databasePrefix ?? DEFAULT_DATABASE_PREFIX;
  }

  #as(tenant: TenantRecord, isolation: TenantIsolationSettings): TenantRecord {
    return { ...tenant, isolation };
  }

  #placementFor(tier: TenantTier): TenantPlacement {
    let placement = this.#placements.get(tier);
    if (placement === undefined) {
      placement = new TenantPlacement(this.#ctx.knex, { ...this.#ctx.placement, mode: tier });
      this.#placements.set(tier, placement);
    }
    return placement;
  }

  async #emit(
    event:
      | 'tenant.move_started'
      | 'tenant.move_checkpoint'
      | 'tenant.move_succeeded'
      | 'tenant.move_failed',
    tenant: TenantRecord,
    move: TenantMove,
    error?: string,
    rolledBack?: boolean,
  ): Promise<void> {
    await this.#ctx.events.emit(event, {
      tenant,
      move,
      step: move.step,
      at: new Date(),
      ...(error !== undefined ? { error } : {}),
      ...(rolledBack !== undefined ? { rolledBack } : {}),
    });
  }
}

async function closeSides(sides: Sides | undefined): Promise<void> {
  if (sides === undefined) return;
  await closeSession(sides.source);
  await closeSession(sides.target);
}
