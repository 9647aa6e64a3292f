import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import express, { type Express } from 'express';
import request from 'supertest';
import {
  InMemoryTenantStore,
  MemoryNonceStore,
  TENANT_STRATEGY_NAMES,
  TenancyConfigError,
  currentTenant,
  loadTenancyConfig,
  propagateTenant,
  requireTenant,
  resolveTenant,
  runWithTenant,
  tenancyErrorHandler,
  type ResolveTenantOptions,
  type TenancyConfig,
} from '../../src/index';

const SECRET = randomBytes(32).toString('base64url');
const NEXT_SECRET = randomBytes(32).toString('base64url');
const store = new InMemoryTenantStore([{ id: 'acme' }, { id: 'globex' }]);

function service(options: Omit<ResolveTenantOptions, 'store'>): Express {
  const app = express();
  app.use(resolveTenant({ store, ...options }), requireTenant());
  app.get('/whoami', (req, res) => {
    res.json({
      tenant: currentTenant().id,
      source: req.tenant?.source,
      trusted: req.tenant?.trusted,
    });
  });
  app.use(tenancyErrorHandler());
  return app;
}

function configFromEnv(env: Record<string, string>): TenancyConfig {
  return loadTenancyConfig({ env: { TENANCY_RESOLUTION_STRATEGY: 'propagated', ...env } });
}

function configError(fn: () => unknown): TenancyConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(TenancyConfigError);
    return error as TenancyConfigError;
  }
  throw new Error('expected a TenancyConfigError');
}

