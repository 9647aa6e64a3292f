import { createPublicKey, createSecretKey, KeyObject } from 'node:crypto';
import type { Request } from 'express';
import {
  createRemoteJWKSet,
  decodeJwt,
  errors as jose,
  importJWK,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import {
  checkJwksAlgorithms,
  checkJwtAlgorithms,
  MIN_HMAC_SECRET_BYTES,
} from '../config/jwt-algorithms';
import {
  parseClaimPath,
  readClaim,
  type ClaimPath,
  type ParsedClaimPath,
} from '../context/claim-path';
import type { TenantUser } from '../context/tenant-context';
import {
  TenancyConfigError,
  TenancyError,
  TenantInvalidError,
  TokenExpiredError,
  TokenInvalidError,
  TokenKeysUnavailableError,
} from '../errors';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';
import { quoteInput, quoteValue } from '../message-text';

/**
 * Maps the value of the tenant claim (an IdP organisation id such as
 * `org_9ybsU1dN2dKfDkBi`) to a tenant id, or `undefined` when the token names
 * no tenant. Receives every verified claim. The result is validated against
 * `TENANT_ID_PATTERN` like any other id; a function that throws refuses the
 * request with 500 `TENANT_RESOLUTION_FAILED`.
 */
export type JwtTenantIdMapper = (
  claimValue: unknown,
  claims: Readonly<Record<string, unknown>>,
) => string | undefined;

/**
 * One allow-listed token issuer with its own keys. A token's `iss` picks the
 * issuer; its keys alone verify it.
 *
 * @example
 * ```ts
 * const keycloak: JwtIssuerOptions = { issuer: 'https://sso.example.com/realms/app', jwksUri: 'https://sso.example.com/realms/app/protocol/openid-connect/certs', audience: 'api' };
 * ```
 */
export interface JwtIssuerOptions {
  /** The exact `iss` value of this issuer's tokens. Required. */
  readonly issuer: string;
  /** The issuer's JWKS URL (`https:`; `http:` only on loopback). Exactly one of `jwksUri`/`publicKey`/`secret`. */
  readonly jwksUri?: string | URL | undefined;
  /** The issuer's public key (PEM, DER buffer or KeyObject). */
  readonly publicKey?: string | Buffer | KeyObject | undefined;
  /** The issuer's HMAC secret (at least 32 bytes). */
  readonly secret?: string | Buffer | KeyObject | undefined;
  /** Required audience(s) of this issuer's tokens. Default: the strategy's `audience`. */
  readonly audience?: string | readonly string[] | undefined;
  /** Accepted algorithms of this issuer. Default: the strategy's `algorithms`. */
  readonly algorithms?: readonly string[] | undefined;
}

/** Options of {@link JwtClaimStrategy}. */
export interface JwtClaimStrategyOptions {
  /**
   * Accepted signing algorithms. Required: there is no default, `none` is
   * refused, HMAC (HS*) cannot be mixed with RSA/EC algorithms for one key,
   * and a `jwksUri` accepts no HMAC algorithm. With a list of issuers it is the
   * default of each.
   */
  readonly algorithms: readonly string[];
  /** HMAC secret (at least 32 bytes) for HS* algorithms. Exactly one of `secret`/`publicKey`/`jwksUri` (single issuer). */
  readonly secret?: string | Buffer | KeyObject | undefined;
  /** Public key (PEM, DER buffer or KeyObject) for RS*, PS* or ES* algorithms. */
  readonly publicKey?: string | Buffer | KeyObject | undefined;
  /**
   * URL of the issuer's JSON Web Key Set (`https:`; `http:` only on a
   * loopback host). Keys are cached and picked by `kid`; a token with an
   * unknown `kid` refetches the set (at most once per `jwksCooldownMs`), so a
   * key rotation is picked up without a restart. A set that cannot be fetched
   * answers 503 `TOKEN_KEYS_UNAVAILABLE`. Default: none.
   */
  readonly jwksUri?: string | URL | undefined;
  /** Required audience(s) (`aud`). Default: not checked. */
  readonly audience?: string | readonly string[] | undefined;
  /**
   * Either the required issuer(s) (`iss`) of the one key above, or a list of
   * issuers each with its own keys ({@link JwtIssuerOptions}): a token's `iss`
   * selects its issuer, an `iss` not on the list is 401 `TOKEN_INVALID`.
   * Default: not checked (single key).
   */
  readonly issuer?: string | readonly string[] | readonly JwtIssuerOptions[] | undefined;
  /** Seconds of clock skew tolerated on `exp`/`nbf`. Default: `0`. */
  readonly clockTolerance?: number | undefined;
  /**
   * Claim path of the tenant id: `tid`, `org.id`, or a namespaced claim
   * `https://example.com/claims.tenant` (see {@link ClaimPath}). Default: `tid`.
   */
  readonly claim?: ClaimPath | undefined;
  /** Claim path of the user id. Default: `sub`. */
  readonly userClaim?: ClaimPath | undefined;
  /**
   * Maps the tenant claim's value to a tenant id (e.g. an IdP organisation id
   * to your slug). Without it the claim must be a string tenant id. Default: none.
   */
  readonly mapTenantId?: JwtTenantIdMapper | undefined;
  /** Longest accepted token in characters; longer is `TOKEN_INVALID`. Default: `8192`. */
  readonly maxTokenLength?: number | undefined;
  /** How long a fetched JWKS is used before it is fetched again, in ms. Default: `600000`. */
  readonly jwksCacheMaxAgeMs?: number | undefined;
  /** Least time between two fetches triggered by an unknown `kid`, in ms. Default: `30000`. */
  readonly jwksCooldownMs?: number | undefined;
  /** How long a JWKS fetch may take before the request gets 503, in ms. Default: `5000`. */
  readonly jwksTimeoutMs?: number | undefined;
}

const BEARER = /^Bearer(?: +(.*))?$/i;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

interface Verifier {
  readonly key: JWTVerifyGetKey;
  readonly options: JWTVerifyOptions;
}

function fail(message: string): never {
  throw new TenancyConfigError(message);
}

function staticKey(
  where: string,
  algorithms: readonly string[],
  secret: JwtIssuerOptions['secret'],
  publicKey: JwtIssuerOptions['publicKey'],
): KeyObject {
  const family = checkJwtAlgorithms(algorithms, fail, `the ${where} algorithms`);
  if (family === 'hmac') {
    if (secret === undefined)
      fail(
        `Cannot verify HS* tokens of ${where} with a publicKey. Pass secret, or use RS*/ES* algorithms.`,
      );
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
    fail(`Cannot verify ${algorithms.join('/')} tokens with a secret. Pass publicKey.`);
  let key: KeyObject;
  try {
    // createPublicKey also accepts a private key and keeps only its public half.
    key =
      publicKey instanceof KeyObject && publicKey.type === 'public'
        ? publicKey
        : createPublicKey(publicKey as string | Buffer | KeyObject);
  } catch (cause) {
    throw new TenancyConfigError(
      `Cannot read the ${where} publicKey because it is not a PEM/DER key. Pass the issuer public key.`,
      { cause },
    );
  }
  const type = key.asymmetricKeyType;
  const fits = family === 'rsa' ? type === 'rsa' || type === 'rsa-pss' : type === family;
  if (!fits)
    fail(
      `Cannot verify ${algorithms.join('/')} tokens with a ${String(type)} key. Pass a matching public key.`,
    );
  return key;
}

/**
 * A static key as jose wants it: imported once per algorithm as a CryptoKey.
 * Handing jose the KeyObject makes it convert the key on every call, which
 * made the static path slower than a cached JWKS key.
 */
function preparedKey(key: KeyObject): JWTVerifyGetKey {
  const jwk = key.export({ format: 'jwk' });
  const imported = new Map<string, ReturnType<typeof importJWK>>();
  return (header) => {
    const alg = header.alg as string; // jose checked it against the allow-list before asking
    let found = imported.get(alg);
    if (found === undefined) {
      found = importJWK(jwk, alg) as ReturnType<typeof importJWK>;
      imported.set(alg, found);
    }
    return found;
  };
}

/**
 * A remote JWKS whose answers for a warm key are returned without a promise.
 * jose's remote set is three async layers deep (the set, its local set, the
 * import cache), a few µs per token over a static key. While jose's copy of
 * the keys is fresh and no call went to it since, its answer for a header's
 * (`alg`, `kid`) cannot change (the local set picks the key from the same
 * snapshot by those two only), so it is kept here. Every call that does go to
 * jose (a new kid, a stale copy) may reload the keys, so it forgets them all,
 * and only the newest such call may remember its answer: a rotated key is
 * picked up exactly as jose picks it up.
 */
function cachedRemoteKeys(
  set: ReturnType<typeof createRemoteJWKSet>,
  failed: (cause: unknown) => never,
): JWTVerifyGetKey {
  let known = new Map<string, Awaited<ReturnType<typeof set>>>();
  let calls = 0;
  return (header, token) => {
    const name = `${String(header.alg)} ${header.kid === undefined ? '' : String(header.kid)}`;
    if (set.fresh && !set.reloading) {
      const found = known.get(name);
      if (found !== undefined) return found;
    }
    calls += 1;
    const call = calls;
    known = new Map();
    return set(header, token).then((found) => {
      if (call === calls && set.fresh) known.set(name, found);
      return found;
    }, failed);
  };
}

function jwksUrl(value: string | URL, where: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new TenancyConfigError(
      `Cannot use the ${where} jwksUri ${quoteInput(String(value), 200)} because it is not a URL. Use the issuer's https:// JWKS URL.`,
      { cause },
    );
  }
  // Keys fetched over plain HTTP can be swapped by anyone on the path.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    fail(
      `Cannot fetch signing keys from ${url.protocol}//${url.host} for ${where} because only https: (or http: on a loopback host) is safe. Use the https:// JWKS URL.`,
    );
  }
  if (url.username !== '' || url.password !== '')
    fail(`Cannot use a jwksUri with credentials in it for ${where}. Remove them.`);
  return url;
}

