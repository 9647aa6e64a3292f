import { isIP } from 'node:net';
import { parseClaimPath } from '../context/claim-path';
import { TenancyConfigError } from '../errors';
import { DEFAULT_DATABASE_PREFIX } from '../isolation/database/tenant-database-name';
import { DEFAULT_SCHEMA_PREFIX } from '../isolation/schema/tenant-schema-name';
import { checkJwksAlgorithms, checkJwtAlgorithms, MIN_HMAC_SECRET_BYTES } from './jwt-algorithms';
import {
  TENANT_STRATEGY_NAMES,
  type IsolationMode,
  type TenancyCacheConfig,
  type TenancyConfig,
  type TenancyDatabaseConfig,
  type TenancyDatabasePoolConfig,
  type TenancyIsolationConfig,
  type TenancyJwtConfig,
  type TenancyJwtIssuerConfig,
  type TenancyPathConfig,
  type TenancyPropagationConfig,
  type TenancyResolutionConfig,
  type TenantStrategyName,
} from './tenancy-config';
import { quoteInput, quoteValue } from '../message-text';
import { MIN_PROPAGATION_SECRET_BYTES } from '../context/tenant-propagation-token';

/** The pattern a configured `domain` must match: lower-case DNS labels. */
export const DOMAIN_PATTERN =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const HEADER_NAME_PATTERN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
const TABLE_PATTERN = /^[a-z_][a-z0-9_]{0,62}(?:\.[a-z_][a-z0-9_]{0,62})?$/;
const PATH_SEGMENT_PATTERN = /^[A-Za-z0-9._~-]+$/;

type Obj = Record<string, unknown>;

function fail(message: string): never {
  throw new TenancyConfigError(message);
}

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// A key as written in a file: plain keys read as a path, anything else is quoted.
function settingName(where: string, key: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(key) ? `${where}.${key}` : `${where}[${quoteInput(key)}]`;
}

function section(value: unknown, where: string, known: readonly string[]): Obj {
  if (value === undefined || value === null) return {};
  if (!isObject(value))
    fail(`Cannot read ${where} because it is not an object. Write it as a map of settings.`);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      fail(
        `Cannot use ${settingName(where, key)} because it is not a known setting (a typo?). Use one of: ${known.join(', ')}.`,
      );
    }
  }
  return value;
}

function optString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    fail(`Cannot use ${where} because it is not a non-empty string. Set it to text or remove it.`);
  }
  return value;
}

function optBoolean(value: unknown, where: string, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return fail(
    `Cannot use ${where}=${quoteValue(value)} because it is not a boolean. Use true or false.`,
  );
}

function optInteger(value: unknown, where: string, fallback: number, min: number): number {
  if (value === undefined || value === null) return fallback;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
    fail(
      `Cannot use ${where}=${quoteValue(value)} because it is not an integer >= ${min}. Fix the number.`,
    );
  }
  return n;
}

function list(value: unknown, where: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  const items =
    typeof value === 'string'
      ? value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : value;
  if (!Array.isArray(items) || items.some((i) => typeof i !== 'string' || i.trim() === '')) {
    fail(
      `Cannot use ${where} because it is not a list of strings. Write a list or a comma-separated string.`,
    );
  }
  return items as string[];
}

function oneOf<T extends string>(
  value: unknown,
  where: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(
      `Cannot use ${where}=${quoteValue(value)} because it is not one of: ${allowed.join(', ')}. Pick one.`,
    );
  }
  return value as T;
}

const JWT_KEYS = ['secret', 'publicKey', 'jwksUri'] as const;