describe('"propagated" as a configured strategy name', () => {
  it('is a built-in strategy name', () => {
    expect(TENANT_STRATEGY_NAMES).to.include('propagated');
  });

  it('resolves a signed propagated tenant with the secret and audience from the environment; unsigned, forged and replayed headers are 401', async () => {
    const config = configFromEnv({
      TENANCY_PROPAGATION_SECRET: SECRET,
      TENANCY_PROPAGATION_AUDIENCE: 'billing',
    });
    const app = service({ config });
    const header = runWithTenant('acme', () =>
      propagateTenant({ secret: SECRET, audience: 'billing' })(),
    );

    const ok = await request(app).get('/whoami').set(header).expect(200);
    expect(ok.body).to.deep.equal({ tenant: 'acme', source: 'propagated', trusted: true });

    const replay = await request(app).get('/whoami').set(header);
    expect([replay.status, replay.body.code]).to.deep.equal([401, 'TOKEN_INVALID']);
    const unsigned = await request(app).get('/whoami').set('X-Tenant-Propagation', 'acme');
    expect([unsigned.status, unsigned.body.code]).to.deep.equal([401, 'TOKEN_INVALID']);
    const forged = runWithTenant('acme', () =>
      propagateTenant({ secret: randomBytes(32), audience: 'billing' })(),
    );
    expect((await request(app).get('/whoami').set(forged)).status).to.equal(401);
    const otherAudience = runWithTenant('acme', () =>
      propagateTenant({ secret: SECRET, audience: 'shipping' })(),
    );
    expect((await request(app).get('/whoami').set(otherAudience)).status).to.equal(401);
    // The header the config names is the only one read: a plain X-Tenant-ID is no tenant.
    const plain = await request(app).get('/whoami').set('X-Tenant-ID', 'acme');
    expect([plain.status, plain.body.code]).to.deep.equal([401, 'TENANT_REQUIRED']);
  });

  it('reads a rotation (comma-separated secrets), the header name, the format and maxAgeMs from config', async () => {
    const config = loadTenancyConfig({
      tenancy: {
        resolution: {
          strategy: ['propagated', 'header'],
          propagation: {
            secret: [SECRET, NEXT_SECRET],
            audience: 'billing',
            header: 'X-Signed-Tenant',
            maxAgeMs: 5_000,
          },
        },
      },
    });
    const app = service({ config });
    for (const secret of [SECRET, NEXT_SECRET]) {
      const header = runWithTenant('globex', () =>
        propagateTenant({ secret, audience: 'billing', header: 'X-Signed-Tenant' })(),
      );
      const res = await request(app).get('/whoami').set(header).expect(200);
      expect(res.body).to.include({ tenant: 'globex', source: 'propagated' });
    }
    // A propagated tenant that disagrees with the header strategy is a conflict, as for any two sources.
    const header = runWithTenant('globex', () =>
      propagateTenant({ secret: SECRET, audience: 'billing', header: 'X-Signed-Tenant' })(),
    );
    const conflict = await request(app).get('/whoami').set(header).set('X-Tenant-ID', 'acme');
    expect([conflict.status, conflict.body.code]).to.deep.equal([403, 'TENANT_CONFLICT']);
  });

  it('takes the nonce store (and any field) from the propagation option, the rest from config', async () => {
    const config = configFromEnv({
      TENANCY_PROPAGATION_SECRET: SECRET,
      TENANCY_PROPAGATION_AUDIENCE: 'billing',
    });
    const nonces = new MemoryNonceStore();
    const one = service({ config, propagation: { nonces } });
    const two = service({ config, propagation: { nonces } });
    const header = runWithTenant('acme', () =>
      propagateTenant({ secret: SECRET, audience: 'billing' })(),
    );
    await request(one).get('/whoami').set(header).expect(200);
    const replay = await request(two).get('/whoami').set(header);
    expect([replay.status, replay.body.code]).to.deep.equal([401, 'TOKEN_INVALID']);
    expect(nonces.size).to.equal(1);

    const renamed = service({ config, propagation: { audience: 'invoices' } });
    const forInvoices = runWithTenant('acme', () =>
      propagateTenant({ secret: SECRET, audience: 'invoices' })(),
    );
    await request(renamed).get('/whoami').set(forInvoices).expect(200);
  });

  describe('bad configuration fails at start-up', () => {
    it('refuses "propagated" without a propagation section, naming TENANCY_PROPAGATION_SECRET', () => {
      const error = configError(() => configFromEnv({}));
      expect(error.message)
        .to.match(/propagation is missing/)
        .and.match(/TENANCY_PROPAGATION_SECRET/);
    });

    it('refuses a missing secret, a missing audience, and a short secret without quoting it', () => {
      expect(
        configError(() => configFromEnv({ TENANCY_PROPAGATION_AUDIENCE: 'billing' })).message,
      ).to.match(/secret is missing/);
      expect(
        configError(() => configFromEnv({ TENANCY_PROPAGATION_SECRET: SECRET })).message,
      ).to.match(/audience is missing/);
      const short = configError(() =>
        configFromEnv({
          TENANCY_PROPAGATION_SECRET: 'too-short-secret',
          TENANCY_PROPAGATION_AUDIENCE: 'b',
        }),
      );
      expect(short.message).to.match(/shorter than 32 bytes/);
      expect(short.message).not.to.contain('too-short-secret');
    });

    it('refuses a bad header, format, maxAgeMs and an unknown key', () => {
      const base = { TENANCY_PROPAGATION_SECRET: SECRET, TENANCY_PROPAGATION_AUDIENCE: 'billing' };
      for (const [env, pattern] of [
        [{ TENANCY_PROPAGATION_HEADER: 'Authorization' }, /carries other data/],
        [{ TENANCY_PROPAGATION_HEADER: 'X Bad' }, /not an HTTP header name/],
        [{ TENANCY_PROPAGATION_FORMAT: 'rsa' }, /format/],
        [{ TENANCY_PROPAGATION_MAX_AGE_MS: '0' }, /maxAgeMs/],
        [{ TENANCY_PROPAGATION_MAX_AGE_MS: 'soon' }, /maxAgeMs/],
      ] as const) {
        expect(configError(() => configFromEnv({ ...base, ...env })).message).to.match(pattern);
      }
      expect(
        configError(() =>
          loadTenancyConfig({
            tenancy: {
              resolution: { propagation: { secret: SECRET, audience: 'b', secrets: [] } as never },
            },
          }),
        ).message,
      ).to.match(/secrets/);
    });

    it('refuses resolveTenant({ strategies: ["propagated"] }) without secret and audience', () => {
      expect(() => resolveTenant({ store, strategies: ['propagated'] }))
        .to.throw(TenancyConfigError)
        .with.property('message')
        .that.matches(/propagation secret and audience/);
      expect(() =>
        resolveTenant({
          store,
          strategies: ['propagated'],
          propagation: { secret: SECRET, audience: 'b' },
        }),
      ).not.to.throw();
    });
  });
});