function list(value: string | readonly string[] | undefined, what: string): string[] | undefined {
  if (value === undefined) return undefined;
  const items = typeof value === 'string' ? [value] : [...value];
  if (items.length === 0 || items.some((i) => typeof i !== 'string' || i === '')) {
    fail(
      `Cannot use an empty ${what} for the jwt_claim strategy. Give non-empty strings or omit it.`,
    );
  }
  return items;
}

function ms(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(
      `Cannot use jwt_claim ${name}=${quoteValue(value)} because it is not an integer >= 0 (ms).`,
    );
  }
  return value;
}

function claimPath(value: ClaimPath | undefined, fallback: string, name: string): ParsedClaimPath {
  const parsed = parseClaimPath(value ?? fallback);
  if (parsed === undefined) {
    fail(
      `Cannot use jwt_claim ${name}=${quoteValue(value)} because it is not a claim path. Use e.g. "tid", "org.id" or "https://example.com/claims.tenant".`,
    );
  }
  return parsed;
}

function isIssuerList(
  value: JwtClaimStrategyOptions['issuer'],
): value is readonly JwtIssuerOptions[] {
  return Array.isArray(value) && value.some((i) => typeof i === 'object' && i !== null);
}

function invalid(message: string, cause?: unknown): TokenInvalidError {
  return new TokenInvalidError(
    `Cannot accept the bearer token because ${message}. Send a valid token.`,
    cause === undefined ? undefined : { cause },
  );
}

