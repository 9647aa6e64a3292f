import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import { TokenInvalidError } from '../errors';
import { isValidTenantId } from './tenant-id';

/**
 * The signed value of a propagated tenant header:
 * `v1.<tenant>.<issued at, ms>.<nonce>.<HMAC-SHA256, base64url>`, the HMAC
 * taken over everything before it plus the audience (the receiving
 * service), so a header is bound to its tenant, time, nonce and receiver.
 * Shared by the signing helper (propagation) and the verifying strategy
 * (resolution).
 */
const VERSION = 'v1';
const NONCE = /^[A-Za-z0-9_-]{22}$/;
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;
const ISSUED = /^[0-9]{1,15}$/;

/** The smallest shared secret accepted: 32 bytes, the HMAC-SHA256 block's security level. */
export const MIN_PROPAGATION_SECRET_BYTES = 32;

/** Validates a shared secret at construction time (TypeError: a programming error). */
export function propagationSecret(secret: unknown, where: string): Buffer {
  const bytes =
    typeof secret === 'string'
      ? Buffer.from(secret, 'utf8')
      : secret instanceof Uint8Array
        ? Buffer.from(secret)
        : undefined;
  if (bytes === undefined || bytes.length < MIN_PROPAGATION_SECRET_BYTES) {
    throw new TypeError(
      `Cannot use ${where} secret because it is not a string or bytes of at least ${MIN_PROPAGATION_SECRET_BYTES} bytes. Pass a random shared secret, e.g. 32 bytes from crypto.randomBytes().`,
    );
  }
  return bytes;
}

function mac(secret: Buffer, payload: string, audience: string): string {
  return createHmac('sha256', secret).update(`${payload}\n${audience}`).digest('base64url');
}

/** Signs `tenantId` for `audience` now, with a fresh nonce. */
export function signPropagatedTenant(
  secret: Buffer,
  tenantId: string,
  audience: string,
  now: number,
): string {
  const payload = `${VERSION}.${tenantId}.${now}.${randomBytes(16).toString('base64url')}`;
  return `${payload}.${mac(secret, payload, audience)}`;
}

/** A verified propagated header. */
export interface VerifiedPropagation {
  readonly tenantId: string;
  readonly issuedAt: number;
  readonly nonce: string;
}

/**
 * Verifies a propagated header: format, signature (constant time), then age.
 * Any failure is 401 `TOKEN_INVALID`; the caller checks the nonce for replay.
 */
export function verifyPropagatedTenant(
  secrets: readonly Buffer[],
  value: string,
  audience: string,
  now: number,
  maxAgeMs: number,
): VerifiedPropagation {
  const parts = value.length <= 256 ? value.split('.') : [];
  const [version, tenantId, issued, nonce, signature] = parts;
  if (
    parts.length !== 5 ||
    version !== VERSION ||
    tenantId === undefined ||
    !isValidTenantId(tenantId) ||
    issued === undefined ||
    !ISSUED.test(issued) ||
    nonce === undefined ||
    !NONCE.test(nonce) ||
    signature === undefined ||
    !SIGNATURE.test(signature)
  ) {
    throw new TokenInvalidError(
      'Cannot trust the propagated tenant because the header is malformed. Send it with propagateTenant().',
    );
  }
  const payload = `${version}.${tenantId}.${issued}.${nonce}`;
  const given = Buffer.from(signature, 'base64url');
  const valid = secrets.some((secret) => {
    const expected = Buffer.from(mac(secret, payload, audience), 'base64url');
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
  if (!valid) {
    throw new TokenInvalidError(
      'Cannot trust the propagated tenant because its signature is invalid. Sign it with the shared secret and this service as audience.',
    );
  }
  const issuedAt = Number(issued);
  // A small allowance for clocks ahead of ours; never an unbounded future.
  if (now - issuedAt > maxAgeMs || issuedAt - now > Math.min(maxAgeMs, 5_000)) {
    throw new TokenInvalidError(
      'Cannot trust the propagated tenant because its header expired. Sign each outgoing call anew.',
    );
  }
  return { tenantId, issuedAt, nonce };
}

/** What a propagated tenant header carries: a signed HMAC value (default) or a short-lived HS256 JWT. */
export type PropagationFormat = 'hmac' | 'jwt';

/** Signs `tenantId` for `audience` as an HS256 JWT valid `ttlSeconds`, with a fresh `jti`. */
export async function signPropagatedJwt(
  secret: Buffer,
  tenantId: string,
  audience: string,
  now: number,
  ttlSeconds: number,
): Promise<string> {
  const iat = Math.floor(now / 1000);
  return new SignJWT({ tid: tenantId })
    .setProtectedHeader({ alg: 'HS256', typ: 'tenantry-propagation+jwt' })
    .setAudience(audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .setJti(randomBytes(16).toString('base64url'))
    .sign(secret);
}

/**
 * Verifies a propagated JWT: HS256 only, the propagation `typ`, this
 * audience, a required `exp`, `iat` at most `maxAgeMs` old, a valid `tid`
 * and a `jti` (the caller checks it for replay). Any failure is 401
 * `TOKEN_INVALID`.
 */
export async function verifyPropagatedJwt(
  secrets: readonly Buffer[],
  value: string,
  audience: string,
  now: number,
  maxAgeMs: number,
): Promise<VerifiedPropagation> {
  if (value.length > 2048) {
    throw new TokenInvalidError(
      'Cannot trust the propagated tenant because the token is malformed. Send it with propagateTenant().',
    );
  }
  for (const secret of secrets) {
    try {
      const { payload } = await jwtVerify(value, secret, {
        algorithms: ['HS256'],
        typ: 'tenantry-propagation+jwt',
        audience,
        requiredClaims: ['exp', 'iat', 'jti', 'tid'],
        maxTokenAge: `${Math.max(1, Math.floor(maxAgeMs / 1000))}s`,
        currentDate: new Date(now),
        clockTolerance: 5,
      });
      const tid = payload.tid;
      const jti = payload.jti;
      if (
        typeof tid !== 'string' ||
        !isValidTenantId(tid) ||
        typeof jti !== 'string' ||
        jti === ''
      ) {
        break;
      }
      return { tenantId: tid, issuedAt: (payload.iat as number) * 1000, nonce: `jwt:${jti}` };
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      // Only a bad signature may be another rotation secret's; anything else is final.
      if (code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') break;
    }
  }
  throw new TokenInvalidError(
    'Cannot trust the propagated tenant because its token is invalid, expired or not for this service. Sign each call with propagateTenant().',
  );
}