function jwtKeys(
  obj: Obj,
  where: string,
  algorithms: readonly string[],
): { secret?: string; publicKey?: string; jwksUri?: string } {
  const secret = optString(obj.secret, `${where}.secret`);
  const publicKey = optString(obj.publicKey, `${where}.publicKey`);
  const jwksUri = optString(obj.jwksUri, `${where}.jwksUri`);
  const given = [secret, publicKey, jwksUri].filter((k) => k !== undefined).length;
  if (given !== 1) {
    fail(
      `Cannot verify tokens because ${where} needs exactly one of secret (HS*), publicKey (RS*/PS*/ES*) or jwksUri. Set one.`,
    );
  }
  if (jwksUri !== undefined) {
    checkJwksAlgorithms(algorithms, fail, `${where}.algorithms`);
    let url: URL;
    try {
      url = new URL(jwksUri);
    } catch {
      return fail(
        `Cannot use ${where}.jwksUri=${quoteInput(jwksUri, 200)} because it is not a URL. Use the issuer's https:// JWKS URL.`,
      );
    }
    const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
      fail(
        `Cannot use ${where}.jwksUri=${quoteInput(jwksUri, 200)} because keys fetched over ${url.protocol} can be swapped in transit. Use https: (http: only on a loopback host).`,
      );
    }
    return { jwksUri };
  }
  const family = checkJwtAlgorithms(algorithms, fail, `${where}.algorithms`);
  if (family === 'hmac' && secret === undefined) {
    fail(
      `Cannot verify HS* tokens with a publicKey. Set ${where}.secret, or use RS*/ES* algorithms.`,
    );
  }
  if (family !== 'hmac' && publicKey === undefined) {
    fail(
      `Cannot verify ${algorithms.join('/')} tokens with a secret. Set ${where}.publicKey (PEM).`,
    );
  }
  if (secret !== undefined && Buffer.byteLength(secret) < MIN_HMAC_SECRET_BYTES) {
    fail(
      `Cannot use ${where}.secret because it is shorter than ${MIN_HMAC_SECRET_BYTES} bytes. Use a longer random secret.`,
    );
  }
  return secret !== undefined ? { secret } : { publicKey: publicKey as string };
}

function claimPathSetting(
  value: unknown,
  where: string,
  fallback: string,
): string | readonly string[] {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'string' && value.trim() !== '' && parseClaimPath(value) !== undefined) {
    return value;
  }
  if (Array.isArray(value) && parseClaimPath(value) !== undefined) {
    return Object.freeze([...(value as string[])]);
  }
  return fail(
    `Cannot use ${where}=${quoteValue(value)} because it is not a claim path. Use e.g. "tid", "org.id" or "https://example.com/claims.tenant".`,
  );
}

function parseIssuers(
  raw: readonly unknown[],
  algorithms: readonly string[],
  audience: readonly string[] | undefined,
): readonly TenancyJwtIssuerConfig[] {
  if (raw.length === 0)
    fail('Cannot use an empty tenancy.resolution.jwt.issuer list. List at least one issuer.');
  const seen = new Set<string>();
  return Object.freeze(
    raw.map((item, index) => {
      const where = `tenancy.resolution.jwt.issuer[${index}]`;
      if (!isObject(item)) {
        fail(
          `Cannot read ${where} because it is not an object, and the other entries are. Write every issuer as { issuer, jwksUri | publicKey | secret }.`,
        );
      }
      const entry = section(item, where, ['issuer', ...JWT_KEYS, 'audience', 'algorithms']);
      const issuer = optString(entry.issuer, `${where}.issuer`);
      if (issuer === undefined)
        fail(
          `Cannot use ${where} because it has no issuer. Set issuer to the exact iss of its tokens.`,
        );
      if (seen.has(issuer))
        fail(
          `Cannot list issuer ${quoteInput(issuer, 200)} twice in tenancy.resolution.jwt.issuer. Remove the duplicate.`,
        );
      seen.add(issuer);
      const own = list(entry.algorithms, `${where}.algorithms`) ?? [...algorithms];
      const aud = list(entry.audience, `${where}.audience`) ?? audience;
      return Object.freeze({
        issuer,
        ...jwtKeys(entry, where, own),
        ...(aud !== undefined ? { audience: Object.freeze([...aud]) } : {}),
        algorithms: Object.freeze(own),
      });
    }),
  );
}

