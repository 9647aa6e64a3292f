/**
 * The typed tenancy configuration, in the seed's shape:
 *
 * ```yaml
 * tenancy:
 *   resolution:
 *     strategy: [jwt_claim, header]
 *     domain: lexigram.dev
 *   isolation:
 *     mode: row
 *   cache:
 *     ttlMs: 30000
 * ```
 *
 * `*Input` types are what a file, an object or the environment may contain
 * (every field optional); the plain types are the validated result with every
 * default filled in, as returned by `loadTenancyConfig()`.
 */

/** The names of the built-in resolution strategies. */
export type TenantStrategyName = 'header' | 'jwt_claim' | 'subdomain' | 'path';

/** Every built-in strategy name, in documentation order. */
export const TENANT_STRATEGY_NAMES: readonly TenantStrategyName[] = Object.freeze([
  'header',
  'jwt_claim',
  'subdomain',
  'path',
]);

/** The isolation modes. */
export type IsolationMode = 'row' | 'schema' | 'database';

/** What the subdomain strategy does with the bare configured domain (no tenant label). */
export type BareDomainPolicy = 'refuse' | 'skip';

/** JWT verification settings of the `jwt_claim` strategy. */
export interface TenancyJwtConfigInput {
  /** HMAC secret (HS256/384/512), at least 32 bytes. Exactly one of `secret`/`publicKey`. */
  readonly secret?: string;
  /** PEM public key (RS*, PS*, ES*). Exactly one of `secret`/`publicKey`. */
  readonly publicKey?: string;
  /** Accepted algorithms. Required, never `none`, one key family only. */
  readonly algorithms?: readonly string[] | string;
  /** Required `aud` value(s). Default: not checked. */
  readonly audience?: string | readonly string[];
  /** Required `iss` value(s). Default: not checked. */
  readonly issuer?: string | readonly string[];
  /** Seconds of clock skew tolerated for `exp`/`nbf`. Default: `0`. */
  readonly clockTolerance?: number;
  /** Claim holding the tenant id. Default: `tid`. */
  readonly claim?: string;
  /** Claim holding the array of tenant ids the user belongs to. Default: `tenants`. */
  readonly tenantsClaim?: string;
  /** Claim holding the user id. Default: `sub`. */
  readonly userClaim?: string;
  /** Longest accepted token, in characters. Default: `8192`. */
  readonly maxTokenLength?: number;
}

/** Validated JWT settings. */
export interface TenancyJwtConfig {
  /** HMAC secret, when HS* algorithms are used. */
  readonly secret?: string;
  /** PEM public key, when RS/PS/ES algorithms are used. */
  readonly publicKey?: string;
  /** Accepted algorithms (non-empty, one key family). */
  readonly algorithms: readonly string[];
  /** Required `aud` value(s), if any. */
  readonly audience?: readonly string[];
  /** Required `iss` value(s), if any. */
  readonly issuer?: readonly string[];
  /** Seconds of clock skew tolerated. */
  readonly clockTolerance: number;
  /** Claim holding the tenant id. */
  readonly claim: string;
  /** Claim holding the array of member tenant ids. */
  readonly tenantsClaim: string;
  /** Claim holding the user id. */
  readonly userClaim: string;
  /** Longest accepted token, in characters. */
  readonly maxTokenLength: number;
}

/** Settings of the `path` strategy. */
export interface TenancyPathConfigInput {
  /** Literal path before the tenant segment (`<prefix>/:tenant/...`). Default: `/api/v1`. */
  readonly prefix?: string;
  /**
   * Whether downstream routes see the URL without the tenant segment
   * (`/api/v1/acme/docs` → `/api/v1/docs`). Default: `true`. With `false` the
   * URL is left alone and routes mount under `/api/v1/:tenant`.
   */
  readonly stripTenantSegment?: boolean;
}

/** Validated `path` strategy settings. */
export interface TenancyPathConfig {
  /** Literal path before the tenant segment, normalised to start with `/` and not end with one. */
  readonly prefix: string;
  /** Whether the tenant segment is removed from `req.url` for downstream routes. */
  readonly stripTenantSegment: boolean;
}

/** The `tenancy.resolution` section as written. */
export interface TenancyResolutionConfigInput {
  /**
   * One strategy name (`header`, `jwt_claim`, `subdomain`, `path`), a list, or a
   * comma-separated string. Checked at load time. Default: `header`.
   */
  readonly strategy?: string | readonly string[];
  /** Domain under which `<tenant>.<domain>` hosts live. Required for `subdomain`. */
  readonly domain?: string;
  /** What the bare `domain` host resolves to. Default: `refuse` (400 `HOST_INVALID`). */
  readonly bareDomain?: BareDomainPolicy;
  /** Header read by the `header` strategy. Default: `X-Tenant-ID`. */
  readonly header?: string;
  /** JWT settings. Required for `jwt_claim`. */
  readonly jwt?: TenancyJwtConfigInput;
  /** Path settings of the `path` strategy. */
  readonly path?: TenancyPathConfigInput;
  /**
   * Whether a request naming no tenant is refused by `resolveTenant()` itself
   * (401 `TENANT_REQUIRED`). Default: `false` (continue without a tenant; put
   * `requireTenant()` on the routes that need one).
   */
  readonly required?: boolean;
}