/** Turns what jose (or a key fetch) threw into the request's 401 / 503. */
function refusal(cause: unknown): TenancyError {
  if (cause instanceof TenancyError) return cause;
  if (cause instanceof jose.JWTExpired) {
    return new TokenExpiredError(
      'Cannot accept the bearer token because it expired. Get a new token.',
      {
        cause,
      },
    );
  }
  if (cause instanceof jose.JWTClaimValidationFailed && cause.claim === 'exp') {
    return new TokenExpiredError(
      'Cannot accept the bearer token because it has no exp claim, so it would never expire. Issue tokens with exp.',
      { cause },
    );
  }
  return invalid(
    'it failed verification (signature, algorithm, key, audience, issuer or not-before)',
    cause,
  );
}

/**
 * Reads the tenant from a verified JWT in `Authorization: Bearer <token>`,
 * verified with [jose](https://github.com/panva/jose). The token must verify
 * against the keys of its issuer (a static secret or public key, or the
 * issuer's JWKS picked by `kid`) with an allow-listed algorithm, carry an
 * `exp` (a token without one is refused as `TOKEN_EXPIRED`: it would never
 * expire), and match `aud`/`iss` when configured. A bad, expired, forged,
 * `alg: none`, wrong-key or unknown-issuer token is a 401 (`TOKEN_INVALID` /
 * `TOKEN_EXPIRED`), never a silent skip; keys that cannot be fetched are a
 * 503 `TOKEN_KEYS_UNAVAILABLE`. A request without an `Authorization` header,
 * or with another scheme, is skipped.
 *
 * The verified claims become the request's user; the tenant claim is a
 * trusted source.
 *
 * @example
 * ```ts
 * const jwtClaim = new JwtClaimStrategy({
 *   algorithms: ['RS256'],
 *   issuer: [
 *     { issuer: 'https://acme.eu.auth0.com/', jwksUri: 'https://acme.eu.auth0.com/.well-known/jwks.json' },
 *     { issuer: 'https://sso.example.com/realms/app', jwksUri: 'https://sso.example.com/realms/app/protocol/openid-connect/certs' },
 *   ],
 *   audience: 'https://api.example.com',
 *   claim: 'https://example.com/claims.org_id',
 *   mapTenantId: (orgId) => (typeof orgId === 'string' ? orgSlugs.get(orgId) : undefined),
 * });
 * app.use(resolveTenant({ store, strategies: [jwtClaim, 'header'] }));
 * ```
 */
