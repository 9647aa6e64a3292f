import { quoteValue } from '../message-text';

/** The key families JWT algorithms belong to. One key serves one family only. */
export type JwtKeyFamily = 'hmac' | 'rsa' | 'ec' | 'eddsa';

const FAMILIES: Readonly<Record<string, JwtKeyFamily>> = Object.freeze({
  HS256: 'hmac',
  HS384: 'hmac',
  HS512: 'hmac',
  RS256: 'rsa',
  RS384: 'rsa',
  RS512: 'rsa',
  PS256: 'rsa',
  PS384: 'rsa',
  PS512: 'rsa',
  ES256: 'ec',
  ES384: 'ec',
  ES512: 'ec',
});

/** The smallest accepted HMAC secret, in bytes (RFC 7518 §3.2: at least the hash size). */
export const MIN_HMAC_SECRET_BYTES = 32;

/**
 * Checks a JWT algorithm allow-list and returns its key family. Throws a
 * `TypeError`-like message through `fail` when the list is empty, names
 * `none` or an unknown algorithm, or mixes key families: accepting HS256 and
 * RS256 for one key is the classic key-confusion attack (a token HMAC-signed
 * with the public key as secret).
 *
 * @example
 * ```ts
 * checkJwtAlgorithms(['RS256', 'PS256'], (m) => { throw new TypeError(m); }); // 'rsa'
 * ```
 */
export function checkJwtAlgorithms(
  algorithms: readonly unknown[],
  fail: (message: string) => never,
  where = 'jwt.algorithms',
): JwtKeyFamily {
  if (algorithms.length === 0) {
    fail(
      `Cannot verify tokens because ${where} is empty. List the algorithms your issuer signs with, e.g. ["RS256"].`,
    );
  }
  const families = new Set<JwtKeyFamily>();
  for (const alg of algorithms) {
    if (typeof alg === 'string' && alg.toLowerCase() === 'none') {
      fail(
        `Cannot accept algorithm "none" in ${where} because it means unsigned tokens. Remove it.`,
      );
    }
    const family = typeof alg === 'string' ? FAMILIES[alg] : undefined;
    if (family === undefined) {
      fail(
        `Cannot use algorithm ${quoteValue(alg)} in ${where} because it is not supported. Use one of ${Object.keys(FAMILIES).join(', ')}.`,
      );
    }
    families.add(family);
  }
  if (families.size > 1) {
    fail(
      `Cannot mix ${[...families].join(' and ')} algorithms in ${where} because one key would then verify ` +
        'tokens of another family (HS/RS key confusion). Keep one family per key.',
    );
  }
  return [...families][0] as JwtKeyFamily;
}

/**
 * Checks the algorithm allow-list of a JWKS (remote key set) issuer: the
 * rules of {@link checkJwtAlgorithms}, except that RSA and EC algorithms may
 * be listed together (each JWK carries its key type, and a key only ever
 * verifies its own family) while HMAC is refused outright: a published key
 * set is public, so an HS* token "verified" with it proves nothing.
 *
 * @example
 * ```ts
 * checkJwksAlgorithms(['RS256', 'ES256'], (m) => { throw new TypeError(m); });
 * ```
 */
export function checkJwksAlgorithms(
  algorithms: readonly unknown[],
  fail: (message: string) => never,
  where = 'jwt.algorithms',
): void {
  for (const alg of algorithms) {
    checkJwtAlgorithms([alg], fail, where); // none, unknown
    if (FAMILIES[alg as string] === 'hmac') {
      fail(
        `Cannot accept ${String(alg)} in ${where} for a jwksUri because a JWKS holds public keys: an HMAC token "signed" with one proves nothing. List RS*/PS*/ES* algorithms.`,
      );
    }
  }
  if (algorithms.length === 0) checkJwtAlgorithms(algorithms, fail, where);
}
