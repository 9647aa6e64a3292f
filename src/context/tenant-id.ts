import { TenantInvalidError } from '../errors';

/**
 * The strict pattern every tenant id must match before any lookup: a DNS
 * label in lower case (1–63 characters of `a-z`, `0-9` and inner `-`). It is
 * safe in a host name, a URL path segment and (after mapping) a PostgreSQL
 * identifier, and it can never carry SQL, paths or whitespace.
 */
export const TENANT_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The longest accepted tenant id. */
export const TENANT_ID_MAX_LENGTH = 63;

/**
 * Whether `value` is a well-formed tenant id.
 *
 * @example
 * ```ts
 * isValidTenantId('acme'); // true
 * isValidTenantId("acme';--"); // false
 * ```
 */
export function isValidTenantId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length <= TENANT_ID_MAX_LENGTH &&
    TENANT_ID_PATTERN.test(value)
  );
}

/**
 * Returns `value` if it is a well-formed tenant id, else throws a 400
 * `TENANT_INVALID`. The offending value is never echoed back in full.
 *
 * @example
 * ```ts
 * const id = assertValidTenantId(req.params.tenant);
 * ```
 */
export function assertValidTenantId(value: unknown, source = 'request'): string {
  if (isValidTenantId(value)) return value;
  throw new TenantInvalidError(
    `Cannot use the tenant id from the ${source} because it is not a valid tenant id. ` +
      'Use 1-63 lower-case letters, digits or inner hyphens.',
  );
}
