/**
 * The one error hierarchy of tenantry. Every request-time failure is a
 * {@link TenancyError} with an HTTP `status`, a stable string `code`, an
 * `expose` flag (whether `message` may be shown to the client) and an optional
 * `cause`. The opt-in `tenancyErrorHandler()` renders them as RFC 9457
 * `application/problem+json`.
 *
 * Messages read "Cannot X because Y. Do Z."
 */

/** Every stable error code tenantry emits. */
export type TenancyErrorCode =
  | 'TENANT_REQUIRED'
  | 'TENANT_INVALID'
  | 'TENANT_NOT_FOUND'
  | 'TENANT_FORBIDDEN'
  | 'TENANT_CONFLICT'
  | 'TENANT_SUSPENDED'
  | 'TENANT_UNAVAILABLE'
  | 'TOKEN_INVALID'
  | 'TOKEN_EXPIRED'
  | 'HOST_INVALID'
  | 'TENANT_SCOPE_REQUIRED'
  | 'UNSAFE_QUERY'
  | 'TENANCY_CONFIG_INVALID'
  | 'TENANT_PROVISIONING_FAILED'
  | 'TENANT_STATE_INVALID'
  | 'TENANT_PURGE_FAILED'
  | 'TENANT_MOVE_FAILED'
  | 'AUTHENTICATION_REQUIRED'
  | 'TENANT_RESOLUTION_FAILED'
  | 'TOKEN_KEYS_UNAVAILABLE'
  | 'DOMAIN_VERIFICATION_FAILED'
  | 'REQUEST_INVALID'
  | 'SESSION_TENANT_MISMATCH'
  | 'SESSION_INVALID'
  | 'UPGRADE_TIMEOUT'
  | 'TENANT_REGION_MISMATCH';

/** Options accepted by every {@link TenancyError} constructor. */
export interface TenancyErrorOptions {
  /** The underlying error, kept for logs; never rendered to clients. */
  cause?: unknown;
  /** Override whether `message` is safe to show to clients. */
  expose?: boolean | undefined;
}

/**
 * Base class of every tenantry error.
 *
 * @example
 * ```ts
 * if (err instanceof TenancyError) res.status(err.status).json({ code: err.code });
 * ```
 */
export class TenancyError extends Error {
  /** HTTP status the error maps to. */
  readonly status: number;
  /** Stable, documented, machine-readable code. */
  readonly code: TenancyErrorCode;
  /** Whether `message` may be shown to the client (true for 4xx by default). */
  readonly expose: boolean;
  /** Short human title, constant per code (RFC 9457 `title`). */
  readonly title: string;

  constructor(
    code: TenancyErrorCode,
    status: number,
    title: string,
    message: string,
    options: TenancyErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.title = title;
    this.expose = options.expose ?? status < 500;
  }
}

/**
 * 401 `TENANT_REQUIRED`: the request or operation needs a tenant and none was resolved.
 *
 * @example
 * ```ts
 * throw new TenantRequiredError();
 * ```
 */
export class TenantRequiredError extends TenancyError {
  constructor(
    message = 'Cannot serve this request because no tenant was identified. Send a tenant (header, token, subdomain or path).',
    options?: TenancyErrorOptions,
  ) {
    super('TENANT_REQUIRED', 401, 'Tenant required', message, options);
  }
}

/**
 * 400 `TENANT_INVALID`: a tenant id does not match the strict id pattern.
 *
 * @example
 * ```ts
 * throw new TenantInvalidError('Cannot use tenant id "A;DROP" because it is not a valid id.');
 * ```
 */
export class TenantInvalidError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_INVALID', 400, 'Invalid tenant id', message, options);
  }
}

/**
 * 404 `TENANT_NOT_FOUND`: the tenant id is well-formed but unknown to the store.
 *
 * @example
 * ```ts
 * throw new TenantNotFoundError('Cannot find tenant "acme". Check the tenant id.');
 * ```
 */
export class TenantNotFoundError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_NOT_FOUND', 404, 'Tenant not found', message, options);
  }
}

/**
 * 403 `TENANT_FORBIDDEN`: the authenticated user is not a member of the tenant.
 *
 * @example
 * ```ts
 * throw new TenantForbiddenError('Cannot access tenant "acme" because the user is not a member.');
 * ```
 */
