import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { TenancyConfigError } from '../errors';
import { parseTenancyConfig } from './parse-tenancy-config';
import type { TenancyConfig, TenancyConfigInput } from './tenancy-config';
import { clause, messageWithCode, quoteInput } from '../message-text';

/** The environment variables read by {@link tenancyConfigFromEnv}, and the setting each fills. */
export const TENANCY_ENV_VARIABLES: Readonly<Record<string, string>> = Object.freeze({
  TENANCY_RESOLUTION_STRATEGY: 'resolution.strategy (comma-separated, e.g. jwt_claim,header)',
  TENANCY_DOMAIN: 'resolution.domain',
  TENANCY_BARE_DOMAIN: 'resolution.bareDomain (refuse|skip)',
  TENANCY_HEADER: 'resolution.header',
  TENANCY_REQUIRED: 'resolution.required (true|false)',
  TENANCY_JWT_SECRET: 'resolution.jwt.secret',
  TENANCY_JWT_PUBLIC_KEY: 'resolution.jwt.publicKey (PEM; \\n escapes allowed)',
  TENANCY_JWT_JWKS_URI: 'resolution.jwt.jwksUri',
  TENANCY_JWT_ALGORITHMS: 'resolution.jwt.algorithms (comma-separated)',
  TENANCY_JWT_AUDIENCE: 'resolution.jwt.audience (comma-separated)',
  TENANCY_JWT_ISSUER: 'resolution.jwt.issuer (comma-separated)',
  TENANCY_JWT_CLAIM: 'resolution.jwt.claim',
  TENANCY_JWT_TENANTS_CLAIM: 'resolution.jwt.tenantsClaim',
  TENANCY_JWT_USER_CLAIM: 'resolution.jwt.userClaim',
  TENANCY_JWT_CLOCK_TOLERANCE: 'resolution.jwt.clockTolerance (seconds)',
  TENANCY_PATH_PREFIX: 'resolution.path.prefix',
  TENANCY_PATH_STRIP: 'resolution.path.stripTenantSegment (true|false)',
  TENANCY_PROPAGATION_SECRET: 'resolution.propagation.secret (comma-separated during a rotation)',
  TENANCY_PROPAGATION_AUDIENCE: 'resolution.propagation.audience',
  TENANCY_PROPAGATION_HEADER: 'resolution.propagation.header',
  TENANCY_PROPAGATION_MAX_AGE_MS: 'resolution.propagation.maxAgeMs',
  TENANCY_PROPAGATION_FORMAT: 'resolution.propagation.format (hmac|jwt)',
  TENANCY_ISOLATION: 'isolation.mode (row|schema|database)',
  TENANCY_ISOLATION_TIERS: 'isolation.tiers (true|false)',
  TENANCY_CENTRAL_REGION: 'isolation.centralRegion',
  TENANCY_TENANT_COLUMN: 'isolation.tenantColumn',
  TENANCY_TENANT_TABLES: 'isolation.tenantTables (comma-separated)',
  TENANCY_SHARED_TABLES: 'isolation.sharedTables (comma-separated)',
  TENANCY_RLS: 'isolation.rls (true|false)',
  TENANCY_SCHEMA_PREFIX: 'isolation.schemaPrefix',
  TENANCY_DB_MAX_POOLS: 'isolation.database.maxPools',
  TENANCY_DB_CONNECTION_BUDGET: 'isolation.database.connectionBudget',
  TENANCY_DB_IDLE_TIMEOUT_MS: 'isolation.database.idleTimeoutMs',
  TENANCY_DB_PREFIX: 'isolation.database.prefix',
  TENANCY_CACHE_TTL_MS: 'cache.ttlMs',
  TENANCY_CACHE_MAX_ENTRIES: 'cache.maxEntries',
  TENANCY_CACHE_NEGATIVE_TTL_MS: 'cache.negativeTtlMs',
});

type Env = Readonly<Record<string, string | undefined>>;
type Mutable = Record<string, unknown>;

function setPath(target: Mutable, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
      node = next as Mutable;
    } else {
      const created: Mutable = {};
      node[key] = created;
      node = created;
    }
  }
  node[keys[keys.length - 1] as string] = value;
}

function deepMerge(base: Mutable, over: Mutable): Mutable {
  const out: Mutable = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    const bothObjects =
      typeof value === 'object' &&
      value !== null &&
      !Array.isArray(value) &&
      typeof current === 'object' &&
      current !== null &&
      !Array.isArray(current);
    out[key] = bothObjects ? deepMerge(current as Mutable, value as Mutable) : value;
  }
  return out;
}

