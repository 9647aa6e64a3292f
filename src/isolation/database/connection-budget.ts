import { TenantUnavailableError } from '../../errors';

/** Options of {@link ConnectionBudget}. */
export interface ConnectionBudgetOptions {
  /** Most connections open at once across every tenant pool. Required, >= 1. */
  readonly max: number;
  /** How long a new connection may wait for a free slot. Default: `10000` ms. */
  readonly acquireTimeoutMillis?: number | undefined;
  /**
   * Called while someone waits for a slot, so idle pools can be closed to
   * free theirs. Default: nothing.
   */
  readonly onPressure?: (() => void) | undefined;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A counting semaphore over *open* PostgreSQL connections, shared by every
 * tenant pool: a pool must take a slot before it opens a connection and
 * gives it back when the connection is closed. So the number of connections
 * the process holds never exceeds `max`, however many tenant pools exist.
 *
 * @example
 * ```ts
 * const budget = new ConnectionBudget({ max: 50 });
 * await budget.acquire();
 * try { await openConnection(); } catch (e) { budget.release(); throw e; }
 * ```
 */
export class ConnectionBudget {
  readonly #max: number;
  readonly #timeout: number;
  readonly #onPressure: () => void;
  readonly #waiters: Waiter[] = [];
  #used = 0;
  #peak = 0;
  #pressureTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ConnectionBudgetOptions) {
    if (!Number.isInteger(options.max) || options.max < 1) {
      throw new TypeError(
        `Cannot create a connection budget of ${String(options.max)} because it must be an integer >= 1.`,
      );
    }
    this.#max = options.max;
    this.#timeout = options.acquireTimeoutMillis ?? 10_000;
    this.#onPressure = options.onPressure ?? (() => undefined);
  }

  /** The configured maximum. */
  get max(): number {
    return this.#max;
  }
  /** Slots currently taken (open or opening connections). */
  get used(): number {
    return this.#used;
  }
  /** The highest `used` ever observed. */
  get peak(): number {
    return this.#peak;
  }
  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Takes a slot, waiting (and asking idle pools to close) while none is
   * free. Aborting `signal` abandons the wait (a pool being closed must not
   * keep waiting for a slot it no longer needs).
   */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) {
      return Promise.reject(
        new TenantUnavailableError('Cannot open a tenant connection because its pool is closing.'),
      );
    }
    if (this.#closed) {
      return Promise.reject(
        new TenantUnavailableError(
          'Cannot open a tenant connection because the pool manager is shut down.',
        ),
      );
    }
    if (this.#used < this.#max) {
      this.#take();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#remove(waiter);
          reject(
            new TenantUnavailableError(
              `Cannot open a tenant connection because all ${this.#max} connections of the budget ` +
                `stayed busy for ${this.#timeout} ms. Retry later.`,
            ),
          );
        }, this.#timeout),
      };
      signal?.addEventListener(
        'abort',
        () => {
          this.#remove(waiter);
          clearTimeout(waiter.timer);
          reject(
            new TenantUnavailableError(
              'Cannot open a tenant connection because its pool is closing.',
            ),
          );
        },
        { once: true },
      );
      this.#waiters.push(waiter);
      this.#relievePressure();
    });
  }

  /** Gives a slot back (exactly once per successful `acquire()`). */
  release(): void {
    const next = this.#waiters.shift();
    if (next) {
      // The slot passes straight to the next waiter: `used` stays the same.
      clearTimeout(next.timer);
      next.resolve();
      return;
    }
    this.#used = Math.max(0, this.#used - 1);
  }

  /** Rejects every waiter and refuses new acquisitions. */
  close(): void {
    this.#closed = true;
    if (this.#pressureTimer) clearInterval(this.#pressureTimer);
    this.#pressureTimer = undefined;
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(
        new TenantUnavailableError(
          'Cannot open a tenant connection because the pool manager is shut down.',
        ),
      );
    }
  }

  #take(): void {
    this.#used += 1;
    if (this.#used > this.#peak) this.#peak = this.#used;
  }

  #remove(waiter: Waiter): void {
    const index = this.#waiters.indexOf(waiter);
    if (index >= 0) this.#waiters.splice(index, 1);
  }

  // Pools become idle some time after a waiter queued (their queries finish
  // later), so pressure is re-checked on a short timer while anyone waits.
  #relievePressure(): void {
    this.#onPressure();
    if (this.#pressureTimer) return;
    this.#pressureTimer = setInterval(() => {
      if (this.#waiters.length === 0) {
        clearInterval(this.#pressureTimer);
        this.#pressureTimer = undefined;
        return;
      }
      this.#onPressure();
    }, 20);
    this.#pressureTimer.unref();
  }
}
