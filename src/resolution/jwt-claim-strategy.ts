import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import type { Request } from 'express';
import jwt from 'jsonwebtoken';
import { checkJwtAlgorithms, MIN_HMAC_SECRET_BYTES } from '../config/jwt-algorithms';
import type { TenantUser } from '../context/tenant-context';
import {
  TenancyConfigError,
  TenantInvalidError,
  TokenExpiredError,
  TokenInvalidError,
} from '../errors';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';

/** Options of {@link JwtClaimStrategy}. */
export interface JwtClaimStrategyOptions {
  /**
   * Accepted signing algorithms. Required: there is no default, `none` is
   * refused, and HMAC (HS*) cannot be mixed with RSA/EC algorithms for one key.
   */
  readonly algorithms: readonly string[];
  /** HMAC secret (at least 32 bytes) for HS* algorithms. Exactly one of `secret`/`publicKey`. */
  readonly secret?: string | Buffer | KeyObject | undefined;
  /** Public key (PEM, DER buffer or KeyObject) for RS*, PS* or ES* algorithms. */
  readonly publicKey?: string | Buffer | KeyObject | undefined;
  /** Required audience(s) (`aud`). Default: not checked. */
  readonly audience?: string | readonly string[] | undefined;
  /** Required issuer(s) (`iss`). Default: not checked. */
  readonly issuer?: string | readonly string[] | undefined;
  /** Seconds of clock skew tolerated on `exp`/`nbf`. Default: `0`. */
  readonly clockTolerance?: number | undefined;
  /** Claim holding the tenant id, e.g. `sub` for per-tenant machine tokens. Default: `tid`. */
  readonly claim?: string | undefined;
  /** Claim holding the user id. Default: `sub`. */
  readonly userClaim?: string | undefined;
  /** Longest accepted token in characters; longer is `TOKEN_INVALID`. Default: `8192`. */
  readonly maxTokenLength?: number | undefined;
}

const BEARER = /^Bearer(?: +(.*))?$/i;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function fail(message: string): never {
  throw new TenancyConfigError(message);
}

function toKey(
  options: JwtClaimStrategyOptions,
  family: ReturnType<typeof checkJwtAlgorithms>,
): KeyObject {
  const { secret, publicKey } = options;
  if ((secret === undefined) === (publicKey === undefined)) {
    fail(
      'Cannot verify tokens because the jwt_claim strategy needs exactly one of secret (HS*) or publicKey (RS*/PS*/ES*). Set one.',
    );
  }
  if (family === 'hmac') {
    if (secret === undefined)
      fail('Cannot verify HS* tokens with a publicKey. Pass secret, or use RS*/ES* algorithms.');
    const key =
      typeof secret === 'string' || Buffer.isBuffer(secret)
        ? createSecretKey(Buffer.from(secret))
        : secret;
    if (key.type !== 'secret')
      fail('Cannot verify HS* tokens with an asymmetric key. Pass the shared secret.');
    if ((key.symmetricKeySize ?? 0) < MIN_HMAC_SECRET_BYTES) {
      fail(
        `Cannot use a JWT secret shorter than ${MIN_HMAC_SECRET_BYTES} bytes. Use a longer random secret.`,
      );
    }
    return key;
  }
  if (publicKey === undefined)
    fail(`Cannot verify ${options.algorithms.join('/')} tokens with a secret. Pass publicKey.`);
  let key: KeyObject;
  try {
    // createPublicKey also accepts a private key and keeps only its public half.
    key =
      publicKey instanceof KeyObject && publicKey.type === 'public'
        ? publicKey
        : createPublicKey(publicKey as string | Buffer | KeyObject);
  } catch (cause) {
    throw new TenancyConfigError(
      'Cannot read the jwt_claim publicKey because it is not a PEM/DER key. Pass the issuer public key.',
      { cause },
    );
  }
  const type = key.asymmetricKeyType;
  const fits = family === 'rsa' ? type === 'rsa' || type === 'rsa-pss' : type === family;
  if (!fits)
    fail(
      `Cannot verify ${options.algorithms.join('/')} tokens with a ${String(type)} key. Pass a matching public key.`,
    );
  return key;
}

function list(value: string | readonly string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const items = typeof value === 'string' ? [value] : [...value];
  if (items.length === 0 || items.some((i) => typeof i !== 'string' || i === '')) {
    fail(
      'Cannot use an empty audience/issuer for the jwt_claim strategy. Give non-empty strings or omit it.',
    );
  }
  return items;
}