/**
 * Builds a raw (unvalidated) `{ tenancy: ... }` object from `TENANCY_*`
 * environment variables; see {@link TENANCY_ENV_VARIABLES}. Empty variables
 * are ignored.
 *
 * @example
 * ```ts
 * tenancyConfigFromEnv({ TENANCY_RESOLUTION_STRATEGY: 'header' });
 * // { tenancy: { resolution: { strategy: 'header' } } }
 * ```
 */
export function tenancyConfigFromEnv(env: Env = process.env): { tenancy: Mutable } {
  const tenancy: Mutable = {};
  for (const [name, description] of Object.entries(TENANCY_ENV_VARIABLES)) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const path = description.split(' ')[0] as string;
    // PEM keys rarely survive .env files with real newlines, so accept \n escapes.
    const value = name === 'TENANCY_JWT_PUBLIC_KEY' ? raw.replace(/\\n/g, '\n') : raw.trim();
    setPath(tenancy, path, value);
  }
  return { tenancy };
}

function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TenancyConfigError(
      `Cannot read tenancy config file ${quoteInput(file)} because ${messageWithCode(cause)}. Check the path.`,
      { cause },
    );
  }
  const ext = extname(file).toLowerCase();
  try {
    if (ext === '.json') return JSON.parse(text) as unknown;
    if (ext === '.yaml' || ext === '.yml') return parseYaml(text) as unknown;
  } catch (cause) {
    const reason = cause instanceof Error ? clause(cause.message.split('\n')[0] ?? '') : '';
    throw new TenancyConfigError(
      `Cannot parse tenancy config file ${quoteInput(file)} because ${reason || 'it does not parse'}. Fix the syntax.`,
      { cause },
    );
  }
  throw new TenancyConfigError(
    `Cannot read tenancy config file ${quoteInput(file)} because its extension is not .json, .yaml or .yml. Rename it.`,
  );
}

/**
 * Where {@link loadTenancyConfig} reads from: a config object; or a file
 * (`.json`, `.yaml`, `.yml`) and/or the environment, the environment winning
 * over the file (so secrets can stay out of the file).
 */
export type TenancyConfigSource =
  | TenancyConfigInput
  | {
      /** Path of a JSON or YAML config file. */
      readonly file?: string | undefined;
      /** Environment to read `TENANCY_*` from, or `true` for `process.env`. Default: not read. */
      readonly env?: Env | true | undefined;
    };

function isFileOrEnvSource(source: object): source is { file?: string; env?: Env | true } {
  const keys = Object.keys(source);
  return keys.length > 0 && keys.every((k) => k === 'file' || k === 'env');
}

/**
 * Loads and validates the tenancy config at start-up. Throws
 * {@link TenancyConfigError} with a message saying what to change. With no
 * argument, reads the `TENANCY_*` environment variables.
 *
 * @example
 * ```ts
 * const fromFile = loadTenancyConfig({ file: 'config/tenancy.yaml', env: true });
 * const fromObject = loadTenancyConfig({ tenancy: { resolution: { strategy: 'header' } } });
 * const fromEnv = loadTenancyConfig();
 * app.use(resolveTenant({ config: fromFile.tenancy.resolution, store }));
 * ```
 */
export function loadTenancyConfig(source: TenancyConfigSource = { env: true }): TenancyConfig {
  if (typeof source !== 'object' || source === null) {
    throw new TenancyConfigError(
      'Cannot load the tenancy config because the source is not an object. Pass a config, { file } or { env }.',
    );
  }
  if (!isFileOrEnvSource(source)) return parseTenancyConfig(source);
  let merged: Mutable = {};
  if (source.file !== undefined) {
    const fromFile = readConfigFile(source.file);
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new TenancyConfigError(
        `Cannot use tenancy config file ${quoteInput(source.file)} because it does not hold a map. Start it with tenancy:.`,
      );
    }
    const f = fromFile as Mutable;
    merged = { tenancy: 'tenancy' in f ? f.tenancy : f };
  }
  if (source.env !== undefined) {
    const env = source.env === true ? process.env : source.env;
    merged = deepMerge(merged, tenancyConfigFromEnv(env));
  }
  return parseTenancyConfig(Object.keys(merged).length === 0 ? { tenancy: {} } : merged);
}