export class TenantForbiddenError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_FORBIDDEN', 403, 'Not a member of the tenant', message, options);
  }
}

/**
 * 403 `TENANT_CONFLICT`: two resolution sources named different tenants.
 *
 * @example
 * ```ts
 * throw new TenantConflictError('Cannot pick a tenant because jwt_claim says "a" and header says "b".');
 * ```
 */
export class TenantConflictError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_CONFLICT', 403, 'Conflicting tenants', message, options);
  }
}

/**
 * 403 `TENANT_SUSPENDED`: the tenant exists but is not active.
 *
 * @example
 * ```ts
 * throw new TenantSuspendedError('Cannot serve tenant "initech" because it is suspended.');
 * ```
 */
export class TenantSuspendedError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_SUSPENDED', 403, 'Tenant not active', message, options);
  }
}

/**
 * 503 `TENANT_UNAVAILABLE`: the tenant's database cannot be reached right now.
 *
 * @example
 * ```ts
 * throw new TenantUnavailableError('Cannot reach the database of tenant "acme". Retry later.');
 * ```
 */
export class TenantUnavailableError extends TenancyError {
  /** Seconds after which a retry may succeed (rendered as `Retry-After`), when known. */
  readonly retryAfterSeconds: number | undefined;

  constructor(message: string, options?: TenantUnavailableErrorOptions) {
    super('TENANT_UNAVAILABLE', 503, 'Tenant unavailable', message, {
      ...options,
      expose: options?.expose ?? true,
    });
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** Options of {@link TenantUnavailableError}. */
export interface TenantUnavailableErrorOptions extends TenancyErrorOptions {
  /** Seconds after which a retry may succeed; the error handler sends it as `Retry-After`. Default: none. */
  retryAfterSeconds?: number | undefined;
}

/**
 * The SQLSTATE the change-capture trigger of an online move raises for a
 * write to a tenant whose move is in its write freeze (a user-defined code).
 */
export const TENANT_MOVING_SQLSTATE = 'T1M01';

/**
 * The 503 `TENANT_UNAVAILABLE` (with `Retry-After: 1`) for an error the
 * database raised because the tenant is frozen by an online move (SQLSTATE
 * {@link TENANT_MOVING_SQLSTATE}, also as a `cause`), else `undefined`.
 *
 * @example
 * ```ts
 * try { await db('documents').insert(doc); } catch (e) { throw tenantMovingError(e) ?? e; }
 * ```
 */
export function tenantMovingError(error: unknown): TenantUnavailableError | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth += 1) {
    if ((e as { code?: unknown }).code === TENANT_MOVING_SQLSTATE) {
      return new TenantUnavailableError(
        'Cannot write for this tenant because it is being moved (write freeze). Retry in a moment.',
        { cause: error, retryAfterSeconds: 1 },
      );
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * 401 `TOKEN_INVALID`: a bearer token is malformed, forged, signed with a
 * disallowed algorithm, or fails an audience/issuer check.
 *
 * @example
 * ```ts
 * throw new TokenInvalidError('Cannot accept the bearer token because its signature is invalid.');
 * ```
 */
export class TokenInvalidError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TOKEN_INVALID', 401, 'Invalid token', message, options);
  }
}

/**
 * 401 `TOKEN_EXPIRED`: a bearer token is past its `exp` (or has none).
 *
 * @example
 * ```ts
 * throw new TokenExpiredError('Cannot accept the bearer token because it expired. Sign in again.');
 * ```
 */
export class TokenExpiredError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TOKEN_EXPIRED', 401, 'Token expired', message, options);
  }
}

/**
 * 400 `HOST_INVALID`: the request host is not an exact `<tenant>.<domain>` form.
 *
 * @example
 * ```ts
 * throw new HostInvalidError('Cannot resolve a tenant from host "evil.com" because it is not under "app.com".');
 * ```
 */
export class HostInvalidError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('HOST_INVALID', 400, 'Invalid host', message, options);
  }
}

/**
 * 500 `TENANT_SCOPE_REQUIRED`: tenant-scoped code ran with no active tenant
 * scope (or with a `TenantContext` captured from another scope). This is the
 * fail-closed error: nothing was read or written.
 *
 * @example
 * ```ts
 * throw new TenantScopeError('Cannot query "documents" because no tenant is active. Wrap the work in runWithTenant().');
 * ```
 */
