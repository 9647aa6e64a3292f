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
export type TenantStrategyName =
  'header' | 'jwt_claim' | 'subdomain' | 'path' | 'domain' | 'propagated';

/** Every built-in strategy name, in documentation order. */
export const TENANT_STRATEGY_NAMES: readonly TenantStrategyName[] = Object.freeze([
  'header',
  'jwt_claim',
  'subdomain',
  'path',
  'domain',
  'propagated',
]);

/** The isolation modes. */
export type IsolationMode = 'row' | 'schema' | 'database';

/** What the subdomain strategy does with the bare configured domain (no tenant label). */
export type BareDomainPolicy = 'refuse' | 'skip';

/**
 * One allow-listed token issuer with its own keys, in `tenancy.resolution.jwt.issuer`:
 *
 * ```yaml
 * jwt:
 *   algorithms: [RS256]
 *   audience: https://api.example.com
 *   issuer:
 *     - issuer: https://acme.eu.auth0.com/
 *       jwksUri: https://acme.eu.auth0.com/.well-known/jwks.json
 *     - issuer: https://sso.example.com/realms/app
 *       jwksUri: https://sso.example.com/realms/app/protocol/openid-connect/certs
 *       audience: account
 * ```
 */
export interface TenancyJwtIssuerConfigInput {
  /** The exact `iss` of this issuer's tokens. Required. */
  readonly issuer?: string | undefined;
  /** JWKS URL of the issuer (`https:`, or `http:` on loopback). Exactly one of `jwksUri`/`publicKey`/`secret`. */
  readonly jwksUri?: string | undefined;
  /** PEM public key of the issuer. */
  readonly publicKey?: string | undefined;
  /** HMAC secret of the issuer (at least 32 bytes). */
  readonly secret?: string | undefined;
  /** Required `aud` value(s) of its tokens. Default: the jwt `audience`. */
  readonly audience?: string | readonly string[] | undefined;
  /** Accepted algorithms. Default: the jwt `algorithms`. */
  readonly algorithms?: readonly string[] | string | undefined;
}

/** A validated issuer entry (defaults from the jwt section filled in). */
export interface TenancyJwtIssuerConfig {
  readonly issuer: string;
  readonly jwksUri?: string | undefined;
  readonly publicKey?: string | undefined;
  readonly secret?: string | undefined;
  readonly audience?: readonly string[] | undefined;
  readonly algorithms: readonly string[];
}

/**
 * A claim path: `tid`, `org.id`, or a namespaced claim
 * `https://example.com/claims.tenant` (everything up to the first dot after
 * the last `/` is one key); a list of keys for anything else.
 */
export type TenancyClaimPath = string | readonly string[];

/** JWT verification settings of the `jwt_claim` strategy. */
export interface TenancyJwtConfigInput {
  /** HMAC secret (HS256/384/512), at least 32 bytes. Exactly one of `secret`/`publicKey`/`jwksUri` (single issuer). */
  readonly secret?: string | undefined;
  /** PEM public key (RS*, PS*, ES*). */
  readonly publicKey?: string | undefined;
  /**
   * URL of the issuer's JWKS (`https:`; `http:` only on a loopback host):
   * keys cached and picked by `kid`, rotation picked up without a restart.
   */
  readonly jwksUri?: string | undefined;
  /** Accepted algorithms. Required, never `none`, one key family per static key, no HS* with a JWKS. */
  readonly algorithms?: readonly string[] | string | undefined;
  /** Required `aud` value(s). Default: not checked. */
  readonly audience?: string | readonly string[] | undefined;
  /**
   * Required `iss` value(s) of the one key above, or a list of issuers with
   * their own keys ({@link TenancyJwtIssuerConfigInput}): a token's `iss`
   * picks its issuer, any other `iss` is 401. Default: not checked.
   */
  readonly issuer?: string | readonly string[] | readonly TenancyJwtIssuerConfigInput[] | undefined;
  /** Seconds of clock skew tolerated for `exp`/`nbf`. Default: `0`. */
  readonly clockTolerance?: number | undefined;
  /** Claim path of the tenant id. Default: `tid`. */
  readonly claim?: TenancyClaimPath | undefined;
  /** Claim path of the array of tenant ids the user belongs to. Default: `tenants`. */
  readonly tenantsClaim?: TenancyClaimPath | undefined;
  /** Claim path of the user id. Default: `sub`. */
  readonly userClaim?: TenancyClaimPath | undefined;
  /** Longest accepted token, in characters. Default: `8192`. */
  readonly maxTokenLength?: number | undefined;
  /** How long a fetched JWKS is used, in ms. Default: `600000`. */
  readonly jwksCacheMaxAgeMs?: number | undefined;
  /** Least time between two JWKS fetches caused by an unknown `kid`, in ms. Default: `30000`. */
  readonly jwksCooldownMs?: number | undefined;
  /** How long a JWKS fetch may take before the request gets 503, in ms. Default: `5000`. */
  readonly jwksTimeoutMs?: number | undefined;
}

