import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TenancyConfigError,
  loadTenancyConfig,
  parseTenancyConfig,
  tenancyConfigFromEnv,
} from '../../src/index';

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';

function configError(fn: () => unknown): TenancyConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(TenancyConfigError);
    expect((error as TenancyConfigError).code).to.equal('TENANCY_CONFIG_INVALID');
    return error as TenancyConfigError;
  }
  throw new Error('expected a TenancyConfigError');
}

describe('loadTenancyConfig()', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tenantry-config-'));
  });

  it('fills every default from an empty object', () => {
    const { tenancy } = loadTenancyConfig({ tenancy: {} });
    expect(tenancy.resolution.strategy).to.deep.equal(['header']);
    expect(tenancy.resolution.header).to.equal('X-Tenant-ID');
    expect(tenancy.resolution.required).to.equal(false);
    expect(tenancy.resolution.path).to.deep.equal({ prefix: '/api/v1', stripTenantSegment: true });
    expect(tenancy.isolation).to.deep.equal({
      mode: 'row',
      tiers: false,
      tenantColumn: 'tenant_id',
      tenantTables: [],
      sharedTables: [],
      rls: false,
      schemaPrefix: 'tenant_',
      database: { maxPools: 20, connectionBudget: 100, idleTimeoutMs: 60_000, prefix: 'tenant_' },
    });
    expect(tenancy.cache).to.deep.equal({ ttlMs: 30_000, maxEntries: 1000, negativeTtlMs: 5000 });
  });

  it('accepts the seed shape with and without the outer tenancy key', () => {
    const inner = {
      resolution: {
        strategy: ['jwt_claim', 'header'],
        jwt: { secret: SECRET, algorithms: ['HS256'] },
      },
      isolation: { mode: 'schema' as const },
    };
    const a = loadTenancyConfig({ tenancy: inner });
    const b = loadTenancyConfig(inner);
    expect(a).to.deep.equal(b);
    expect(a.tenancy.resolution.strategy).to.deep.equal(['jwt_claim', 'header']);
    expect(a.tenancy.resolution.jwt).to.include({
      claim: 'tid',
      tenantsClaim: 'tenants',
      clockTolerance: 0,
    });
    expect(a.tenancy.isolation.mode).to.equal('schema');
  });

  it('is idempotent: a parsed config parses to an equal config', () => {
    const once = parseTenancyConfig({
      resolution: {
        strategy: 'subdomain',
        domain: 'Lexigram.DEV',
        jwt: { secret: SECRET, algorithms: 'HS256,HS512', audience: 'api' },
      },
    });
    expect(once.tenancy.resolution.domain).to.equal('lexigram.dev');
    expect(parseTenancyConfig(once)).to.deep.equal(once);
  });

  it('loads a YAML file', () => {
    const file = join(dir, 'tenancy.yaml');
    writeFileSync(
      file,
      [
        'tenancy:',
        '  resolution:',
        '    strategy: subdomain',
        '    domain: lexigram.dev',
        '  isolation:',
        '    mode: row',
        '    tenantTables: [documents, comments]',
        '    sharedTables: [plans]',
        '    rls: true',
        '  cache:',
        '    ttlMs: 10000',
      ].join('\n'),
    );
    const { tenancy } = loadTenancyConfig({ file });
    expect(tenancy.resolution.strategy).to.deep.equal(['subdomain']);
    expect(tenancy.resolution.domain).to.equal('lexigram.dev');
    expect(tenancy.isolation.tenantTables).to.deep.equal(['documents', 'comments']);
    expect(tenancy.isolation.rls).to.equal(true);
    expect(tenancy.cache).to.deep.equal({ ttlMs: 10_000, maxEntries: 1000, negativeTtlMs: 5000 });
  });

  it('loads a JSON file and lets environment variables override it', () => {
    const file = join(dir, 'tenancy.json');
    writeFileSync(
      file,
      JSON.stringify({
        tenancy: { resolution: { strategy: ['jwt_claim'], jwt: { algorithms: ['HS256'] } } },
      }),
    );
    const { tenancy } = loadTenancyConfig({
      file,
      env: { TENANCY_JWT_SECRET: SECRET, TENANCY_CACHE_TTL_MS: '500' },
    });
    expect(tenancy.resolution.jwt?.secret).to.equal(SECRET);
    expect(tenancy.resolution.jwt?.algorithms).to.deep.equal(['HS256']);
    expect(tenancy.cache.ttlMs).to.equal(500);
    expect(tenancy.cache.negativeTtlMs).to.equal(500);
  });

  it('loads every documented environment variable', () => {
    const env = {
      TENANCY_RESOLUTION_STRATEGY: 'jwt_claim, header ,path',
      TENANCY_DOMAIN: 'lexigram.dev',
      TENANCY_BARE_DOMAIN: 'skip',
      TENANCY_HEADER: 'X-Org',
      TENANCY_REQUIRED: 'true',
      TENANCY_JWT_SECRET: SECRET,
      TENANCY_JWT_ALGORITHMS: 'HS256',
      TENANCY_JWT_AUDIENCE: 'api,admin',
      TENANCY_JWT_ISSUER: 'https://issuer.example',
      TENANCY_JWT_CLAIM: 'sub',
      TENANCY_JWT_TENANTS_CLAIM: 'orgs',
      TENANCY_JWT_USER_CLAIM: 'uid',
      TENANCY_JWT_CLOCK_TOLERANCE: '5',
      TENANCY_PATH_PREFIX: '/t',
      TENANCY_PATH_STRIP: 'false',
      TENANCY_PROPAGATION_SECRET: `${SECRET}-old,${SECRET}`,
      TENANCY_PROPAGATION_AUDIENCE: 'billing',
      TENANCY_PROPAGATION_HEADER: 'X-Signed-Tenant',
      TENANCY_PROPAGATION_MAX_AGE_MS: '10000',
      TENANCY_PROPAGATION_FORMAT: 'jwt',
      TENANCY_ISOLATION: 'database',
      TENANCY_ISOLATION_TIERS: 'true',
      TENANCY_CENTRAL_REGION: 'eu',
      TENANCY_TENANT_COLUMN: 'org_id',
      TENANCY_TENANT_TABLES: 'documents,comments',
      TENANCY_SHARED_TABLES: 'plans',
      TENANCY_RLS: 'true',
      TENANCY_SCHEMA_PREFIX: 'org_',
      TENANCY_DB_MAX_POOLS: '5',
      TENANCY_DB_CONNECTION_BUDGET: '50',
      TENANCY_DB_IDLE_TIMEOUT_MS: '1000',
      TENANCY_DB_PREFIX: 'orgdb_',
      TENANCY_CACHE_TTL_MS: '2000',
      TENANCY_CACHE_MAX_ENTRIES: '10',
      TENANCY_CACHE_NEGATIVE_TTL_MS: '100',
      UNRELATED: 'ignored',
    };
    const { tenancy } = loadTenancyConfig({ env });
    expect(tenancy.resolution).to.deep.equal({
      strategy: ['jwt_claim', 'header', 'path'],
      domain: 'lexigram.dev',
      bareDomain: 'skip',
      header: 'X-Org',
      required: true,
      jwt: {
        secret: SECRET,
        algorithms: ['HS256'],
        audience: ['api', 'admin'],
        issuer: ['https://issuer.example'],
        clockTolerance: 5,
        claim: 'sub',
        tenantsClaim: 'orgs',
        userClaim: 'uid',
        maxTokenLength: 8192,
        jwksCacheMaxAgeMs: 600_000,
        jwksCooldownMs: 30_000,
        jwksTimeoutMs: 5_000,
      },
      path: { prefix: '/t', stripTenantSegment: false },
      propagation: {
        secret: [`${SECRET}-old`, SECRET],
        audience: 'billing',
        header: 'X-Signed-Tenant',
        maxAgeMs: 10_000,
        format: 'jwt',
      },
    });
    expect(tenancy.isolation).to.deep.equal({
      mode: 'database',
      tiers: true,
      centralRegion: 'eu',
      tenantColumn: 'org_id',
      tenantTables: ['documents', 'comments'],
      sharedTables: ['plans'],
      rls: true,
      schemaPrefix: 'org_',
      database: { maxPools: 5, connectionBudget: 50, idleTimeoutMs: 1000, prefix: 'orgdb_' },
    });
    expect(tenancy.cache).to.deep.equal({ ttlMs: 2000, maxEntries: 10, negativeTtlMs: 100 });
  });

  it('reads the database-mode placement policy: named servers and allowed secret names', () => {
    const { tenancy } = loadTenancyConfig({
      tenancy: {
        isolation: {
          database: {
            servers: {
              eu1: { host: 'pg-eu1.internal' },
              us1: { host: 'pg-us1.internal', port: 5433 },
            },
            passwordRefs: { prefix: 'TENANT_DB_PW_', allow: 'SHARED_A, SHARED_B' },
          },
        },
      },
    });
    expect(tenancy.isolation.database).to.deep.equal({
      maxPools: 20,
      connectionBudget: 100,
      idleTimeoutMs: 60_000,
      prefix: 'tenant_',
      servers: {
        eu1: { host: 'pg-eu1.internal', port: 5432 },
        us1: { host: 'pg-us1.internal', port: 5433 },
      },
      passwordRefs: { prefix: 'TENANT_DB_PW_', allow: ['SHARED_A', 'SHARED_B'] },
    });
  });

  it('reads tiered tenancy: tiers, region labels of servers and of the central server', () => {
    const { tenancy } = loadTenancyConfig({
      tenancy: {
        isolation: {
          mode: 'schema',
          tiers: true,
          centralRegion: 'eu',
          database: {
            servers: { 'eu-1': { host: 'pg-eu1', region: 'eu' }, us1: { host: 'pg-us1' } },
          },
        },
      },
    });
    expect(tenancy.isolation).to.include({ mode: 'schema', tiers: true, centralRegion: 'eu' });
    expect(tenancy.isolation.database.servers).to.deep.equal({
      'eu-1': { host: 'pg-eu1', port: 5432, region: 'eu' },
      us1: { host: 'pg-us1', port: 5432 },
    });
    const bad = (isolation: Record<string, unknown>) => () =>
      loadTenancyConfig({ tenancy: { isolation } });
    expect(bad({ tiers: 'sometimes' })).to.throw(/tenancy\.isolation\.tiers.*not a boolean/);
    expect(bad({ centralRegion: 'eu west' })).to.throw(/centralRegion.*region label/);
    expect(bad({ database: { servers: { a: { host: 'h', region: 'x/y' } } } })).to.throw(
      /servers\.a\.region.*region label/,
    );
    expect(bad({ database: { servers: { a: { host: 'h', zone: 'x' } } } })).to.throw(/zone/);
  });

  it('reads jwksUri, a list of issuers with their own keys and claim paths', () => {
    const { tenancy } = loadTenancyConfig({
      tenancy: {
        resolution: {
          strategy: 'jwt_claim',
          jwt: {
            algorithms: ['RS256'],
            audience: 'api',
            claim: 'https://example.com/claims.tenant',
            tenantsClaim: ['https://example.com/v1.0', 'tenants'],
            jwksTimeoutMs: 1000,
            issuer: [
              { issuer: 'https://a.example/', jwksUri: 'https://a.example/jwks' },
              {
                issuer: 'https://b.example',
                jwksUri: 'http://127.0.0.1:8080/jwks',
                audience: ['account'],
                algorithms: 'ES256,RS256',
              },
            ],
          },
        },
      },
    });
    expect(tenancy.resolution.jwt).to.deep.include({
      algorithms: ['RS256'],
      audience: ['api'],
      claim: 'https://example.com/claims.tenant',
      tenantsClaim: ['https://example.com/v1.0', 'tenants'],
      jwksTimeoutMs: 1000,
      jwksCooldownMs: 30_000,
      issuer: [
        {
          issuer: 'https://a.example/',
          jwksUri: 'https://a.example/jwks',
          audience: ['api'],
          algorithms: ['RS256'],
        },
        {
          issuer: 'https://b.example',
          jwksUri: 'http://127.0.0.1:8080/jwks',
          audience: ['account'],
          algorithms: ['ES256', 'RS256'],
        },
      ],
    });
    const single = loadTenancyConfig({
      env: { TENANCY_JWT_JWKS_URI: 'https://a.example/jwks', TENANCY_JWT_ALGORITHMS: 'RS256' },
    });
    expect(single.tenancy.resolution.jwt?.jwksUri).to.equal('https://a.example/jwks');
  });

  it('turns \\n escapes of TENANCY_JWT_PUBLIC_KEY into newlines', () => {
    const raw = tenancyConfigFromEnv({
      TENANCY_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\\nabc\\n',
    });
    expect(raw).to.deep.equal({
      tenancy: { resolution: { jwt: { publicKey: '-----BEGIN PUBLIC KEY-----\nabc\n' } } },
    });
  });

  describe('refuses bad config at start-up with a message saying what to change', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      [
        'an unknown strategy',
        { resolution: { strategy: 'cookie' } },
        /strategy "cookie".*Use header, jwt_claim, subdomain, path/,
      ],
      ['a duplicated strategy', { resolution: { strategy: 'header,header' } }, /twice/],
      [
        'a typo in a key',
        { resolution: { stratgy: 'header' } },
        /tenancy\.resolution\.stratgy.*not a known setting/,
      ],
      [
        'subdomain without a domain',
        { resolution: { strategy: 'subdomain' } },
        /domain is missing/,
      ],
      [
        'a domain with a scheme',
        { resolution: { strategy: 'subdomain', domain: 'https://x.dev' } },
        /not a DNS name/,
      ],
      [
        'an IP as domain',
        { resolution: { strategy: 'subdomain', domain: '10.0.0.1' } },
        /not a DNS name/,
      ],
      [
        'jwt_claim without jwt settings',
        { resolution: { strategy: 'jwt_claim' } },
        /jwt is missing/,
      ],
      [
        'jwt without algorithms',
        { resolution: { jwt: { secret: SECRET } } },
        /algorithms is missing/,
      ],
      [
        'a jwksUri over plain http to a remote host',
        { resolution: { jwt: { jwksUri: 'http://idp.example.com/jwks', algorithms: ['RS256'] } } },
        /jwksUri.*https:/,
      ],
      [
        'a jwksUri that is not a URL',
        { resolution: { jwt: { jwksUri: 'idp/jwks', algorithms: ['RS256'] } } },
        /not a URL/,
      ],
      [
        'HS256 with a jwksUri',
        { resolution: { jwt: { jwksUri: 'https://idp.example.com/jwks', algorithms: ['HS256'] } } },
        /JWKS holds public keys/,
      ],
      [
        'a jwksUri next to a publicKey',
        {
          resolution: {
            jwt: { jwksUri: 'https://idp.example.com/jwks', publicKey: 'x', algorithms: ['RS256'] },
          },
        },
        /exactly one of secret.*jwksUri/,
      ],
      [
        'a top-level key next to a list of issuers',
        {
          resolution: {
            jwt: {
              secret: SECRET,
              algorithms: ['RS256'],
              issuer: [{ issuer: 'https://a.example', jwksUri: 'https://a.example/jwks' }],
            },
          },
        },
        /Move secret\/publicKey\/jwksUri into each issuer/,
      ],
      [
        'an issuer entry without keys',
        {
          resolution: { jwt: { algorithms: ['RS256'], issuer: [{ issuer: 'https://a.example' }] } },
        },
        /issuer\[0\] needs exactly one of/,
      ],
      [
        'an issuer entry without issuer',
        {
          resolution: {
            jwt: { algorithms: ['RS256'], issuer: [{ jwksUri: 'https://a.example/jwks' }] },
          },
        },
        /has no issuer/,
      ],
      [
        'a duplicated issuer',
        {
          resolution: {
            jwt: {
              algorithms: ['RS256'],
              issuer: [
                { issuer: 'https://a.example', jwksUri: 'https://a.example/jwks' },
                { issuer: 'https://a.example', jwksUri: 'https://a.example/jwks2' },
              ],
            },
          },
        },
        /twice/,
      ],
      [
        'a typo in an issuer entry',
        {
          resolution: {
            jwt: {
              algorithms: ['RS256'],
              issuer: [{ issuer: 'https://a.example', jwks_uri: 'https://a.example/jwks' }],
            },
          },
        },
        /issuer\[0\]\.jwks_uri.*not a known setting/,
      ],
      [
        'an empty claim path segment',
        { resolution: { jwt: { secret: SECRET, algorithms: ['HS256'], claim: 'org..id' } } },
        /not a claim path/,
      ],
      [
        'algorithm none',
        { resolution: { jwt: { secret: SECRET, algorithms: ['HS256', 'none'] } } },
        /"none"/,
      ],
      [
        'mixed HMAC and RSA',
        { resolution: { jwt: { secret: SECRET, algorithms: ['HS256', 'RS256'] } } },
        /Cannot mix hmac and rsa/,
      ],
      [
        'a short HMAC secret',
        { resolution: { jwt: { secret: 'short', algorithms: ['HS256'] } } },
        /shorter than 32 bytes/,
      ],
      [
        'RS256 with a secret',
        { resolution: { jwt: { secret: SECRET, algorithms: ['RS256'] } } },
        /publicKey/,
      ],
      [
        'both secret and publicKey',
        { resolution: { jwt: { secret: SECRET, publicKey: 'x', algorithms: ['HS256'] } } },
        /exactly one/,
      ],
      [
        'an unknown isolation mode',
        { isolation: { mode: 'shard' } },
        /mode="shard".*row, schema, database/,
      ],
      [
        'a table in both lists',
        { isolation: { tenantTables: 'a,b', sharedTables: ['b'] } },
        /both tenant and shared/,
      ],
      [
        'a bad table name',
        { isolation: { tenantTables: ['docs; drop'] } },
        /not a plain lower-case table name/,
      ],
      ['a negative ttl', { cache: { ttlMs: -1 } }, /ttlMs=-1.*integer >= 0/],
      ['a non-numeric env number', { cache: { maxEntries: 'lots' } }, /maxEntries="lots"/],
      [
        'a budget smaller than the pools',
        { isolation: { database: { maxPools: 10, connectionBudget: 5 } } },
        /Raise connectionBudget/,
      ],
      [
        'a tenant server without a host',
        { isolation: { database: { servers: { eu1: { port: 5432 } } } } },
        /server "eu1".*has no host/,
      ],
      [
        'a tenant server name with a space',
        { isolation: { database: { servers: { 'eu 1': { host: 'h' } } } } },
        /server name "eu 1"/,
      ],
      [
        'an unknown passwordRefs key',
        { isolation: { database: { passwordRefs: { suffix: '_PW' } } } },
        /passwordRefs.suffix/,
      ],
      [
        'the Authorization header as tenant header',
        { resolution: { header: 'Authorization' } },
        /dedicated header/,
      ],
      [
        'a path prefix with a parameter',
        { resolution: { path: { prefix: '/api/:version' } } },
        /not a literal path segment/,
      ],
      ['extra top-level keys', { tenancy: {}, other: 1 }, /next to "tenancy"/],
    ];
    for (const [name, input, message] of cases) {
      it(`refuses ${name}`, () => {
        expect(configError(() => loadTenancyConfig(input as never)).message).to.match(message);
      });
    }

    it('refuses a YAML file with a syntax error, naming the file', () => {
      const file = join(dir, 'broken.yaml');
      writeFileSync(file, 'tenancy:\n  resolution: [unclosed\n');
      expect(configError(() => loadTenancyConfig({ file })).message).to.match(
        /broken\.yaml.*Fix the syntax/,
      );
    });

    it('refuses a missing file and an unknown extension', () => {
      expect(
        configError(() => loadTenancyConfig({ file: join(dir, 'nope.yaml') })).message,
      ).to.match(/Check the path/);
      const file = join(dir, 'tenancy.toml');
      writeFileSync(file, '');
      expect(configError(() => loadTenancyConfig({ file })).message).to.match(
        /\.json, \.yaml or \.yml/,
      );
    });
  });
});
