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

  describe('httpErrors option', () => {
    function httpApp(options: Parameters<typeof tenancyErrorHandler>[0]) {
      const app = express();
      app.set('env', 'test'); // Express's final handler would print the 502's stack
      app.use(express.json({ limit: 10 }));
      app.get('/documents/:id', (req, res) => {
        res.json({ id: req.params.id });
      });
      app.post('/documents', (req, res) => {
        res.json(req.body);
      });
      app.get('/boom', () => {
        throw Object.assign(new Error('upstream secret detail'), { status: 502 });
      });
      app.use(tenancyErrorHandler(options));
      return app;
    }

    it("renders Express's 400 for a malformed percent-escape as problem+json", async () => {
      const res = await request(httpApp({ httpErrors: true }))
        .get('/documents/%C0%AE')
        .expect(400);
      expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
      expect(JSON.parse(res.text)).to.deep.equal({
        type: 'urn:tenantry:problem:bad-request',
        title: 'Bad Request',
        status: 400,
        code: 'BAD_REQUEST',
        instance: '/documents/%C0%AE',
      });
    });

    it("renders body-parser's 413 and 400 with their type as code and their exposable message", async () => {
      const app = httpApp({ httpErrors: true });
      const big = await request(app)
        .post('/documents')
        .set('Content-Type', 'application/json')
        .send('{"title":"far too long"}')
        .expect(413);
      expect(JSON.parse(big.text)).to.include({
        code: 'ENTITY_TOO_LARGE',
        type: 'urn:tenantry:problem:entity-too-large',
        title: 'Payload Too Large',
        detail: 'request entity too large',
      });
      const bad = await request(app)
        .post('/documents')
        .set('Content-Type', 'application/json')
        .send('{"a":')
        .expect(400);
      expect(JSON.parse(bad.text)).to.include({ code: 'ENTITY_PARSE_FAILED', status: 400 });
    });

    it('leaves them to Express by default, and never renders a 5xx that is not a TenancyError', async () => {
      const plain = await request(httpApp({})).get('/documents/%C0%AE').expect(400);
      expect(plain.headers['content-type']).to.match(/^text\/html/);
      const boom = await request(httpApp({ httpErrors: true }))
        .get('/boom')
        .expect(502);
      expect(boom.headers['content-type']).to.match(/^text\/html/);
    });

    it('refuses a non-boolean httpErrors at factory time and accepts an explicit undefined', () => {
      expect(() => tenancyErrorHandler({ httpErrors: 'yes' as unknown as boolean })).to.throw(
        TypeError,
        /httpErrors/,
      );
      expect(() =>
        tenancyErrorHandler({ httpErrors: undefined, logger: undefined, typeBase: undefined }),
      ).not.to.throw();
    });
  });
});
