import type { Request } from 'express';
import { normalizePathPrefix } from '../config/parse-tenancy-config';
import { TenancyConfigError } from '../errors';
import { requestTarget } from './request-target';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';

/** Options of {@link PathStrategy}. */
export interface PathStrategyOptions {
  /**
   * Literal path before the tenant segment: URLs look like
   * `<prefix>/:tenant/...`. Matched against `req.url` where `resolveTenant()`
   * is mounted, case-insensitively like Express routes. Default: `/api/v1`.
   */
  readonly prefix?: string | undefined;
  /**
   * `true`: downstream handlers see the URL without the tenant segment
   * (`/api/v1/acme/docs` → `req.url` `/api/v1/docs`; `req.originalUrl` is
   * unchanged), so routes are written once for every tenant. `false`: the URL
   * is left alone and routes mount under `<prefix>/:tenant`. Default: `true`.
   */
  readonly stripTenantSegment?: boolean | undefined;
}

/**
 * Reads the tenant from a path segment: `/api/v1/acme/documents` names
 * `acme`. The segment is taken raw (never percent-decoded), so `%61cme`,
 * `acme%2F..` and the like fail validation with `TENANT_INVALID`. The path is
 * client-controlled: the result is untrusted.
 *
 * @example
 * ```ts
 * app.use(resolveTenant({ store, strategies: [new PathStrategy({ prefix: '/api/v1' })] }));
 * app.get('/api/v1/documents', handler); // serves GET /api/v1/acme/documents for tenant acme
 * ```
 */
export class PathStrategy implements TenantResolutionStrategy {
  readonly name = 'path';
  readonly #prefix: string;
  readonly #match: string;
  readonly #strip: boolean;

  constructor(options: PathStrategyOptions = {}) {
    const prefix = options.prefix ?? '/api/v1';
    if (typeof prefix !== 'string') {
      throw new TenancyConfigError(
        'Cannot use the path strategy prefix because it is not a string. Use e.g. "/api/v1".',
      );
    }
    this.#prefix = normalizePathPrefix(prefix, 'the path strategy prefix');
    // The root prefix matches "/<tenant>"; any other matches "<prefix>/<tenant>".
    this.#match = this.#prefix === '/' ? '/' : `${this.#prefix.toLowerCase()}/`;
    this.#strip = options.stripTenantSegment ?? true;
  }

  resolve(req: Request): TenantResolution | undefined {
    // An absolute-form target (`GET http://host/api/v1/acme/x`) is read by its path, as Express routes it.
    const { path: pathname, search, origin } = requestTarget(req);
    if (!pathname.toLowerCase().startsWith(this.#match)) return undefined;
    const afterPrefix = pathname.slice(this.#match.length);
    const slash = afterPrefix.indexOf('/');
    const segment = slash === -1 ? afterPrefix : afterPrefix.slice(0, slash);
    if (segment === '' && slash === -1) return undefined; // "<prefix>/" alone names no tenant
    const rest = slash === -1 ? '' : afterPrefix.slice(slash);
    const keptPrefix = this.#match === '/' ? '' : pathname.slice(0, this.#match.length - 1);
    return {
      tenantId: segment,
      trusted: false,
      ...(this.#strip
        ? {
            accept: (r: Request) => {
              // An absolute-form target keeps its scheme and host, as Express's router expects.
              r.url =
                origin +
                (`${keptPrefix}${rest}` === '' ? `/${search}` : `${keptPrefix}${rest}${search}`);
            },
          }
        : {}),
    };
  }
}
