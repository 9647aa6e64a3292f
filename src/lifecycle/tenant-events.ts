import type { TenantRecord, TenantStatus } from '../context/tenant-record';
import { silentLogger, type TenancyLogger } from '../logger';
import type { TenantMove, TenantMoveStep } from './move/move-types';

/** What every lifecycle event carries. */
export interface TenantLifecycleEvent {
  /** The tenant after the change (before removal for `tenant.deleted` with purge). */
  readonly tenant: TenantRecord;
  /** The status before the change, when the status changed. */
  readonly previousStatus?: TenantStatus | undefined;
  /** When it happened. */
  readonly at: Date;
}

/** `tenant.config_changed`: which keys were set or removed. */
export interface TenantConfigChangedEvent extends TenantLifecycleEvent {
  /** Keys whose value changed (set, replaced or removed). */
  readonly keys: readonly string[];
}

/** `tenant.deleted`: whether the data (schema/database and record) was removed too. */
export interface TenantDeletedEvent extends TenantLifecycleEvent {
  readonly purged: boolean;
}

/** `tenant.move_*`: an online move, at the step it reached. */
export interface TenantMoveEvent extends TenantLifecycleEvent {
  /** The move as recorded. */
  readonly move: TenantMove;
  /** The last step completed. */
  readonly step: TenantMoveStep;
  /** Why it failed (`tenant.move_failed`). */
  readonly error?: string | undefined;
  /** Whether a failed move was rolled back to the source (`tenant.move_failed`). */
  readonly rolledBack?: boolean | undefined;
}

/** Every lifecycle event and its payload type. */
export interface TenantEventMap {
  'tenant.created': TenantLifecycleEvent;
  'tenant.provisioned': TenantLifecycleEvent;
  'tenant.activated': TenantLifecycleEvent;
  'tenant.suspended': TenantLifecycleEvent;
  'tenant.archived': TenantLifecycleEvent;
  'tenant.deleted': TenantDeletedEvent;
  'tenant.config_changed': TenantConfigChangedEvent;
  'tenant.move_started': TenantMoveEvent;
  'tenant.move_checkpoint': TenantMoveEvent;
  'tenant.move_succeeded': TenantMoveEvent;
  'tenant.move_failed': TenantMoveEvent;
}

/** A lifecycle event name. */
export type TenantEventName = keyof TenantEventMap;

/** A listener of one event; may be async (its rejection is logged, never rethrown). */
export type TenantEventListener<E extends TenantEventName> = (
  event: TenantEventMap[E],
) => void | Promise<void>;

/**
 * A typed publish/subscribe hub for lifecycle events. Listeners run after
 * the change is committed; a listener that throws or rejects is logged and
 * never undoes the change nor stops the other listeners.
 *
 * @example
 * ```ts
 * const stop = manager.events.subscribe('tenant.suspended', ({ tenant }) => mailer.notify(tenant.id));
 * stop();
 * ```
 */
export class TenantEvents {
  readonly #listeners = new Map<TenantEventName, Set<TenantEventListener<TenantEventName>>>();
  readonly #logger: TenancyLogger;

  constructor(logger: TenancyLogger = silentLogger) {
    this.#logger = logger;
  }

  /** Subscribes to one event; returns the function that unsubscribes. */
  subscribe<E extends TenantEventName>(event: E, listener: TenantEventListener<E>): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    const stored = listener as TenantEventListener<TenantEventName>;
    set.add(stored);
    return () => {
      set.delete(stored);
    };
  }

  /** Emits an event to its listeners and waits for async ones. Internal to tenantry. */
  async emit<E extends TenantEventName>(event: E, payload: TenantEventMap[E]): Promise<void> {
    const set = this.#listeners.get(event);
    if (!set) return;
    await Promise.all(
      [...set].map(async (listener) => {
        try {
          await listener(payload);
        } catch (error) {
          this.#logger.error('tenant lifecycle listener failed', { event, error });
        }
      }),
    );
  }
}
