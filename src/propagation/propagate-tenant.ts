import {
  propagationSecret,
  signPropagatedJwt,
  signPropagatedTenant,
  type PropagationFormat,
} from '../context/tenant-propagation-token';
import { currentTenant } from '../context/tenant-scope';

/** Options of {@link propagateTenant} and {@link propagatingFetch}. */
export interface PropagateTenantOptions {
  /** The secret shared with the receiving service, at least 32 bytes. Required. */
  readonly secret: string | Uint8Array;
  /** The receiving service's name (its `PropagatedStrategy` `audience`). Required. */
  readonly audience: string;
  /** Header carrying the signed tenant. Default: `X-Tenant-Propagation`. */
  readonly header?: string | undefined;
  /** The clock (epoch ms). Default: `Date.now`. */
  readonly now?: (() => number) | undefined;
}

/** Options of {@link propagatingFetch}: those of {@link propagateTenant}, and the format. */
export interface PropagatingFetchOptions extends PropagateTenantOptions {
  /**
   * `hmac` (the signed value of `propagateTenant()`) or `jwt` (the HS256 JWT of
   * `propagateTenantJwt()`); the receiving `PropagatedStrategy` must use the
   * same. Default: `hmac`.
   */
  readonly format?: PropagationFormat | undefined;
  /** Lifetime of a `jwt`-format token. Default: `30` s. */
  readonly ttlSeconds?: number | undefined;
}

/**
 * Builds the function that returns the header naming the current tenant,
 * signed for one receiving service (HMAC-SHA256 over tenant, time, a fresh
 * nonce and the audience): add it to any outgoing call (Axios interceptor,
 * a gRPC metadata entry). Throws 500 `TENANT_SCOPE_REQUIRED` outside a
 * tenant scope, so a call can never go out without its tenant by mistake.
 *
 * @example
 * ```ts
 * const tenantHeader = propagateTenant({ secret, audience: 'billing' });
 * axios.interceptors.request.use((config) => {
 *   Object.assign(config.headers, tenantHeader());
 *   return config;
 * });
 * ```
 */
export function propagateTenant(options: PropagateTenantOptions): () => Record<string, string> {
  if (options === undefined || options === null) {
    throw new TypeError('Cannot propagate tenants without options. Pass { secret, audience }.');
  }
  const secret = propagationSecret(options.secret, 'propagateTenant()');
  if (typeof options.audience !== 'string' || options.audience === '') {
    throw new TypeError(
      'Cannot propagate tenants without an audience. Pass audience: the receiving service name.',
    );
  }
  const audience = options.audience;
  const header = options.header ?? 'X-Tenant-Propagation';
  if (typeof header !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/.test(header)) {
    throw new TypeError(
      `Cannot propagate tenants in header ${JSON.stringify(header)} because it is not an HTTP header name.`,
    );
  }
  const now = options.now ?? Date.now;
  return function tenantPropagationHeader(): Record<string, string> {
    return { [header]: signPropagatedTenant(secret, currentTenant().id, audience, now()) };
  };
}

/**
 * Like {@link propagateTenant}, but the header holds a short-lived HS256 JWT
 * (`tid` claim, `aud`, `iat`, `exp` after `ttlSeconds`, a one-use `jti`),
 * for receivers that prefer a standard token. Verify it with
 * `new PropagatedStrategy({ format: 'jwt', ... })`.
 *
 * @example
 * ```ts
 * const tenantHeader = propagateTenantJwt({ secret, audience: 'billing', ttlSeconds: 30 });
 * const headers = await tenantHeader();
 * ```
 */
export function propagateTenantJwt(
  options: PropagateTenantOptions & { readonly ttlSeconds?: number | undefined },
): () => Promise<Record<string, string>> {
  propagateTenant(options); // the same checks of secret, audience and header
  const secret = propagationSecret(options.secret, 'propagateTenantJwt()');
  const header = options.header ?? 'X-Tenant-Propagation';
  const ttl = options.ttlSeconds ?? 30;
  if (!Number.isSafeInteger(ttl) || ttl <= 0 || ttl > 3600) {
    throw new TypeError(
      'Cannot use ttlSeconds because it is not a whole number of seconds in 1..3600.',
    );
  }
  const now = options.now ?? Date.now;
  return async function tenantPropagationJwtHeader(): Promise<Record<string, string>> {
    const tenantId = currentTenant().id;
    return { [header]: await signPropagatedJwt(secret, tenantId, options.audience, now(), ttl) };
  };
}

/**
 * Wraps `fetch` (global or undici's) so that every call made inside a
 * tenant scope carries the current tenant in the signed header of
 * {@link propagateTenant}; a header of that name set by the caller is
 * replaced. A call outside a tenant scope rejects with 500
 * `TENANT_SCOPE_REQUIRED` instead of going out without its tenant.
 *
 * @example
 * ```ts
 * const billingFetch = propagatingFetch({ secret, audience: 'billing' });
 * const invoices = await billingFetch('http://billing.internal/invoices').then((r) => r.json());
 * ```
 */
export function propagatingFetch(
  options: PropagatingFetchOptions,
  fetchImpl: typeof fetch = globalThis.fetch,
): typeof fetch {
  const format = options.format ?? 'hmac';
  if (format !== 'hmac' && format !== 'jwt') {
    throw new TypeError('Cannot use format because it is neither "hmac" nor "jwt".');
  }
  const tenantHeader: () => Record<string, string> | Promise<Record<string, string>> =
    format === 'jwt' ? propagateTenantJwt(options) : propagateTenant(options);
  if (typeof fetchImpl !== 'function') {
    throw new TypeError('Cannot wrap fetch because it is not a function.');
  }
  return async function fetchWithTenant(
    input: Parameters<typeof fetch>[0],
    init?: Parameters<typeof fetch>[1],
  ): Promise<Response> {
    const headers = new Headers(
      init?.headers ?? (input instanceof Request ? input.headers : undefined),
    );
    for (const [name, value] of Object.entries(await tenantHeader())) headers.set(name, value);
    return fetchImpl(input, { ...init, headers });
  };
}