export class JwtClaimStrategy implements TenantResolutionStrategy {
  readonly name = 'jwt_claim';
  /** The verifier of a single-key strategy (any `iss`, or `iss` checked by jose). */
  readonly #single: Verifier | undefined;
  /** The verifier of each allow-listed issuer, by exact `iss`. */
  readonly #byIssuer: ReadonlyMap<string, Verifier>;
  readonly #claim: ParsedClaimPath;
  readonly #userClaim: ParsedClaimPath;
  readonly #mapTenantId: JwtTenantIdMapper | undefined;
  readonly #maxTokenLength: number;

  constructor(options: JwtClaimStrategyOptions) {
    if (options === undefined || !Array.isArray(options.algorithms)) {
      fail(
        'Cannot verify tokens because the jwt_claim strategy has no algorithms allow-list. Pass algorithms, e.g. ["RS256"] (never "none").',
      );
    }
    const clockTolerance = options.clockTolerance ?? 0;
    if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
      fail(
        `Cannot use clockTolerance=${quoteValue(clockTolerance)} because it is not a number of seconds >= 0.`,
      );
    }
    const remote = {
      cacheMaxAge: ms('jwksCacheMaxAgeMs', options.jwksCacheMaxAgeMs, 600_000),
      cooldownDuration: ms('jwksCooldownMs', options.jwksCooldownMs, 30_000),
      timeoutDuration: ms('jwksTimeoutMs', options.jwksTimeoutMs, 5_000),
    };
    const audience = list(options.audience, 'audience');

    const build = (
      where: string,
      keys: Pick<JwtIssuerOptions, 'jwksUri' | 'publicKey' | 'secret'>,
      algorithms: readonly string[],
      aud: string[] | undefined,
      issuer: string[] | undefined,
    ): Verifier => {
      const given = [keys.jwksUri, keys.publicKey, keys.secret].filter((k) => k !== undefined);
      if (given.length !== 1) {
        fail(
          `Cannot verify tokens of ${where} because it needs exactly one of jwksUri, publicKey (RS*/PS*/ES*) or secret (HS*). Set one.`,
        );
      }
      let key: JWTVerifyGetKey;
      if (keys.jwksUri !== undefined) {
        checkJwksAlgorithms(algorithms, fail, `the ${where} algorithms`);
        key = cachedRemoteKeys(
          createRemoteJWKSet(jwksUrl(keys.jwksUri, where), remote),
          (cause) => {
            // No key for this kid (after the refetch jose allows) is the token's fault: 401.
            if (
              cause instanceof jose.JWKSNoMatchingKey ||
              cause instanceof jose.JWKSMultipleMatchingKeys
            ) {
              throw invalid(`no key of ${where} matches its kid`, cause);
            }
            // Anything else (fetch failed, timed out, not a JWKS): the keys are unknown, not wrong.
            throw new TokenKeysUnavailableError(
              `Cannot verify the bearer token because the signing keys of ${where} cannot be fetched. Retry later.`,
              { cause },
            );
          },
        );
      } else {
        key = preparedKey(staticKey(where, algorithms, keys.secret, keys.publicKey));
      }
      return {
        key,
        options: Object.freeze({
          algorithms: [...algorithms],
          ...(aud !== undefined ? { audience: aud } : {}),
          ...(issuer !== undefined ? { issuer } : {}),
          clockTolerance,
          requiredClaims: ['exp'],
        }),
      };
    };

