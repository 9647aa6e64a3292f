import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { isValidTenantId } from '../context/tenant-id';
import {
  AuthenticationRequiredError,
  SessionInvalidError,
  SessionTenantMismatchError,
  TenancyConfigError,
  TenantRequiredError,
} from '../errors';
import { quoteInput } from '../message-text';
import '../context/tenant-request';

/**
 * What the binding needs of a session: a mutable object on `req.session`
 * (`express-session`'s `Session` or `cookie-session`'s signed-cookie session,
 * structurally — neither is ever imported). `regenerate`, `save` and
 * `destroy` are used when present; a session without them (a signed cookie
 * holds the data itself, there is no id to fix) is cleared of its own data
 * instead.
 */
export interface TenantSession {
  [key: string]: unknown;
  regenerate?: ((callback: (err?: unknown) => void) => unknown) | undefined;
  save?: ((callback?: (err?: unknown) => void) => unknown) | undefined;
  destroy?: ((callback: (err?: unknown) => void) => unknown) | undefined;
}

/** The session property that holds the tenant a session is signed in to, by default. */
export const DEFAULT_SESSION_TENANT_KEY = 'tenantId';

/**
 * Options of {@link bindSessionToTenant}.
 *
 * @example
 * ```ts
 * app.use(bindSessionToTenant({ key: 'tenant', unbound: 'refuse' }));
 * ```
 */
export interface BindSessionToTenantOptions {
  /**
   * The session property that holds the tenant the session is signed in to.
   * Default: `'tenantId'` ({@link DEFAULT_SESSION_TENANT_KEY}).
   */
  readonly key?: string | undefined;
  /**
   * What a tenant request whose session is signed in to no tenant does:
   * `continue` (the request goes on as not signed in; `signInToTenant()`
   * binds it) or `refuse` (401 `AUTHENTICATION_REQUIRED`; mount the sign-in
   * route before this middleware). Default: `'continue'`.
   */
  readonly unbound?: 'continue' | 'refuse' | undefined;
}

/** Options of {@link signInToTenant}. */
export interface SignInToTenantOptions {
  /**
   * Give the session a new id (and drop its previous data) before binding
   * it, so an id planted before sign-in (session fixation) is worthless.
   * With a session that has no `regenerate()` (cookie-session), its data is
   * dropped instead. Default: `true`.
   */
  readonly regenerate?: boolean | undefined;
}

/** Options of {@link signOutOfTenant}. */
export interface SignOutOfTenantOptions {
  /**
   * Destroy the whole session (express-session's `destroy()`; a session
   * without one, such as cookie-session's, is emptied), rather than only
   * removing its tenant binding. Default: `true`.
   */
  readonly destroy?: boolean | undefined;
}

interface Binding {
  readonly key: string;
}

/** The binding settings of each request `bindSessionToTenant()` ran on. */
const bindings = new WeakMap<Request, Binding>();

function sessionOf(req: Request, doing: string): TenantSession {
  const session: unknown = (req as { session?: unknown }).session;
  if (typeof session !== 'object' || session === null) {
    throw new TenancyConfigError(
      `Cannot ${doing} because the request has no session. Mount express-session (app.use(session({ ... }))) before bindSessionToTenant().`,
    );
  }
  return session as TenantSession;
}

/** The tenant id bound into `session`: undefined when unbound; a tampered value is 400. */
function boundTenant(session: TenantSession, key: string): string | undefined {
  // Own properties only: a prototype-polluted default must not bind a session.
  if (!Object.prototype.hasOwnProperty.call(session, key)) return undefined;
  const value = session[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !isValidTenantId(value)) {
    throw new SessionInvalidError(
      `Cannot use this session because its ${quoteInput(key)} binding is not a tenant id. Sign out and sign in again.`,
    );
  }
  return value;
}

function requestTenant(req: Request, doing: string): string {
  const tenant = req.tenant;
  if (tenant === undefined || !tenant.isActive()) {
    throw new TenantRequiredError(
      `Cannot ${doing} because no tenant was resolved for this request. Send the tenant (host, path, header) and mount resolveTenant() first.`,
    );
  }
  return tenant.id;
}

