import { TenantUnavailableError } from '../errors';

/**
 * Remembers the nonces of propagated tenant headers already used, until they
 * expire, so a replayed header is refused. One store shared by every
 * instance of a service (e.g. {@link RedisNonceStore}) refuses a replay seen
 * by any of them; the default {@link MemoryNonceStore} only by the same process.
 *
 * @example
 * ```ts
 * const nonces: NonceStore = { claim: async (nonce, expiresAt) => myDb.insertIfAbsent(nonce, expiresAt) };
 * ```
 */
export interface NonceStore {
  /**
   * Records `nonce` until `expiresAt` (epoch ms); answers `false` when it was
   * recorded already (a replay). Must be atomic across everything sharing
   * the store. A rejection refuses the request (fail closed).
   */
  claim(nonce: string, expiresAt: number): boolean | Promise<boolean>;
}

/** Options of {@link MemoryNonceStore}. */
export interface MemoryNonceStoreOptions {
  /** The clock (epoch ms). Default: `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/**
 * The in-process nonce store (the default of `PropagatedStrategy`): a Map
 * swept of expired nonces at most once a second as it is used. Enough for one
 * process; behind a load balancer, share a store such as {@link RedisNonceStore}.
 *
 * @example
 * ```ts
 * new PropagatedStrategy({ secret, audience: 'billing', nonces: new MemoryNonceStore() });
 * ```
 */
export class MemoryNonceStore implements NonceStore {
  readonly #seen = new Map<string, number>();
  readonly #now: () => number;
  #lastSweep = 0;

  constructor(options: MemoryNonceStoreOptions = {}) {
    const now = options.now ?? Date.now;
    if (typeof now !== 'function') {
      throw new TypeError('Cannot use MemoryNonceStore({ now }) because it is not a function.');
    }
    this.#now = now;
  }

  /** How many nonces are remembered (expired ones included until the next sweep). */
  get size(): number {
    return this.#seen.size;
  }

  claim(nonce: string, expiresAt: number): boolean {
    const now = this.#now();
    if (now - this.#lastSweep > 1_000) {
      this.#lastSweep = now;
      for (const [n, until] of this.#seen) if (until < now) this.#seen.delete(n);
    }
    const until = this.#seen.get(nonce);
    if (until !== undefined && until >= now) return false;
    this.#seen.set(nonce, expiresAt);
    return true;
  }
}

/**
 * What {@link RedisNonceStore} needs of a Redis client: `SET key value PX ms NX`
 * answering `'OK'` when set and `null` when the key exists. An `ioredis`
 * client (also what BullMQ uses) fits as it is; for `node-redis` pass
 * `{ set: (k, v, _px, ms) => client.set(k, v, { PX: ms, NX: true }) }`.
 */
export interface RedisNonceClient {
  set(key: string, value: string, px: 'PX', milliseconds: number, nx: 'NX'): Promise<unknown>;
}

/** Options of {@link RedisNonceStore}. */
export interface RedisNonceStoreOptions {
  /** The Redis client (an `ioredis` instance). Required. */
  readonly client: RedisNonceClient;
  /** Prefix of the nonce keys. Default: `'tenantry:nonce:'`. */
  readonly prefix?: string | undefined;
  /** The clock (epoch ms) the expiry is measured from. Default: `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/**
 * A nonce store in Redis, shared by every instance of a service: each nonce is
 * claimed with one atomic `SET NX PX`, so of several instances receiving the
 * same header only the first accepts it, and Redis expires the key itself.
 * A Redis failure refuses the request with 503 `TENANT_UNAVAILABLE` (never
 * accepted unchecked).
 *
 * @example
 * ```ts
 * import Redis from 'ioredis';
 * const nonces = new RedisNonceStore({ client: new Redis(process.env.REDIS_URL!) });
 * new PropagatedStrategy({ secret, audience: 'billing', nonces });
 * ```
 */
export class RedisNonceStore implements NonceStore {
  readonly #client: RedisNonceClient;
  readonly #prefix: string;
  readonly #now: () => number;

  constructor(options: RedisNonceStoreOptions) {
    if (
      typeof options !== 'object' ||
      options === null ||
      typeof options.client !== 'object' ||
      options.client === null ||
      typeof options.client.set !== 'function'
    ) {
      throw new TypeError(
        'Cannot store nonces in Redis without a client. Pass { client: new Redis(url) } (ioredis).',
      );
    }
    const prefix = options.prefix ?? 'tenantry:nonce:';
    if (typeof prefix !== 'string' || prefix.length > 128) {
      throw new TypeError(
        'Cannot use RedisNonceStore({ prefix }) because it is not a string of at most 128 characters.',
      );
    }
    const now = options.now ?? Date.now;
    if (typeof now !== 'function') {
      throw new TypeError('Cannot use RedisNonceStore({ now }) because it is not a function.');
    }
    this.#client = options.client;
    this.#prefix = prefix;
    this.#now = now;
  }

  async claim(nonce: string, expiresAt: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(expiresAt - this.#now()));
    let answer: unknown;
    try {
      answer = await this.#client.set(`${this.#prefix}${nonce}`, '1', 'PX', ttl, 'NX');
    } catch (error) {
      throw new TenantUnavailableError(
        'Cannot check the propagated tenant header for replay because the nonce store (Redis) failed. Retry later.',
        { cause: error },
      );
    }
    return answer === 'OK';
  }
}