function parseJwt(raw: unknown): TenancyJwtConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const jwt = section(raw, 'tenancy.resolution.jwt', [
    ...JWT_KEYS,
    'algorithms',
    'audience',
    'issuer',
    'clockTolerance',
    'claim',
    'tenantsClaim',
    'userClaim',
    'maxTokenLength',
    'jwksCacheMaxAgeMs',
    'jwksCooldownMs',
    'jwksTimeoutMs',
  ]);
  const algorithms = list(jwt.algorithms, 'tenancy.resolution.jwt.algorithms');
  if (algorithms === undefined) {
    fail(
      'Cannot verify tokens because tenancy.resolution.jwt.algorithms is missing. ' +
        'List the algorithms your issuer signs with, e.g. ["RS256"] (never "none").',
    );
  }
  const audience = list(jwt.audience, 'tenancy.resolution.jwt.audience');
  const issuerList =
    Array.isArray(jwt.issuer) && jwt.issuer.some((i) => isObject(i))
      ? (jwt.issuer as unknown[])
      : undefined;
  let keys: ReturnType<typeof jwtKeys> | undefined;
  let issuer: readonly string[] | readonly TenancyJwtIssuerConfig[] | undefined;
  if (issuerList !== undefined) {
    if (JWT_KEYS.some((k) => jwt[k] !== undefined && jwt[k] !== null)) {
      fail(
        'Cannot verify tokens with both a top-level key and a list of issuers in tenancy.resolution.jwt. Move secret/publicKey/jwksUri into each issuer.',
      );
    }
    checkJwtAlgorithms([algorithms[0]], fail, 'tenancy.resolution.jwt.algorithms'); // none, unknown
    issuer = parseIssuers(issuerList, algorithms, audience);
  } else {
    keys = jwtKeys(jwt, 'tenancy.resolution.jwt', algorithms);
    const names = list(jwt.issuer, 'tenancy.resolution.jwt.issuer');
    issuer = names !== undefined ? Object.freeze(names) : undefined;
  }
  return Object.freeze({
    ...keys,
    algorithms: Object.freeze(algorithms),
    ...(audience ? { audience: Object.freeze(audience) } : {}),
    ...(issuer ? { issuer } : {}),
    clockTolerance: optInteger(jwt.clockTolerance, 'tenancy.resolution.jwt.clockTolerance', 0, 0),
    claim: claimPathSetting(jwt.claim, 'tenancy.resolution.jwt.claim', 'tid'),
    tenantsClaim: claimPathSetting(
      jwt.tenantsClaim,
      'tenancy.resolution.jwt.tenantsClaim',
      'tenants',
    ),
    userClaim: claimPathSetting(jwt.userClaim, 'tenancy.resolution.jwt.userClaim', 'sub'),
    maxTokenLength: optInteger(
      jwt.maxTokenLength,
      'tenancy.resolution.jwt.maxTokenLength',
      8192,
      64,
    ),
    jwksCacheMaxAgeMs: optInteger(
      jwt.jwksCacheMaxAgeMs,
      'tenancy.resolution.jwt.jwksCacheMaxAgeMs',
      600_000,
      0,
    ),
    jwksCooldownMs: optInteger(
      jwt.jwksCooldownMs,
      'tenancy.resolution.jwt.jwksCooldownMs',
      30_000,
      0,
    ),
    jwksTimeoutMs: optInteger(jwt.jwksTimeoutMs, 'tenancy.resolution.jwt.jwksTimeoutMs', 5_000, 1),
  });
}

/**
 * Validates a path prefix and normalises it to `/a/b` (leading slash, no
 * trailing slash, `/` for the root).
 *
 * @example
 * ```ts
 * normalizePathPrefix('api/v1/'); // '/api/v1'
 * ```
 */
export function normalizePathPrefix(
  value: string,
  where = 'tenancy.resolution.path.prefix',
): string {
  const segments = value.split('/').filter((s) => s !== '');
  for (const s of segments) {
    if (!PATH_SEGMENT_PATTERN.test(s) || s.startsWith(':')) {
      fail(
        `Cannot use ${where}=${quoteInput(value)} because segment ${quoteInput(s)} is not a literal path segment. Use plain segments like /api/v1.`,
      );
    }
  }
  return `/${segments.join('/')}`;
}

function parsePath(raw: unknown): TenancyPathConfig {
  const path = section(raw, 'tenancy.resolution.path', ['prefix', 'stripTenantSegment']);
  const prefix = optString(path.prefix, 'tenancy.resolution.path.prefix') ?? '/api/v1';
  return Object.freeze({
    prefix: normalizePathPrefix(prefix),
    stripTenantSegment: optBoolean(
      path.stripTenantSegment,
      'tenancy.resolution.path.stripTenantSegment',
      true,
    ),
  });
}

