/**
 * The demo's users and how their tokens are minted. A real application gets
 * tokens from its identity provider; the demo signs its own with a shared
 * HS256 secret so a newcomer can curl the API without one.
 */
import jwt from 'jsonwebtoken';

/**
 * The demo HMAC secret (>= 32 bytes, as tenantry requires). Public on
 * purpose: it only protects a local demo. `TENANCY_JWT_SECRET` overrides it
 * for both the server and `mint-token`.
 */
export const DEMO_JWT_SECRET = 'tenantry-demo-secret-not-for-production-0123456789';

/** The HMAC secret in effect: `TENANCY_JWT_SECRET` when set, else {@link DEMO_JWT_SECRET}. */
export function demoJwtSecret(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const fromEnv = env.TENANCY_JWT_SECRET;
  return fromEnv !== undefined && fromEnv.trim() !== '' ? fromEnv : DEMO_JWT_SECRET;
}

/** A demo user and the tenants it belongs to (its home tenant first). */
export interface DemoUser {
  readonly id: string;
  readonly tenants: readonly string[];
}

/** alice is in acme, bob in globex, carol in both. */
export const DEMO_USERS: Readonly<Record<string, DemoUser>> = Object.freeze({
  alice: { id: 'alice', tenants: ['acme'] },
  bob: { id: 'bob', tenants: ['globex'] },
  carol: { id: 'carol', tenants: ['acme', 'globex'] },
});

/** Options of {@link mintDemoToken}. */
export interface MintDemoTokenOptions {
  /** The token's `tid` (the tenant it acts for; must be one of the user's). Default: the user's first tenant. */
  readonly tenant?: string;
  /** Lifetime in seconds. Default: `3600` (one hour). */
  readonly ttlSeconds?: number;
  /** HMAC secret. Default: {@link demoJwtSecret}(). */
  readonly secret?: string;
}

/**
 * Signs a demo token: HS256, `sub` = the user, `tid` = the tenant it acts
 * for, `tenants` = every tenant the user belongs to, `exp` set.
 *
 * @example
 * ```ts
 * const token = mintDemoToken('carol', { tenant: 'globex' });
 * ```
 */
export function mintDemoToken(userName: string, options: MintDemoTokenOptions = {}): string {
  const user = DEMO_USERS[userName];
  if (user === undefined) {
    throw new TypeError(
      `Cannot mint a token for "${userName}" because it is not a demo user. Use ${Object.keys(DEMO_USERS).join(', ')}.`,
    );
  }
  const tenant = options.tenant ?? (user.tenants[0] as string);
  // The demo plays a well-behaved identity provider: it only vouches for real memberships.
  if (!user.tenants.includes(tenant)) {
    throw new TypeError(
      `Cannot mint a token for ${user.id} acting for "${tenant}" because ${user.id} is not a member. Use ${user.tenants.join(' or ')}.`,
    );
  }
  const ttlSeconds = options.ttlSeconds ?? 3600;
  if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new TypeError(
      `Cannot mint a token living ${String(ttlSeconds)} s. Use a positive integer.`,
    );
  }
  return jwt.sign({ tid: tenant, tenants: [...user.tenants] }, options.secret ?? demoJwtSecret(), {
    algorithm: 'HS256',
    subject: user.id,
    expiresIn: ttlSeconds,
  });
}