/** Validated JWT settings. */
export interface TenancyJwtConfig {
  /** HMAC secret, when HS* algorithms are used with one key. */
  readonly secret?: string | undefined;
  /** PEM public key, when RS/PS/ES algorithms are used with one key. */
  readonly publicKey?: string | undefined;
  /** JWKS URL of the one issuer. */
  readonly jwksUri?: string | undefined;
  /** Accepted algorithms (non-empty); the default of each issuer entry. */
  readonly algorithms: readonly string[];
  /** Required `aud` value(s), if any; the default of each issuer entry. */
  readonly audience?: readonly string[] | undefined;
  /** Required `iss` value(s) of the one key, or the allow-listed issuers with their own keys. */
  readonly issuer?: readonly string[] | readonly TenancyJwtIssuerConfig[] | undefined;
  /** Seconds of clock skew tolerated. */
  readonly clockTolerance: number;
  /** Claim path of the tenant id. */
  readonly claim: TenancyClaimPath;
  /** Claim path of the array of member tenant ids. */
  readonly tenantsClaim: TenancyClaimPath;
  /** Claim path of the user id. */
  readonly userClaim: TenancyClaimPath;
  /** Longest accepted token, in characters. */
  readonly maxTokenLength: number;
  /** JWKS cache lifetime, in ms. */
  readonly jwksCacheMaxAgeMs: number;
  /** JWKS refetch cooldown, in ms. */
  readonly jwksCooldownMs: number;
  /** JWKS fetch timeout, in ms. */
  readonly jwksTimeoutMs: number;
}

/** Settings of the `path` strategy. */
export interface TenancyPathConfigInput {
  /** Literal path before the tenant segment (`<prefix>/:tenant/...`). Default: `/api/v1`. */
  readonly prefix?: string | undefined;
  /**
   * Whether downstream routes see the URL without the tenant segment
   * (`/api/v1/acme/docs` → `/api/v1/docs`). Default: `true`. With `false` the
   * URL is left alone and routes mount under `/api/v1/:tenant`.
   */
  readonly stripTenantSegment?: boolean | undefined;
}

/** Validated `path` strategy settings. */
export interface TenancyPathConfig {
  /** Literal path before the tenant segment, normalised to start with `/` and not end with one. */
  readonly prefix: string;
  /** Whether the tenant segment is removed from `req.url` for downstream routes. */
  readonly stripTenantSegment: boolean;
}

/**
 * Settings of the `propagated` strategy (a tenant signed by a calling service
 * with `propagateTenant()`), in `tenancy.resolution.propagation`:
 *
 * ```yaml
 * resolution:
 *   strategy: [propagated]
 *   propagation:
 *     audience: billing
 *     # secret: from TENANCY_PROPAGATION_SECRET, not from the file
 * ```
 */
export interface TenancyPropagationConfigInput {
  /**
   * The shared secret(s) of the calling services, each at least 32 bytes; a
   * list (or a comma-separated string) during a rotation. Required for
   * `propagated`. Prefer `TENANCY_PROPAGATION_SECRET` to a file.
   */
  readonly secret?: string | readonly string[] | undefined;
  /** This service's name, which callers sign the header for. Required for `propagated`. */
  readonly audience?: string | undefined;
  /** Header carrying the signed tenant. Default: `X-Tenant-Propagation`. */
  readonly header?: string | undefined;
  /** How long a signed header is accepted after signing, in ms. Default: `30000`. */
  readonly maxAgeMs?: number | undefined;
  /** What the header holds: `hmac` or `jwt` (HS256). Default: `hmac`. */
  readonly format?: string | undefined;
}

/** Validated `propagated` strategy settings. */
export interface TenancyPropagationConfig {
  /** The shared secrets (non-empty, each at least 32 bytes). */
  readonly secret: readonly string[];
  /** This service's name (the signed audience). */
  readonly audience: string;
  /** Header carrying the signed tenant. */
  readonly header: string;
  /** How long a signed header is accepted, in ms. */
  readonly maxAgeMs: number;
  /** What the header holds. */
  readonly format: 'hmac' | 'jwt';
}