    const byIssuer = new Map<string, Verifier>();
    if (isIssuerList(options.issuer)) {
      if (
        options.secret !== undefined ||
        options.publicKey !== undefined ||
        options.jwksUri !== undefined
      ) {
        fail(
          'Cannot verify tokens with both a top-level key and a list of issuers. Move secret/publicKey/jwksUri into each issuer.',
        );
      }
      if (options.issuer.length === 0)
        fail('Cannot use an empty list of issuers. List at least one.');
      for (const entry of options.issuer) {
        if (
          typeof entry !== 'object' ||
          entry === null ||
          typeof entry.issuer !== 'string' ||
          entry.issuer === ''
        ) {
          fail(
            'Cannot use an issuer without an issuer string. Write each as { issuer, jwksUri | publicKey | secret }.',
          );
        }
        if (byIssuer.has(entry.issuer))
          fail(`Cannot list issuer ${quoteInput(entry.issuer, 200)} twice. Remove the duplicate.`);
        const algorithms = entry.algorithms ?? options.algorithms;
        if (!Array.isArray(algorithms))
          fail(
            `Cannot use the algorithms of issuer ${quoteInput(entry.issuer, 200)} because they are not a list.`,
          );
        byIssuer.set(
          entry.issuer,
          build(
            `issuer ${quoteInput(entry.issuer, 200)}`,
            entry,
            algorithms,
            entry.audience !== undefined ? list(entry.audience, 'audience') : audience,
            [entry.issuer],
          ),
        );
      }
      this.#single = undefined;
    } else {
      this.#single = build(
        'the jwt_claim strategy',
        options,
        options.algorithms,
        audience,
        list(options.issuer as string | readonly string[] | undefined, 'issuer'),
      );
    }
    this.#byIssuer = byIssuer;
    this.#claim = claimPath(options.claim, 'tid', 'claim');
    this.#userClaim = claimPath(options.userClaim, 'sub', 'userClaim');
    if (options.mapTenantId !== undefined && typeof options.mapTenantId !== 'function') {
      fail(
        'Cannot use jwt_claim mapTenantId because it is not a function (claimValue, claims) => tenantId | undefined.',
      );
    }
    this.#mapTenantId = options.mapTenantId;
    this.#maxTokenLength = options.maxTokenLength ?? 8192;
  }

  resolve(req: Request): Promise<TenantResolution> | undefined {
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
    const verifier = this.#single ?? this.#verifierOf(token);
    return jwtVerify(token, verifier.key, verifier.options).then(
      ({ payload }) => this.#resolution(payload),
      (cause: unknown) => {
        throw refusal(cause);
      },
    );
  }

  /** The verifier of the token's (still unverified) `iss`: only its keys may verify it. */
  #verifierOf(token: string): Verifier {
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch (cause) {
      throw invalid('its payload is not a JSON object', cause);
    }
    const verifier = typeof iss === 'string' ? this.#byIssuer.get(iss) : undefined;
    if (verifier === undefined) throw invalid('its issuer (iss) is not an allow-listed issuer');
    return verifier;
  }

  #resolution(payload: JWTPayload): TenantResolution {
    const claims = Object.freeze({ ...payload }) as Readonly<Record<string, unknown>>;
    const userId = readClaim(claims, this.#userClaim);
    const user: TenantUser = Object.freeze({
      id: typeof userId === 'string' ? userId : '',
      claims,
    });
    const value = readClaim(claims, this.#claim);
    const tenantId = this.#mapTenantId !== undefined ? this.#mapTenantId(value, claims) : value;
    if (tenantId === undefined) return { trusted: true, user };
    if (typeof tenantId !== 'string') {
      throw new TenantInvalidError(
        `Cannot use the tenant claim ${quoteInput(this.#claim.text)} of the token because it is not a string${this.#mapTenantId !== undefined ? ' (as mapped by mapTenantId)' : ''}.`,
      );
    }
    return { tenantId, trusted: true, user };
  }
}
