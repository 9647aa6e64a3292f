import { expect } from 'chai';
import express from 'express';
import request from 'supertest';
import {
  TenantScopeError,
  TenantUnavailableError,
  TokenExpiredError,
  resolveTenant,
  tenancyErrorHandler,
  type TenancyLogger,
} from '../../src/index';
import { testTenants } from '../support/create-app';

function recordingLogger() {
  const lines: Array<[string, string, Record<string, unknown> | undefined]> = [];
  const logger: TenancyLogger = {
    debug: (m, f) => lines.push(['debug', m, f]),
    info: (m, f) => lines.push(['info', m, f]),
    warn: (m, f) => lines.push(['warn', m, f]),
    error: (m, f) => lines.push(['error', m, f]),
  };
  return { lines, logger };
}

describe('tenancyErrorHandler()', () => {
  it('renders a TenancyError as RFC 9457 application/problem+json', async () => {
    const app = express();
    app.use(resolveTenant({ store: testTenants() }));
    app.use(tenancyErrorHandler());
    const res = await request(app)
      .get('/api/docs?token=secret')
      .set('X-Tenant-ID', 'nobody')
      .expect(404);
    expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
    expect(res.headers['cache-control']).to.equal('no-store');
    expect(JSON.parse(res.text)).to.deep.equal({
      type: 'urn:tenantry:problem:tenant-not-found',
      title: 'Tenant not found',
      status: 404,
      detail: 'Cannot find tenant "nobody". Check the tenant id.',
      code: 'TENANT_NOT_FOUND',
      instance: '/api/docs',
    });
  });

  it('never exposes the detail of a 5xx error and logs it instead', async () => {
    const { lines, logger } = recordingLogger();
    const app = express();
    app.get('/', () => {
      throw new TenantScopeError(
        'Cannot read table secrets_internal because no tenant is active.',
        { cause: new Error('db') },
      );
    });
    app.use(tenancyErrorHandler({ logger, typeBase: 'https://docs.example/problems/' }));
    const res = await request(app).get('/').expect(500);
    const body = JSON.parse(res.text) as Record<string, unknown>;
    expect(body).to.deep.equal({
      type: 'https://docs.example/problems/tenant-scope-required',
      title: 'No tenant scope',
      status: 500,
      code: 'TENANT_SCOPE_REQUIRED',
      instance: '/',
    });
    expect(res.text).not.to.contain('secrets_internal');
    expect(lines).to.have.length(1);
    expect(lines[0]?.[0]).to.equal('error');
    expect(lines[0]?.[1]).to.contain('secrets_internal');
  });

  it('shows the detail of a 5xx error explicitly marked exposable (503 TENANT_UNAVAILABLE)', async () => {
    const app = express();
    app.get('/', () => {
      throw new TenantUnavailableError('Cannot reach the database of tenant "acme". Retry later.');
    });
    app.use(tenancyErrorHandler());
    const res = await request(app).get('/').expect(503);
    expect(JSON.parse(res.text)).to.include({
      code: 'TENANT_UNAVAILABLE',
      detail: 'Cannot reach the database of tenant "acme". Retry later.',
    });
  });

  it('adds WWW-Authenticate to token errors', async () => {
    const app = express();
    app.get('/', () => {
      throw new TokenExpiredError('Cannot accept the bearer token because it expired.');
    });
    app.use(tenancyErrorHandler());
    const res = await request(app).get('/').expect(401);
    expect(res.headers['www-authenticate']).to.equal('Bearer error="invalid_token"');
  });

  it('passes other errors to the next error handler untouched', async () => {
    const app = express();
    app.get('/', () => {
      throw new Error('database password is hunter2');
    });
    app.use(tenancyErrorHandler());
    app.use(
      (err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        res
          .status(500)
          .json({ handledBy: 'app', same: err.message === 'database password is hunter2' });
      },
    );
    const res = await request(app).get('/').expect(500);
    expect(res.body).to.deep.equal({ handledBy: 'app', same: true });
  });

  it('returns a named handler', () => {
    expect(tenancyErrorHandler().name).to.equal('tenancyErrorHandlerMiddleware');
  });
});