/**
 * Validates a subdomain base domain and returns it in lower case.
 *
 * @example
 * ```ts
 * normalizeDomain('Lexigram.dev'); // 'lexigram.dev'
 * ```
 */
export function normalizeDomain(value: string, where = 'tenancy.resolution.domain'): string {
  const domain = value.trim().toLowerCase();
  if (!DOMAIN_PATTERN.test(domain) || isIP(domain) !== 0) {
    fail(
      `Cannot use ${where}=${quoteInput(value)} because it is not a DNS name. Use the bare domain tenants live under, e.g. lexigram.dev (no scheme, port or leading dot).`,
    );
  }
  return domain;
}

function parsePropagation(raw: unknown): TenancyPropagationConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const where = 'tenancy.resolution.propagation';
  const p = section(raw, where, ['secret', 'audience', 'header', 'maxAgeMs', 'format']);
  const secret = list(p.secret, `${where}.secret`);
  if (secret === undefined || secret.length === 0) {
    fail(
      `Cannot verify propagated tenants because ${where}.secret is missing. Set TENANCY_PROPAGATION_SECRET to the secret shared with the calling services.`,
    );
  }
  if (secret.some((s) => Buffer.byteLength(s, 'utf8') < MIN_PROPAGATION_SECRET_BYTES)) {
    // The secret itself is never quoted in the message.
    fail(
      `Cannot use ${where}.secret because a secret is shorter than ${MIN_PROPAGATION_SECRET_BYTES} bytes. Use a random secret of at least ${MIN_PROPAGATION_SECRET_BYTES} bytes.`,
    );
  }
  const audience = optString(p.audience, `${where}.audience`);
  if (audience === undefined) {
    fail(
      `Cannot verify propagated tenants because ${where}.audience is missing. Set it to this service's name, e.g. audience: billing.`,
    );
  }
  const header = optString(p.header, `${where}.header`) ?? 'X-Tenant-Propagation';
  if (!HEADER_NAME_PATTERN.test(header)) {
    fail(
      `Cannot use ${where}.header=${quoteInput(header)} because it is not an HTTP header name. Use e.g. X-Tenant-Propagation.`,
    );
  }
  if (['authorization', 'host', 'cookie'].includes(header.toLowerCase())) {
    fail(
      `Cannot read propagated tenants from the ${quoteInput(header)} header because it carries other data. Use a dedicated header such as X-Tenant-Propagation.`,
    );
  }
  return Object.freeze({
    secret: Object.freeze([...secret]),
    audience: audience.trim(),
    header,
    maxAgeMs: optInteger(p.maxAgeMs, `${where}.maxAgeMs`, 30_000, 1),
    format: oneOf(p.format, `${where}.format`, ['hmac', 'jwt'] as const, 'hmac'),
  });
}