function bindingOf(req: Request, doing: string): Binding {
  const binding = bindings.get(req);
  if (binding === undefined) {
    throw new TenancyConfigError(
      `Cannot ${doing} because bindSessionToTenant() did not run on this request. Mount it after express-session and resolveTenant(), before your routes.`,
    );
  }
  return binding;
}

function call(
  session: TenantSession,
  method: 'regenerate' | 'save' | 'destroy',
): Promise<void> | undefined {
  const fn = session[method];
  if (typeof fn !== 'function') return undefined;
  return new Promise<void>((resolve, reject) => {
    fn.call(session, (err?: unknown) => (err ? reject(toError(err)) : resolve()));
  });
}

/** Removes a session's own data (its methods and hidden metadata stay). */
function clear(session: TenantSession): void {
  for (const key of Object.keys(session)) {
    if (typeof session[key] !== 'function') delete session[key];
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Binds cookie sessions (express-session) to the tenant they were signed in
 * to. Mount it after `express-session` and `resolveTenant()`: on a request
 * with a resolved tenant, a session signed in to another tenant is refused
 * with 403 `SESSION_TENANT_MISMATCH` — tenant A's cookie replayed on tenant
 * B's host or path never acts for B, and is never re-bound to it. A session
 * whose binding is not a tenant id (tampered store data) is 400
 * `SESSION_INVALID`. A session signed in to no tenant continues (or is 401
 * with `unbound: 'refuse'`). A request without a tenant (a global route) is
 * not checked. Sign in with {@link signInToTenant}, out with
 * {@link signOutOfTenant}.
 *
 * @example
 * ```ts
 * app.use(session({ secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false }));
 * app.use(resolveTenant({ store, strategies: ['subdomain'], domain: 'example.com' }));
 * app.use(bindSessionToTenant());
 * ```
 */
export function bindSessionToTenant(options: BindSessionToTenantOptions = {}): RequestHandler {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('Cannot bind sessions to tenants because options is not an object.');
  }
  const key = options.key ?? DEFAULT_SESSION_TENANT_KEY;
  if (typeof key !== 'string' || !/^[A-Za-z_$][A-Za-z0-9_$]{0,63}$/.test(key)) {
    throw new TypeError(
      `Cannot use bindSessionToTenant({ key: ${quoteInput(String(key))} }) because it is not a plain property name. Use e.g. "tenantId".`,
    );
  }
  if (key === '__proto__' || key === 'cookie' || key === 'id') {
    throw new TypeError(
      `Cannot use bindSessionToTenant({ key: "${key}" }) because express-session uses that property. Use e.g. "tenantId".`,
    );
  }
  const unbound = options.unbound ?? 'continue';
  if (unbound !== 'continue' && unbound !== 'refuse') {
    throw new TypeError(
      'Cannot use bindSessionToTenant({ unbound }) because it is neither "continue" nor "refuse".',
    );
  }
  const binding: Binding = Object.freeze({ key });

  return function bindSessionToTenantMiddleware(
    req: Request,
    _res: Response,
    next: NextFunction,
  ): void {
    try {
      const session = sessionOf(req, 'check the session against the tenant');
      bindings.set(req, binding);
      const tenant = req.tenant;
      if (tenant === undefined || !tenant.isActive()) {
        next();
        return;
      }
      const bound = boundTenant(session, key);
      if (bound === undefined) {
        if (unbound === 'refuse') {
          throw new AuthenticationRequiredError(
            `Cannot serve this request because its session is not signed in to tenant "${tenant.id}". Sign in on this tenant.`,
          );
        }
      } else if (bound !== tenant.id) {
        // The other tenant's id is not named: the cookie's holder may not be its user.
        throw new SessionTenantMismatchError(
          `Cannot use this session for tenant "${tenant.id}" because it was signed in to another tenant. Sign in on this tenant.`,
        );
      }
    } catch (error) {
      next(error);
      return;
    }
    next();
  };
}

/**
 * Signs the request's session in to the request's tenant: by default gives
 * the session a new id first (against session fixation; the previous
 * session's data is dropped, so set your user fields after this resolves),
 * then writes the tenant into it and saves it. Call it from your sign-in
 * route, after checking the credentials, behind `bindSessionToTenant()`.
 * Rejects with 401 `TENANT_REQUIRED` without a tenant, and with 403
 * `SESSION_TENANT_MISMATCH` when `regenerate: false` and the session is
 * bound to another tenant (never re-bound).
 *
 * @example
 * ```ts
 * app.post('/login', express.urlencoded({ extended: false }), async (req, res, next) => {
 *   try {
 *     await signInToTenant(req);
 *     (req as unknown as { session: Record<string, unknown> }).session.user = 'alice';
 *     res.redirect('/');
 *   } catch (error) {
 *     next(error);
 *   }
 * });
 * ```
 */
export async function signInToTenant(
  req: Request,
  options: SignInToTenantOptions = {},
): Promise<void> {
  const { key } = bindingOf(req, 'sign in to a tenant');
  const tenantId = requestTenant(req, 'sign in to a tenant');
  const regenerate = options.regenerate ?? true;
  if (typeof regenerate !== 'boolean') {
    throw new TypeError('Cannot use signInToTenant({ regenerate }) because it is not a boolean.');
  }
  let session = sessionOf(req, 'sign in to a tenant');
  if (regenerate) {
    const renewed = call(session, 'regenerate');
    if (renewed === undefined) {
      // A signed-cookie session (cookie-session): the cookie is the data, so
      // a fresh session is an empty one; a planted cookie keeps nothing.
      clear(session);
    } else {
      await renewed;
      session = sessionOf(req, 'sign in to a tenant');
    }
  } else {
    const bound = boundTenant(session, key);
    if (bound !== undefined && bound !== tenantId) {
      throw new SessionTenantMismatchError(
        `Cannot sign this session in to tenant "${tenantId}" because it is signed in to another tenant. Sign out first.`,
      );
    }
  }
  session[key] = tenantId;
  await call(session, 'save');
}

/**
 * Signs the request's session out: destroys it (default) or only removes
 * its tenant binding (`destroy: false`). Works whatever the session holds,
 * including a binding `bindSessionToTenant()` refused as invalid, so mount a
 * sign-out route before it to let such a session be cleared.
 *
 * @example
 * ```ts
 * app.post('/logout', async (req, res, next) => {
 *   try {
 *     await signOutOfTenant(req);
 *     res.redirect('/');
 *   } catch (error) {
 *     next(error);
 *   }
 * });
 * ```
 */
export async function signOutOfTenant(
  req: Request,
  options: SignOutOfTenantOptions = {},
): Promise<void> {
  const key = bindings.get(req)?.key ?? DEFAULT_SESSION_TENANT_KEY;
  const destroy = options.destroy ?? true;
  if (typeof destroy !== 'boolean') {
    throw new TypeError('Cannot use signOutOfTenant({ destroy }) because it is not a boolean.');
  }
  const session = sessionOf(req, 'sign out');
  if (destroy) {
    const destroyed = call(session, 'destroy');
    if (destroyed !== undefined) {
      await destroyed;
      return;
    }
    // A signed-cookie session has no destroy(): emptying it is its destruction.
    clear(session);
    return;
  }
  delete session[key];
  await call(session, 'save');
}

/**
 * The tenant the request's session is signed in to, or undefined (not
 * signed in, or no `bindSessionToTenant()` on this request). Never throws:
 * a tampered binding reads as undefined.
 *
 * @example
 * ```ts
 * app.get('/me', (req, res) => res.json({ signedInTo: sessionTenantOf(req) ?? null }));
 * ```
 */
export function sessionTenantOf(req: Request): string | undefined {
  const binding = bindings.get(req);
  const session: unknown = (req as { session?: unknown }).session;
  if (binding === undefined || typeof session !== 'object' || session === null) return undefined;
  try {
    return boundTenant(session as TenantSession, binding.key);
  } catch {
    return undefined;
  }
}