/**
 * Reads the tenant from a verified JWT in `Authorization: Bearer <token>`.
 * The token must verify against the configured key with an allow-listed
 * algorithm, carry an `exp` (a token without one is refused as
 * `TOKEN_EXPIRED`: it would never expire), and match `aud`/`iss` when
 * configured. A bad, expired, forged, `alg: none` or wrong-key token is a 401
 * (`TOKEN_INVALID` / `TOKEN_EXPIRED`), never a silent skip. A request without
 * an `Authorization` header, or with another scheme, is skipped.
 *
 * The verified claims become the request's user; the tenant claim is a
 * trusted source.
 *
 * @example
 * ```ts
 * const jwtClaim = new JwtClaimStrategy({ publicKey: issuerPem, algorithms: ['RS256'], audience: 'api', claim: 'tid' });
 * app.use(resolveTenant({ store, strategies: [jwtClaim, 'header'] }));
 * ```
 */
export class JwtClaimStrategy implements TenantResolutionStrategy {
  readonly name = 'jwt_claim';
  readonly #key: KeyObject;
  readonly #verifyOptions: jwt.VerifyOptions & { complete?: false };
  readonly #claim: string;
  readonly #userClaim: string;
  readonly #maxTokenLength: number;

  constructor(options: JwtClaimStrategyOptions) {
    if (options === undefined || !Array.isArray(options.algorithms)) {
      fail(
        'Cannot verify tokens because the jwt_claim strategy has no algorithms allow-list. Pass algorithms, e.g. ["RS256"] (never "none").',
      );
    }
    const family = checkJwtAlgorithms(options.algorithms, fail, 'the jwt_claim algorithms');
    this.#key = toKey(options, family);
    const audience = list(options.audience);
    const issuer = list(options.issuer);
    const clockTolerance = options.clockTolerance ?? 0;
    if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
      fail(
        `Cannot use clockTolerance=${String(clockTolerance)} because it is not a number of seconds >= 0.`,
      );
    }
    this.#verifyOptions = {
      algorithms: [...options.algorithms] as jwt.Algorithm[],
      ...(audience !== undefined ? { audience: audience as [string, ...string[]] } : {}),
      ...(issuer !== undefined ? { issuer: issuer as [string, ...string[]] } : {}),
      clockTolerance,
      ignoreExpiration: false,
      ignoreNotBefore: false,
    };
    this.#claim = options.claim ?? 'tid';
    this.#userClaim = options.userClaim ?? 'sub';
    this.#maxTokenLength = options.maxTokenLength ?? 8192;
  }

  resolve(req: Request): TenantResolution | undefined {
    const header = req.headers.authorization;
    if (header === undefined) return undefined;
    const match = BEARER.exec(header.trim());
    if (match === null) return undefined; // another scheme (Basic, ...) is another middleware's business
    const token = (match[1] ?? '').trim();
    if (token.length > this.#maxTokenLength || !COMPACT_JWS.test(token)) {
      throw new TokenInvalidError(
        'Cannot accept the bearer token because it is not a well-formed JWT. Send a valid token.',
      );
    }
    let payload: string | jwt.JwtPayload;
    try {
      payload = jwt.verify(token, this.#key, this.#verifyOptions);
    } catch (cause) {
      if (cause instanceof jwt.TokenExpiredError) {
        throw new TokenExpiredError(
          'Cannot accept the bearer token because it expired. Get a new token.',
          { cause },
        );
      }
      throw new TokenInvalidError(
        'Cannot accept the bearer token because it failed verification (signature, algorithm, audience, issuer or not-before). Send a valid token.',
        { cause },
      );
    }
    if (typeof payload !== 'object' || payload === null) {
      throw new TokenInvalidError(
        'Cannot accept the bearer token because its payload is not a JSON object.',
      );
    }
    if (typeof payload.exp !== 'number') {
      throw new TokenExpiredError(
        'Cannot accept the bearer token because it has no exp claim, so it would never expire. Issue tokens with exp.',
      );
    }
    const claims = Object.freeze({ ...payload }) as Readonly<Record<string, unknown>>;
    const userId = claims[this.#userClaim];
    const user: TenantUser = Object.freeze({
      id: typeof userId === 'string' ? userId : '',
      claims,
    });
    const tenantId = claims[this.#claim];
    if (tenantId === undefined) return { trusted: true, user };
    if (typeof tenantId !== 'string') {
      throw new TenantInvalidError(
        `Cannot use the tenant claim "${this.#claim}" of the token because it is not a string.`,
      );
    }
    return { tenantId, trusted: true, user };
  }
}