function parseResolution(raw: unknown): TenancyResolutionConfig {
  const r = section(raw, 'tenancy.resolution', [
    'strategy',
    'domain',
    'domains',
    'foreignHosts',
    'bareDomain',
    'header',
    'jwt',
    'path',
    'propagation',
    'required',
  ]);
  const names = list(r.strategy, 'tenancy.resolution.strategy') ?? ['header'];
  if (names.length === 0)
    fail(
      'Cannot resolve tenants because tenancy.resolution.strategy is empty. Name at least one strategy.',
    );
  const seen = new Set<string>();
  for (const name of names) {
    if (!(TENANT_STRATEGY_NAMES as readonly string[]).includes(name)) {
      fail(
        `Cannot use strategy ${quoteInput(name)} in tenancy.resolution.strategy because it is unknown. Use ${TENANT_STRATEGY_NAMES.join(', ')}.`,
      );
    }
    if (seen.has(name))
      fail(
        `Cannot list strategy ${quoteInput(name)} twice in tenancy.resolution.strategy. Remove the duplicate.`,
      );
    seen.add(name);
  }
  const strategy = names as TenantStrategyName[];
  // `domains` is the validated form of a `domain` list (accepted so a parsed config parses again).
  const listed = Array.isArray(r.domains)
    ? r.domains
    : Array.isArray(r.domain)
      ? r.domain
      : undefined;
  const domainList =
    listed !== undefined
      ? (list(listed, 'tenancy.resolution.domain') ?? []).map((d) => normalizeDomain(d))
      : undefined;
  if (domainList !== undefined && domainList.length === 0) {
    fail(
      'Cannot use an empty tenancy.resolution.domain list. List at least one domain or remove it.',
    );
  }
  const domainRaw =
    domainList === undefined ? optString(r.domain, 'tenancy.resolution.domain') : undefined;
  const domain =
    domainList?.[0] ?? (domainRaw === undefined ? undefined : normalizeDomain(domainRaw));
  if (strategy.includes('subdomain') && domain === undefined) {
    fail(
      'Cannot use strategy "subdomain" because tenancy.resolution.domain is missing. Set it, e.g. domain: lexigram.dev.',
    );
  }
  const header = optString(r.header, 'tenancy.resolution.header') ?? 'X-Tenant-ID';
  if (!HEADER_NAME_PATTERN.test(header)) {
    fail(
      `Cannot use tenancy.resolution.header=${quoteInput(header)} because it is not an HTTP header name. Use e.g. X-Tenant-ID.`,
    );
  }
  if (['authorization', 'host', 'cookie'].includes(header.toLowerCase())) {
    fail(
      `Cannot read the tenant from the ${quoteInput(header)} header because it carries other data. Use a dedicated header such as X-Tenant-ID.`,
    );
  }
  const jwt = parseJwt(r.jwt);
  if (strategy.includes('jwt_claim') && jwt === undefined) {
    fail(
      'Cannot use strategy "jwt_claim" because tenancy.resolution.jwt is missing. Set jwt.algorithms and jwt.secret or jwt.publicKey.',
    );
  }
  const propagation = parsePropagation(r.propagation);
  if (strategy.includes('propagated') && propagation === undefined) {
    fail(
      'Cannot use strategy "propagated" because tenancy.resolution.propagation is missing. Set propagation.audience and TENANCY_PROPAGATION_SECRET.',
    );
  }
  return Object.freeze({
    strategy: Object.freeze(strategy),
    ...(domain !== undefined ? { domain } : {}),
    ...(domainList !== undefined ? { domains: Object.freeze(domainList) } : {}),
    ...(r.foreignHosts !== undefined && r.foreignHosts !== null
      ? {
          foreignHosts: oneOf(
            r.foreignHosts,
            'tenancy.resolution.foreignHosts',
            ['refuse', 'skip'] as const,
            'refuse',
          ),
        }
      : {}),
    bareDomain: oneOf(
      r.bareDomain,
      'tenancy.resolution.bareDomain',
      ['refuse', 'skip'] as const,
      'refuse',
    ),
    header,
    ...(jwt !== undefined ? { jwt } : {}),
    path: parsePath(r.path),
    ...(propagation !== undefined ? { propagation } : {}),
    required: optBoolean(r.required, 'tenancy.resolution.required', false),
  });
}

function tables(value: unknown, where: string): readonly string[] {
  const items = list(value, where) ?? [];
  for (const t of items) {
    if (!TABLE_PATTERN.test(t)) {
      fail(
        `Cannot use table ${quoteInput(t)} in ${where} because it is not a plain lower-case table name. Use [a-z0-9_], optionally schema.table.`,
      );
    }
  }
  return Object.freeze(items);
}

const SERVER_NAME = /^[A-Za-z0-9_.-]{1,63}$/;

/** A region label (data residency), when written. */
function optRegion(value: unknown, where: string): string | undefined {
  const region = optString(value, where);
  if (region !== undefined && !SERVER_NAME.test(region)) {
    fail(
      `Cannot use ${where}=${quoteInput(region)} because a region label is 1-63 of [A-Za-z0-9_.-].`,
    );
  }
  return region;
}