/** The `tenancy.resolution` section as written. */
export interface TenancyResolutionConfigInput {
  /**
   * One strategy name (`header`, `jwt_claim`, `subdomain`, `path`, `domain`,
   * `propagated`), a list, or a
   * comma-separated string. Checked at load time. Default: `header`.
   */
  readonly strategy?: string | readonly string[] | undefined;
  /**
   * Domain under which `<tenant>.<domain>` hosts live, or a list of them.
   * Required for `subdomain`; the `domain` strategy skips hosts under them.
   */
  readonly domain?: string | readonly string[] | undefined;
  /**
   * What `subdomain` does with a host outside its domains: `refuse` (400
   * `HOST_INVALID`) or `skip` (for a later `domain` strategy). Default:
   * `skip` when the chain has `domain`, else `refuse`.
   */
  readonly foreignHosts?: 'refuse' | 'skip' | undefined;
  /** What the bare `domain` host resolves to. Default: `refuse` (400 `HOST_INVALID`). */
  readonly bareDomain?: BareDomainPolicy | undefined;
  /** Header read by the `header` strategy. Default: `X-Tenant-ID`. */
  readonly header?: string | undefined;
  /** JWT settings. Required for `jwt_claim`. */
  readonly jwt?: TenancyJwtConfigInput | undefined;
  /** Path settings of the `path` strategy. */
  readonly path?: TenancyPathConfigInput | undefined;
  /** Settings of the `propagated` strategy. Required for `propagated`. */
  readonly propagation?: TenancyPropagationConfigInput | undefined;
  /**
   * Whether a request naming no tenant is refused by `resolveTenant()` itself
   * (401 `TENANT_REQUIRED`). Default: `false` (continue without a tenant; put
   * `requireTenant()` on the routes that need one).
   */
  readonly required?: boolean | undefined;
}

/** Validated `tenancy.resolution`. */
export interface TenancyResolutionConfig {
  /** Strategies, in the order they run. */
  readonly strategy: readonly TenantStrategyName[];
  /** Subdomain base domain (lower case), if configured: the first of `domains`. */
  readonly domain?: string | undefined;
  /** Every subdomain base domain (lower case), when a list was configured. */
  readonly domains?: readonly string[] | undefined;
  /** What `subdomain` does with a host outside its domains, when set. */
  readonly foreignHosts?: 'refuse' | 'skip' | undefined;
  /** What the bare domain host resolves to. */
  readonly bareDomain: BareDomainPolicy;
  /** Header read by the `header` strategy. */
  readonly header: string;
  /** JWT settings, if configured. */
  readonly jwt?: TenancyJwtConfig | undefined;
  /** Path strategy settings. */
  readonly path: TenancyPathConfig;
  /** `propagated` strategy settings, if configured. */
  readonly propagation?: TenancyPropagationConfig | undefined;
  /** Whether a request naming no tenant is refused by `resolveTenant()`. */
  readonly required: boolean;
}

/** Database-mode pool settings. */
export interface TenancyDatabasePoolConfigInput {
  /** Most tenant pools kept open at once (LRU beyond). Default: `20`. */
  readonly maxPools?: number | undefined;
  /** Most connections across every tenant pool. Default: `100`. */
  readonly connectionBudget?: number | undefined;
  /** Milliseconds before an unused tenant pool is closed. Default: `60000`. */
  readonly idleTimeoutMs?: number | undefined;
  /**
   * Prefix of tenant database names in database mode (`acme` → `tenant_acme`),
   * for records that name no database: 1-21 of `[a-z0-9_]`, starting with a
   * letter or `_`. Read by the app's wiring and the `tenantry` CLI alike.
   * Default: `tenant_`.
   *
   * @example
   * ```yaml
   * isolation:
   *   mode: database
   *   database:
   *     prefix: app_tenant_
   * ```
   */
  readonly prefix?: string | undefined;
  /**
   * Servers tenant records may name (`isolation.database.server`), as
   * `{ name: { host, port, region } }`; `region` labels the server for data
   * residency. Default: none (only the base connection's server).
   */
  readonly servers?:
    | Readonly<
        Record<
          string,
          {
            readonly host?: string | undefined;
            readonly port?: number | undefined;
            readonly region?: string | undefined;
          }
        >
      >
    | undefined;
  /**
   * The only `passwordRef` names that are resolved: `{ prefix, allow }`.
   * Default: none (every `passwordRef` is refused).
   */
  readonly passwordRefs?:
    | {
        readonly prefix?: string | undefined;
        readonly allow?: readonly string[] | string | undefined;
      }
    | undefined;
}