export class TenantScopeError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_SCOPE_REQUIRED', 500, 'No tenant scope', message, {
      ...options,
      expose: options?.expose ?? false,
    });
  }
}

/**
 * 500 `UNSAFE_QUERY`: the isolation engine cannot prove a statement
 * tenant-safe, so it refused to send it (raw SQL on tenant tables, `truncate`,
 * writes that set the tenant column, ...).
 *
 * @example
 * ```ts
 * throw new UnsafeQueryError('Cannot run raw SQL on tenant table "documents". Use the query builder or allowRaw.');
 * ```
 */
export class UnsafeQueryError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('UNSAFE_QUERY', 500, 'Unsafe query refused', message, {
      ...options,
      expose: options?.expose ?? false,
    });
  }
}

/**
 * `TENANCY_CONFIG_INVALID`: configuration rejected at start-up. Thrown by
 * config loading and factories; the message says what to change.
 *
 * @example
 * ```ts
 * throw new TenancyConfigError('Cannot use strategy "cookie" because it is unknown. Use header, jwt_claim, subdomain or path.');
 * ```
 */
export class TenancyConfigError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANCY_CONFIG_INVALID', 500, 'Invalid tenancy configuration', message, {
      ...options,
      expose: options?.expose ?? false,
    });
  }
}

/**
 * 500 `TENANT_PROVISIONING_FAILED`: creating a tenant's schema/database or
 * running its migrations failed; the tenant is marked `provisioning_failed`.
 *
 * @example
 * ```ts
 * throw new TenantProvisioningError('Cannot provision tenant "acme" because migration 002 failed. Fix it and retry.');
 * ```
 */
export class TenantProvisioningError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_PROVISIONING_FAILED', 500, 'Tenant provisioning failed', message, {
      ...options,
      expose: options?.expose ?? false,
    });
  }
}

/**
 * 409 `TENANT_STATE_INVALID`: a lifecycle transition is not allowed from the
 * tenant's current status (e.g. activating a deleted tenant).
 *
 * @example
 * ```ts
 * throw new TenantStateError('Cannot activate tenant "acme" because it is deleted.');
 * ```
 */
export class TenantStateError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_STATE_INVALID', 409, 'Invalid tenant state', message, options);
  }
}

/**
 * 500 `TENANT_PURGE_FAILED`: deleting a tenant's rows, schema or database
 * failed, or some were still there afterwards. The tenant stays `deleted`
 * (never served, its id not reusable) and the purge can be run again.
 *
 * @example
 * ```ts
 * throw new TenantPurgeError('Cannot purge tenant "acme" because public.documents still holds 2 rows. Run the purge again.');
 * ```
 */
export class TenantPurgeError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_PURGE_FAILED', 500, 'Tenant purge failed', message, {
      expose: false,
      ...options,
    });
  }
}

/**
 * 401 `AUTHENTICATION_REQUIRED`: the route demands an authenticated user
 * (`requireTenant({ requireUser: true })`) and the request carried none.
 *
 * @example
 * ```ts
 * throw new AuthenticationRequiredError();
 * ```
 */
export class AuthenticationRequiredError extends TenancyError {
  constructor(
    message = 'Cannot serve this request because it is not authenticated. Send a bearer token.',
    options?: TenancyErrorOptions,
  ) {
    super('AUTHENTICATION_REQUIRED', 401, 'Authentication required', message, options);
  }
}

/**
 * 500 `TENANT_RESOLUTION_FAILED`: a resolution strategy, membership check or
 * user lookup failed with something other than a `TenancyError` (a bug in a
 * custom strategy, a thrown plain `Error`). The request is refused; the
 * process keeps serving. The original error is the `cause` (logged, never
 * rendered).
 *
 * @example
 * ```ts
 * throw new TenantResolutionError('Cannot resolve the tenant because strategy "cookie" failed.', { cause });
 * ```
 */
export class TenantResolutionError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_RESOLUTION_FAILED', 500, 'Tenant resolution failed', message, {
      expose: false,
      ...options,
    });
  }
}