/** Validated `tenancy.resolution`. */
export interface TenancyResolutionConfig {
  /** Strategies, in the order they run. */
  readonly strategy: readonly TenantStrategyName[];
  /** Subdomain base domain (lower case), if configured. */
  readonly domain?: string;
  /** What the bare domain host resolves to. */
  readonly bareDomain: BareDomainPolicy;
  /** Header read by the `header` strategy. */
  readonly header: string;
  /** JWT settings, if configured. */
  readonly jwt?: TenancyJwtConfig;
  /** Path strategy settings. */
  readonly path: TenancyPathConfig;
  /** Whether a request naming no tenant is refused by `resolveTenant()`. */
  readonly required: boolean;
}

/** Database-mode pool settings. */
export interface TenancyDatabasePoolConfigInput {
  /** Most tenant pools kept open at once (LRU beyond). Default: `20`. */
  readonly maxPools?: number;
  /** Most connections across every tenant pool. Default: `100`. */
  readonly connectionBudget?: number;
  /** Milliseconds before an unused tenant pool is closed. Default: `60000`. */
  readonly idleTimeoutMs?: number;
  /**
   * Servers tenant records may name (`isolation.database.server`), as
   * `{ name: { host, port } }`. Default: none (only the base connection's server).
   */
  readonly servers?: Readonly<Record<string, { readonly host?: string; readonly port?: number }>>;
  /**
   * The only `passwordRef` names that are resolved: `{ prefix, allow }`.
   * Default: none (every `passwordRef` is refused).
   */
  readonly passwordRefs?: { readonly prefix?: string; readonly allow?: readonly string[] | string };
}

/** Validated database-mode pool settings (`servers`, `passwordRefs` only when configured). */
export interface TenancyDatabasePoolConfig {
  readonly maxPools: number;
  readonly connectionBudget: number;
  readonly idleTimeoutMs: number;
  readonly servers?: Readonly<Record<string, { readonly host: string; readonly port: number }>>;
  readonly passwordRefs?: { readonly prefix?: string; readonly allow: readonly string[] };
}

/** The `tenancy.isolation` section as written. */
export interface TenancyIsolationConfigInput {
  /** Isolation mode: `row`, `schema` or `database`. Checked at load time. Default: `row`. */
  readonly mode?: string;
  /** Tenant column in row mode. Default: `tenant_id`. */
  readonly tenantColumn?: string;
  /** Tables scoped per tenant. Default: `[]`. */
  readonly tenantTables?: readonly string[] | string;
  /** Tables shared by every tenant. Default: `[]`. */
  readonly sharedTables?: readonly string[] | string;
  /** Enable the PostgreSQL row-level-security backstop. Default: `false`. */
  readonly rls?: boolean;
  /** Prefix of tenant schema names in schema mode. Default: `tenant_`. */
  readonly schemaPrefix?: string;
  /** Pool settings of database mode. */
  readonly database?: TenancyDatabasePoolConfigInput;
}

/** Validated `tenancy.isolation`. */
export interface TenancyIsolationConfig {
  readonly mode: IsolationMode;
  readonly tenantColumn: string;
  readonly tenantTables: readonly string[];
  readonly sharedTables: readonly string[];
  readonly rls: boolean;
  readonly schemaPrefix: string;
  readonly database: TenancyDatabasePoolConfig;
}

/** The `tenancy.cache` section as written. */
export interface TenancyCacheConfigInput {
  /** How long a tenant record is cached, in ms (the seed's `validator_cache_ttl`). Default: `30000`. */
  readonly ttlMs?: number;
  /** Most tenant records cached (least recently used evicted). Default: `1000`. */
  readonly maxEntries?: number;
  /** How long an unknown id is remembered as unknown, in ms. Default: `min(5000, ttlMs)`. */
  readonly negativeTtlMs?: number;
}

/** Validated `tenancy.cache`. */
export interface TenancyCacheConfig {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly negativeTtlMs: number;
}

/** The inner `tenancy` object as written. */
export interface TenancySettingsInput {
  readonly resolution?: TenancyResolutionConfigInput;
  readonly isolation?: TenancyIsolationConfigInput;
  readonly cache?: TenancyCacheConfigInput;
}

/** A config as written: with or without the outer `tenancy` key. */
export type TenancyConfigInput = { readonly tenancy: TenancySettingsInput } | TenancySettingsInput;

/** The validated inner `tenancy` object. */
export interface TenancySettings {
  readonly resolution: TenancyResolutionConfig;
  readonly isolation: TenancyIsolationConfig;
  readonly cache: TenancyCacheConfig;
}

/**
 * The validated tenancy configuration, every default filled in.
 *
 * @example
 * ```ts
 * const config: TenancyConfig = loadTenancyConfig({ file: 'tenancy.yaml' });
 * app.use(resolveTenant({ config: config.tenancy.resolution, store }));
 * ```
 */
export interface TenancyConfig {
  readonly tenancy: TenancySettings;
}