/** `tenancy.isolation.database.servers` and `.passwordRefs`, each only when written. */
function parsePlacementPolicy(
  db: Obj,
): Pick<TenancyDatabasePoolConfig, 'servers' | 'passwordRefs'> {
  const where = 'tenancy.isolation.database';
  const out: { -readonly [K in 'servers' | 'passwordRefs']?: TenancyDatabasePoolConfig[K] } = {};
  if (db.servers !== undefined && db.servers !== null) {
    const raw = section(
      db.servers,
      `${where}.servers`,
      Object.keys(isObject(db.servers) ? db.servers : {}),
    );
    const servers: Record<string, { host: string; port: number; region?: string }> = {};
    for (const [name, value] of Object.entries(raw)) {
      if (!SERVER_NAME.test(name)) {
        fail(
          `Cannot use server name ${quoteInput(name)} in ${where}.servers because it is not 1-63 of [A-Za-z0-9_.-].`,
        );
      }
      const server = section(value, `${where}.servers.${name}`, ['host', 'port', 'region']);
      const host = optString(server.host, `${where}.servers.${name}.host`);
      if (host === undefined)
        fail(
          `Cannot use server ${quoteInput(name)} in ${where}.servers because it has no host. Set host.`,
        );
      const port = optInteger(server.port, `${where}.servers.${name}.port`, 5432, 1);
      if (port > 65535)
        fail(`Cannot use ${where}.servers.${name}.port=${port} because it is above 65535.`);
      const region = optRegion(server.region, `${where}.servers.${name}.region`);
      servers[name] = Object.freeze({ host, port, ...(region !== undefined ? { region } : {}) });
    }
    out.servers = Object.freeze(servers);
  }
  if (db.passwordRefs !== undefined && db.passwordRefs !== null) {
    const refs = section(db.passwordRefs, `${where}.passwordRefs`, ['prefix', 'allow']);
    const prefix = optString(refs.prefix, `${where}.passwordRefs.prefix`);
    const allow = Object.freeze(list(refs.allow, `${where}.passwordRefs.allow`) ?? []);
    out.passwordRefs = Object.freeze({ ...(prefix !== undefined ? { prefix } : {}), allow });
  }
  return out;
}

// What tenantSchemaName()/tenantDatabaseName() accept, so a bad prefix fails at load time.
const NAME_PREFIX_PATTERN = /^[a-z_][a-z0-9_]{0,20}$/;

/** A schema or database name prefix. */
function namePrefix(value: unknown, where: string, fallback: string): string {
  const prefix = optString(value, where) ?? fallback;
  if (!NAME_PREFIX_PATTERN.test(prefix)) {
    fail(
      `Cannot use ${where}=${quoteInput(prefix)} because it is not 1-21 of [a-z0-9_] starting with a letter or _.`,
    );
  }
  return prefix;
}

function parseIsolation(raw: unknown): TenancyIsolationConfig {
  const i = section(raw, 'tenancy.isolation', [
    'mode',
    'tiers',
    'centralRegion',
    'tenantColumn',
    'tenantTables',
    'sharedTables',
    'rls',
    'schemaPrefix',
    'database',
  ]);
  const mode = oneOf<IsolationMode>(
    i.mode,
    'tenancy.isolation.mode',
    ['row', 'schema', 'database'],
    'row',
  );
  const tenantColumn = optString(i.tenantColumn, 'tenancy.isolation.tenantColumn') ?? 'tenant_id';
  if (!IDENTIFIER_PATTERN.test(tenantColumn)) {
    fail(
      `Cannot use tenancy.isolation.tenantColumn=${quoteInput(tenantColumn)} because it is not a plain lower-case column name.`,
    );
  }
  const tenantTables = tables(i.tenantTables, 'tenancy.isolation.tenantTables');
  const sharedTables = tables(i.sharedTables, 'tenancy.isolation.sharedTables');
  const both = tenantTables.filter((t) => sharedTables.includes(t));
  if (both.length > 0) {
    fail(
      `Cannot list ${both.join(', ')} as both tenant and shared tables. Keep each table in one list.`,
    );
  }
  const schemaPrefix = namePrefix(
    i.schemaPrefix,
    'tenancy.isolation.schemaPrefix',
    DEFAULT_SCHEMA_PREFIX,
  );
  const db = section(i.database, 'tenancy.isolation.database', [
    'maxPools',
    'connectionBudget',
    'idleTimeoutMs',
    'prefix',
    'servers',
    'passwordRefs',
  ]);
  const databasePrefix = namePrefix(
    db.prefix,
    'tenancy.isolation.database.prefix',
    DEFAULT_DATABASE_PREFIX,
  );
  const maxPools = optInteger(db.maxPools, 'tenancy.isolation.database.maxPools', 20, 1);
  const connectionBudget = optInteger(
    db.connectionBudget,
    'tenancy.isolation.database.connectionBudget',
    100,
    1,
  );
  if (connectionBudget < maxPools) {
    fail(
      `Cannot give ${maxPools} pools a budget of ${connectionBudget} connections because each pool needs at least one. Raise connectionBudget or lower maxPools.`,
    );
  }
  const centralRegion = optRegion(i.centralRegion, 'tenancy.isolation.centralRegion');
  return Object.freeze({
    mode,
    tiers: optBoolean(i.tiers, 'tenancy.isolation.tiers', false),
    ...(centralRegion !== undefined ? { centralRegion } : {}),
    tenantColumn,
    tenantTables,
    sharedTables,
    rls: optBoolean(i.rls, 'tenancy.isolation.rls', false),
    schemaPrefix,
    database: Object.freeze({
      maxPools,
      connectionBudget,
      idleTimeoutMs: optInteger(
        db.idleTimeoutMs,
        'tenancy.isolation.database.idleTimeoutMs',
        60_000,
        0,
      ),
      prefix: databasePrefix,
      ...parsePlacementPolicy(db),
    }),
  });
}