/**
 * 503 `TOKEN_KEYS_UNAVAILABLE`: the signing keys of a token's issuer could
 * not be fetched (its JWKS endpoint is down, slow or answers garbage), so the
 * token can be neither accepted nor refused. Retry later; a `Retry-After`
 * is not promised.
 *
 * @example
 * ```ts
 * throw new TokenKeysUnavailableError('Cannot verify the bearer token because the keys of its issuer cannot be fetched. Retry later.');
 * ```
 */
export class TokenKeysUnavailableError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TOKEN_KEYS_UNAVAILABLE', 503, 'Token keys unavailable', message, {
      expose: true,
      ...options,
    });
  }
}

/**
 * 500 `TENANT_MOVE_FAILED`: an online move of a tenant between tiers or
 * servers stopped (a step failed, the target is down, the verification
 * found a difference). The tenant is served from the source; the move's
 * record says what is left to roll back.
 *
 * @example
 * ```ts
 * throw new TenantMoveError('Cannot move tenant "acme" because the target server is down. The tenant stays on its source.');
 * ```
 */
export class TenantMoveError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_MOVE_FAILED', 500, 'Tenant move failed', message, options);
  }
}

/**
 * 409 `DOMAIN_VERIFICATION_FAILED`: a tenant's custom domain could not be
 * verified (the DNS TXT record or HTTP token is missing or wrong), so it
 * stays unverified and does not resolve.
 *
 * @example
 * ```ts
 * throw new DomainVerificationError('Cannot verify app.acme-corp.com because its TXT record is missing.');
 * ```
 */
export class DomainVerificationError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('DOMAIN_VERIFICATION_FAILED', 409, 'Domain not verified', message, options);
  }
}

/**
 * 400 `REQUEST_INVALID`: the request cannot be read safely as HTTP defines
 * it, e.g. so many headers that the parser may have dropped some (a
 * conflicting `X-Tenant-ID` among them).
 *
 * @example
 * ```ts
 * throw new RequestInvalidError('Cannot resolve a tenant because the request has 2000 or more headers.');
 * ```
 */
export class RequestInvalidError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('REQUEST_INVALID', 400, 'Invalid request', message, options);
  }
}

/**
 * 403 `SESSION_TENANT_MISMATCH`: a session signed in to one tenant was
 * presented on another tenant's host or path (a replayed or shared cookie).
 * The session is refused, never re-bound to the new tenant.
 *
 * @example
 * ```ts
 * throw new SessionTenantMismatchError('Cannot use this session for tenant "globex" because it was signed in to another tenant. Sign in on this tenant.');
 * ```
 */
export class SessionTenantMismatchError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('SESSION_TENANT_MISMATCH', 403, 'Session belongs to another tenant', message, options);
  }
}

/**
 * 400 `SESSION_INVALID`: the session's tenant binding is not a tenant id (a
 * tampered or corrupted session store entry), so the session can be neither
 * trusted nor compared. Nothing is re-bound; sign out to start afresh.
 *
 * @example
 * ```ts
 * throw new SessionInvalidError('Cannot use this session because its tenant binding is not a tenant id. Sign out and sign in again.');
 * ```
 */
export class SessionInvalidError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('SESSION_INVALID', 400, 'Invalid session', message, options);
  }
}

/**
 * 503 `UPGRADE_TIMEOUT`: resolving the tenant of a WebSocket upgrade took
 * longer than its `timeoutMs` (a strategy or the tenant store did not
 * answer), so the upgrade is refused instead of holding the socket open.
 *
 * @example
 * ```ts
 * throw new UpgradeTimeoutError('Cannot accept this WebSocket connection because resolving its tenant took more than 5000 ms. Retry later.');
 * ```
 */
export class UpgradeTimeoutError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('UPGRADE_TIMEOUT', 503, 'Upgrade timed out', message, { expose: true, ...options });
  }
}

/**
 * 409 `TENANT_REGION_MISMATCH`: a tenant pinned to a region (data residency,
 * `isolation.region`) would be placed on a server outside it (a server with
 * another region label or none). Nothing was created or moved.
 *
 * @example
 * ```ts
 * throw new TenantRegionMismatchError('Cannot place tenant "acme" on server "us-1" because it is pinned to region "eu". Pick a server in "eu".');
 * ```
 */
export class TenantRegionMismatchError extends TenancyError {
  constructor(message: string, options?: TenancyErrorOptions) {
    super('TENANT_REGION_MISMATCH', 409, 'Tenant region mismatch', message, options);
  }
}