/** Validated database-mode pool settings (`servers`, `passwordRefs` only when configured). */
export interface TenancyDatabasePoolConfig {
  readonly maxPools: number;
  readonly connectionBudget: number;
  readonly idleTimeoutMs: number;
  /** Prefix of tenant database names (see {@link TenancyDatabasePoolConfigInput.prefix}). */
  readonly prefix: string;
  readonly servers?: Readonly<
    Record<string, { readonly host: string; readonly port: number; readonly region?: string }>
  >;
  readonly passwordRefs?: { readonly prefix?: string; readonly allow: readonly string[] };
}

/** The `tenancy.isolation` section as written. */
export interface TenancyIsolationConfigInput {
  /**
   * Isolation mode: `row`, `schema` or `database`; with `tiers`, the default
   * tier of tenants whose record names none. Checked at load time. Default: `row`.
   */
  readonly mode?: string | undefined;
  /**
   * Tiered tenancy: each tenant on its record's tier (`isolation.tier`),
   * `mode` being the default (`TENANCY_ISOLATION_TIERS`). Default: `false`.
   *
   * @example
   * ```yaml
   * isolation:
   *   mode: row
   *   tiers: true
   * ```
   */
  readonly tiers?: boolean | undefined;
  /**
   * Region label of the central server (data residency): row- and
   * schema-tier tenants pinned to another region are refused
   * (`TENANCY_CENTRAL_REGION`). Default: none.
   */
  readonly centralRegion?: string | undefined;
  /** Tenant column in row mode. Default: `tenant_id`. */
  readonly tenantColumn?: string | undefined;
  /** Tables scoped per tenant. Default: `[]`. */
  readonly tenantTables?: readonly string[] | string | undefined;
  /** Tables shared by every tenant. Default: `[]`. */
  readonly sharedTables?: readonly string[] | string | undefined;
  /** Enable the PostgreSQL row-level-security backstop. Default: `false`. */
  readonly rls?: boolean | undefined;
  /** Prefix of tenant schema names in schema mode. Default: `tenant_`. */
  readonly schemaPrefix?: string | undefined;
  /** Pool settings of database mode. */
  readonly database?: TenancyDatabasePoolConfigInput | undefined;
}

/** Validated `tenancy.isolation`. */
export interface TenancyIsolationConfig {
  readonly mode: IsolationMode;
  /** Whether each tenant lives on its record's tier. */
  readonly tiers: boolean;
  /** Region label of the central server, when configured. */
  readonly centralRegion?: string;
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
  readonly ttlMs?: number | undefined;
  /** Most tenant records cached (least recently used evicted). Default: `1000`. */
  readonly maxEntries?: number | undefined;
  /** How long an unknown id is remembered as unknown, in ms. Default: `min(5000, ttlMs)`. */
  readonly negativeTtlMs?: number | undefined;
}

/** Validated `tenancy.cache`. */
export interface TenancyCacheConfig {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly negativeTtlMs: number;
}

/**
 * `tenancy.database` as written: the central database, for the tenantry CLI
 * (your app connects its own Knex).
 *
 * @example
 * ```yaml
 * tenancy:
 *   database:
 *     url: postgres://app@db.internal:5432/app
 * ```
 */
export interface TenancyDatabaseConfigInput {
  /**
   * The central database's `postgres://` URL. The CLI uses it when neither
   * `--database-url`, `--knexfile` nor `DATABASE_URL` names a database.
   * Checked at load time. Default: none.
   */
  readonly url?: string | undefined;
}

/** Validated `tenancy.database` (`url` only when configured). */
export interface TenancyDatabaseConfig {
  readonly url?: string;
}

/** The inner `tenancy` object as written. */
export interface TenancySettingsInput {
  readonly resolution?: TenancyResolutionConfigInput | undefined;
  readonly isolation?: TenancyIsolationConfigInput | undefined;
  readonly cache?: TenancyCacheConfigInput | undefined;
  readonly database?: TenancyDatabaseConfigInput | undefined;
}

/** A config as written: with or without the outer `tenancy` key. */
export type TenancyConfigInput = { readonly tenancy: TenancySettingsInput } | TenancySettingsInput;

/** The validated inner `tenancy` object. */
export interface TenancySettings {
  readonly resolution: TenancyResolutionConfig;
  readonly isolation: TenancyIsolationConfig;
  readonly cache: TenancyCacheConfig;
  readonly database: TenancyDatabaseConfig;
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
