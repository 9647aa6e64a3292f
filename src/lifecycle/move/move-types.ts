import type { TenantIsolationSettings, TenantTier } from '../../context/tenant-record';

/**
 * The recorded steps of an online move, in order; a move row names the last
 * one completed. `--resume` runs the steps after it, `--rollback` undoes
 * them (allowed until `switched`).
 */
export const MOVE_STEPS = [
  'started',
  'target_created',
  'capture_installed',
  'copied',
  'frozen',
  'applied',
  'verified',
  'switched',
  'source_removed',
] as const;

/** One recorded step of an online move (see {@link MOVE_STEPS}). */
export type TenantMoveStep = (typeof MOVE_STEPS)[number];

/**
 * Where a move stands: `running` (in progress, or its process died: resume
 * or roll back), `failed` (stopped with an error; the tenant is served from
 * the source, a rollback may have storage left to drop), `kept` (switched,
 * the source kept until `--cleanup`), `succeeded`, `rolled_back`.
 */
export type TenantMoveStatus = 'running' | 'failed' | 'kept' | 'succeeded' | 'rolled_back';

/** Options of `TenantManager.move()`. */
export interface MoveTenantOptions {
  /** The tier to move to. Required. */
  readonly tier: TenantTier;
  /**
   * The named server (`database.servers`) of a `database` target. Default:
   * the server of the application's base connection.
   */
  readonly server?: string | undefined;
  /**
   * Keep the source data (still write-frozen at the database) after the
   * switch, until `cleanupMove()` / `tenantry tenants move <id> --cleanup`.
   * Default: `false` (removed once verified).
   */
  readonly keepSource?: boolean | undefined;
  /**
   * How long the write freeze waits for writes already in flight before it
   * gives up (the move then rolls back). Default: `10000`.
   */
  readonly freezeTimeoutMs?: number | undefined;
  /**
   * How long the source stays (write-frozen) after the switch before it is
   * removed, so an instance still routing by a stale cached record gets a
   * 503 for a write instead of writing to a source about to go. The
   * notifier invalidates caches within milliseconds; this covers its
   * delivery. Default: `1000`.
   */
  readonly drainMs?: number | undefined;
}

/** What the step record of a move keeps between steps (and across a restart). */
export interface TenantMoveCheckpoint {
  /** Rows copied by the first pass, per table (`schema.table`). */
  readonly copied?: Readonly<Record<string, number>> | undefined;
  /** Changed rows applied in the freeze. */
  readonly applied?: number | undefined;
  /** Rows per table found equal on both sides by the verification. */
  readonly verified?: Readonly<Record<string, number>> | undefined;
  /** When the write freeze began (ISO 8601). */
  readonly frozenAt?: string | undefined;
  /** How long the write freeze lasted, in milliseconds (set at the switch). */
  readonly freezeMs?: number | undefined;
  /** Whether the target storage (schema/database) was created by this move. */
  readonly createdTarget?: boolean | undefined;
}

/**
 * One online move as the central table `tenantry_tenant_moves` records it.
 *
 * @example
 * ```ts
 * const move: TenantMove = await tenants.move('acme', { tier: 'database', server: 'eu-1' });
 * console.log(move.status, move.checkpoint.freezeMs);
 * ```
 */
export interface TenantMove {
  /** The move's id. */
  readonly id: number;
  /** The tenant moved. */
  readonly tenantId: string;
  /** The tenant's isolation settings before the move (tier made explicit). */
  readonly source: TenantIsolationSettings;
  /** Its isolation settings after the move. */
  readonly target: TenantIsolationSettings;
  /** Whether the source is kept until cleanup. */
  readonly keepSource: boolean;
  /** The last step completed. */
  readonly step: TenantMoveStep;
  /** Where the move stands. */
  readonly status: TenantMoveStatus;
  /** Data kept between steps. */
  readonly checkpoint: TenantMoveCheckpoint;
  /** The last error, if any. */
  readonly error: string | null;
  /** When the move started. */
  readonly startedAt: Date;
  /** When the move finished (succeeded, kept, rolled back), if it did. */
  readonly finishedAt: Date | null;
}