function parseCache(raw: unknown): TenancyCacheConfig {
  const c = section(raw, 'tenancy.cache', ['ttlMs', 'maxEntries', 'negativeTtlMs']);
  const ttlMs = optInteger(c.ttlMs, 'tenancy.cache.ttlMs', 30_000, 0);
  return Object.freeze({
    ttlMs,
    maxEntries: optInteger(c.maxEntries, 'tenancy.cache.maxEntries', 1000, 1),
    negativeTtlMs: optInteger(
      c.negativeTtlMs,
      'tenancy.cache.negativeTtlMs',
      Math.min(5000, ttlMs),
      0,
    ),
  });
}

/**
 * Validates a tenancy config object (with or without the outer `tenancy`
 * key) and returns it frozen with every default filled in. Throws
 * {@link TenancyConfigError} naming the setting to change. Idempotent: a
 * parsed config parses to an equal config.
 *
 * @example
 * ```ts
 * const config = parseTenancyConfig({ tenancy: { resolution: { strategy: 'subdomain', domain: 'lexigram.dev' } } });
 * config.tenancy.isolation.mode; // 'row'
 * ```
 */
export function parseTenancyConfig(input: unknown): TenancyConfig {
  if (!isObject(input))
    fail('Cannot read the tenancy config because it is not an object. Pass { tenancy: { ... } }.');
  const inner = 'tenancy' in input ? input.tenancy : input;
  if (isObject(input) && 'tenancy' in input && Object.keys(input).length > 1) {
    const others = Object.keys(input).filter((k) => k !== 'tenancy');
    fail(
      `Cannot use top-level key(s) ${others.map((k) => quoteInput(k)).join(', ')} next to "tenancy". Move them inside tenancy: or remove them.`,
    );
  }
  const t = section(inner, 'tenancy', ['resolution', 'isolation', 'cache', 'database']);
  return Object.freeze({
    tenancy: Object.freeze({
      resolution: parseResolution(t.resolution),
      isolation: parseIsolation(t.isolation),
      cache: parseCache(t.cache),
      database: parseDatabase(t.database),
    }),
  });
}

function parseDatabase(raw: unknown): TenancyDatabaseConfig {
  const d = section(raw, 'tenancy.database', ['url']);
  const url = optString(d.url, 'tenancy.database.url');
  if (url === undefined) return Object.freeze({});
  let protocol: string | undefined;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    // Never echo the value: it may hold a password.
    fail(
      'Cannot use tenancy.database.url because it is not a postgres:// URL. Write it as postgres://user@host:5432/database.',
    );
  }
  return Object.freeze({ url });
}

/**
 * Validates only a `tenancy.resolution` section.
 *
 * @example
 * ```ts
 * parseResolutionConfig({ strategy: ['jwt_claim', 'header'], jwt: { secret, algorithms: ['HS256'] } });
 * ```
 */
export function parseResolutionConfig(input: unknown): TenancyResolutionConfig {
  return parseResolution(input);
}

/**
 * Validates only a `tenancy.cache` section.
 *
 * @example
 * ```ts
 * parseCacheConfig({ ttlMs: 10_000 }).maxEntries; // 1000
 * ```
 */
export function parseCacheConfig(input: unknown): TenancyCacheConfig {
  return parseCache(input);
}
