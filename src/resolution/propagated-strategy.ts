import type { Request } from 'express';
import {
  propagationSecret,
  verifyPropagatedJwt,
  verifyPropagatedTenant,
  type PropagationFormat,
  type VerifiedPropagation,
} from '../context/tenant-propagation-token';
import { TenancyConfigError, TokenInvalidError } from '../errors';
import { MemoryNonceStore, type NonceStore } from './nonce-store';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';

/**
 * The nonce store of a {@link PropagatedStrategy}: the same as `NonceStore`
 * (kept under this name for existing code).
 */
export type PropagationNonceStore = NonceStore;

/** Options of {@link PropagatedStrategy}. */
export interface PropagatedStrategyOptions {
  /**
   * The shared secret(s) of the calling services, at least 32 bytes; several
   * during a rotation (any one verifies). Required.
   */
  readonly secret: string | Uint8Array | readonly (string | Uint8Array)[];
  /** This service's name, which the caller signed the header for. Required. */
  readonly audience: string;
  /** Header carrying the signed tenant. Default: `X-Tenant-Propagation`. */
  readonly header?: string | undefined;
  /** How long a signed header is accepted after signing. Default: `30000` ms. */
  readonly maxAgeMs?: number | undefined;
  /**
   * Where used nonces are remembered against replay. Default: a new
   * `MemoryNonceStore` (enough for one process; behind a load balancer share
   * one between the instances, e.g. a `RedisNonceStore`).
   */
  readonly nonces?: NonceStore | undefined;
  /** The clock (epoch ms). Default: `Date.now`. */
  readonly now?: (() => number) | undefined;
  /**
   * What the header holds: `hmac` (from `propagateTenant()`) or `jwt` (an
   * HS256 JWT from `propagateTenantJwt()`). One format per strategy, so a
   * service never accepts a shape it did not choose. Default: `hmac`.
   */
  readonly format?: PropagationFormat | undefined;
}

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

/**
 * Resolves the tenant a calling service propagated with `propagateTenant()`:
 * the header's HMAC (shared secret, this service as audience) is verified,
 * its age bounded and its nonce used once, so a forged, altered, expired or
 * replayed header is 401 `TOKEN_INVALID`, never a tenant. An unsigned header
 * is never trusted. A verified header is a trusted source (like a verified
 * token claim). A request without the header is left to the other strategies.
 *
 * @example
 * ```ts
 * app.use(resolveTenant({
 *   store,
 *   strategies: [new PropagatedStrategy({ secret: process.env.PROPAGATION_SECRET!, audience: 'billing' })],
 * }));
 * ```
 */
export class PropagatedStrategy implements TenantResolutionStrategy {
  readonly name = 'propagated';
  readonly #secrets: readonly Buffer[];
  readonly #audience: string;
  readonly #header: string;
  readonly #maxAgeMs: number;
  readonly #nonces: NonceStore;
  readonly #now: () => number;
  readonly #format: PropagationFormat;

  constructor(options: PropagatedStrategyOptions) {
    if (options === undefined || options === null) {
      throw new TenancyConfigError(
        'Cannot verify propagated tenants without options. Pass { secret, audience }.',
      );
    }
    const secrets = Array.isArray(options.secret) ? options.secret : [options.secret];
    if (secrets.length === 0) {
      throw new TypeError('Cannot verify propagated tenants without a secret. Pass secret.');
    }
    this.#secrets = Object.freeze(
      secrets.map((s: unknown) => propagationSecret(s, 'PropagatedStrategy')),
    );
    if (typeof options.audience !== 'string' || options.audience === '') {
      throw new TypeError(
        'Cannot verify propagated tenants without an audience. Pass audience: this service name.',
      );
    }
    this.#audience = options.audience;
    const header = options.header ?? 'X-Tenant-Propagation';
    if (typeof header !== 'string' || !HEADER_NAME.test(header)) {
      throw new TypeError(
        `Cannot read propagated tenants from header ${JSON.stringify(header)} because it is not an HTTP header name.`,
      );
    }
    this.#header = header.toLowerCase();
    const maxAge = options.maxAgeMs ?? 30_000;
    if (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0) {
      throw new TypeError('Cannot use maxAgeMs because it is not a positive number of ms.');
    }
    this.#maxAgeMs = maxAge;
    this.#nonces = options.nonces ?? new MemoryNonceStore();
    if (
      typeof this.#nonces !== 'object' ||
      this.#nonces === null ||
      typeof this.#nonces.claim !== 'function'
    ) {
      throw new TypeError('Cannot use nonces because it has no claim(nonce, expiresAt) method.');
    }
    this.#now = options.now ?? Date.now;
    const format = options.format ?? 'hmac';
    if (format !== 'hmac' && format !== 'jwt') {
      throw new TypeError('Cannot use format because it is neither "hmac" nor "jwt".');
    }
    this.#format = format;
  }

  resolve(req: Request): TenantResolution | undefined | Promise<TenantResolution> {
    const value = req.headers[this.#header];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      throw new TokenInvalidError(
        'Cannot trust the propagated tenant because the header is repeated. Send it once.',
      );
    }
    const fresh = (verified: VerifiedPropagation): TenantResolution | Promise<TenantResolution> => {
      const accept = (first: boolean): TenantResolution => {
        if (first !== true) {
          throw new TokenInvalidError(
            'Cannot trust the propagated tenant because its header was used before (a replay). Sign each outgoing call anew.',
          );
        }
        return { tenantId: verified.tenantId, trusted: true };
      };
      const claimed = this.#nonces.claim(
        verified.nonce,
        verified.issuedAt + this.#maxAgeMs + 5_000,
      );
      return typeof claimed === 'boolean' ? accept(claimed) : claimed.then(accept);
    };
    if (this.#format === 'jwt') {
      return verifyPropagatedJwt(
        this.#secrets,
        value.trim(),
        this.#audience,
        this.#now(),
        this.#maxAgeMs,
      ).then(fresh);
    }
    return fresh(
      verifyPropagatedTenant(
        this.#secrets,
        value.trim(),
        this.#audience,
        this.#now(),
        this.#maxAgeMs,
      ),
    );
  }
}
