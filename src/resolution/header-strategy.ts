import type { Request } from 'express';
import { TenancyConfigError } from '../errors';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';
import { quoteInput } from '../message-text';

/** Options of {@link HeaderStrategy}. */
export interface HeaderStrategyOptions {
  /** Header carrying the tenant id (case-insensitive). Default: `X-Tenant-ID`. */
  readonly header?: string | undefined;
}

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

/**
 * Reads the tenant id from a request header (`X-Tenant-ID` by default). The
 * header is client-controlled, so the result is untrusted: an authenticated
 * user must be a member of the tenant. A repeated header arrives joined with
 * `, ` and is refused as `TENANT_INVALID`.
 *
 * @example
 * ```ts
 * app.use(resolveTenant({ store, strategies: [new HeaderStrategy({ header: 'X-Org' })] }));
 * ```
 */
export class HeaderStrategy implements TenantResolutionStrategy {
  readonly name = 'header';
  readonly #header: string;

  constructor(options: HeaderStrategyOptions = {}) {
    const header = options.header ?? 'X-Tenant-ID';
    if (!HEADER_NAME.test(header)) {
      throw new TenancyConfigError(
        `Cannot read the tenant from header ${quoteInput(header)} because it is not an HTTP header name. Use e.g. X-Tenant-ID.`,
      );
    }
    if (['authorization', 'host', 'cookie'].includes(header.toLowerCase())) {
      throw new TenancyConfigError(
        `Cannot read the tenant from the ${quoteInput(header)} header because it carries other data. Use a dedicated header such as X-Tenant-ID.`,
      );
    }
    this.#header = header.toLowerCase();
  }

  resolve(req: Request): TenantResolution | undefined {
    const value = req.headers[this.#header];
    if (value === undefined) return undefined;
    // Node joins most repeated headers, but set-cookie-like arrays are possible for custom parsers.
    const id = Array.isArray(value) ? value.join(', ') : value;
    return { tenantId: id, trusted: false };
  }
}
