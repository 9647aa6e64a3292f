import type { Knex } from 'knex';
import type { TenantIsolationSettings } from '../../context/tenant-record';
import { TENANT_MOVES_TABLE } from '../../store/central-migrations';
import type {
  TenantMove,
  TenantMoveCheckpoint,
  TenantMoveStatus,
  TenantMoveStep,
} from './move-types';

interface MoveRow {
  id: string | number;
  tenant_id: string;
  source: TenantIsolationSettings;
  target: TenantIsolationSettings;
  keep_source: boolean;
  step: TenantMoveStep;
  status: TenantMoveStatus;
  checkpoint: TenantMoveCheckpoint | null;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

function toMove(row: MoveRow): TenantMove {
  return {
    id: Number(row.id),
    tenantId: row.tenant_id,
    source: row.source,
    target: row.target,
    keepSource: row.keep_source,
    step: row.step,
    status: row.status,
    checkpoint: row.checkpoint ?? {},
    error: row.error,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

/**
 * The durable step record of online moves (internal): one row per move in
 * the central `tenantry_tenant_moves`, written after every step so a move
 * whose process died resumes or rolls back from what is recorded there.
 */
export class MoveLedger {
  readonly #knex: Knex;

  constructor(knex: Knex) {
    this.#knex = knex;
  }

  /** The open move of a tenant (`running`, `failed` or `kept`), if any. */
  async open(tenantId: string): Promise<TenantMove | undefined> {
    const row = (await this.#knex(TENANT_MOVES_TABLE)
      .where({ tenant_id: tenantId })
      .whereIn('status', ['running', 'failed', 'kept'])
      .first()) as MoveRow | undefined;
    return row ? toMove(row) : undefined;
  }

  /** Every move of a tenant, newest first. */
  async history(tenantId: string): Promise<TenantMove[]> {
    const rows = (await this.#knex(TENANT_MOVES_TABLE)
      .where({ tenant_id: tenantId })
      .orderBy('id', 'desc')) as MoveRow[];
    return rows.map(toMove);
  }

  /** Records a new move; `undefined` when the tenant has an open move already. */
  async start(
    tenantId: string,
    source: TenantIsolationSettings,
    target: TenantIsolationSettings,
    keepSource: boolean,
  ): Promise<TenantMove | undefined> {
    const rows = (await this.#knex(TENANT_MOVES_TABLE)
      .insert({
        tenant_id: tenantId,
        source: JSON.stringify(source),
        target: JSON.stringify(target),
        keep_source: keepSource,
        step: 'started',
        status: 'running',
      })
      .onConflict(this.#knex.raw(`(tenant_id) where status in ('running','failed','kept')`))
      .ignore()
      .returning('*')) as MoveRow[];
    return rows[0] ? toMove(rows[0]) : undefined;
  }

  /** Records a completed step (and merges checkpoint data); clears the error. */
  async step(
    move: TenantMove,
    step: TenantMoveStep,
    checkpoint: TenantMoveCheckpoint = {},
    status: TenantMoveStatus = 'running',
  ): Promise<TenantMove> {
    const merged = { ...move.checkpoint, ...checkpoint };
    const finished = status === 'succeeded' || status === 'kept' || status === 'rolled_back';
    const rows = (await this.#knex(TENANT_MOVES_TABLE)
      .where({ id: move.id })
      .update({
        step,
        status,
        checkpoint: JSON.stringify(merged),
        error: null,
        updated_at: this.#knex.fn.now(),
        ...(finished ? { finished_at: this.#knex.fn.now() } : {}),
      })
      .returning('*')) as MoveRow[];
    return toMove(rows[0] as MoveRow);
  }

  /** Records a failure (the step stays the last one completed). */
  async fail(move: TenantMove, error: string, status: TenantMoveStatus = 'failed'): Promise<void> {
    await this.#knex(TENANT_MOVES_TABLE)
      .where({ id: move.id })
      .update({
        status,
        error: error.slice(0, 2000),
        updated_at: this.#knex.fn.now(),
        ...(status === 'rolled_back' ? { finished_at: this.#knex.fn.now() } : {}),
      });
  }
}
