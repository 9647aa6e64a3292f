import { expect } from 'chai';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import {
  PathStrategy,
  SubdomainStrategy,
  requireTenant,
  resolveTenant,
  type ResolveTenantOptions,
} from '../../src/index';
import { HS_SECRET, echo, hsToken, jsonErrors, testTenants } from '../support/create-app';

/**
 * The request line and Host as RFC 9112 / RFC 9110 define them, sent over raw
 * sockets (supertest and every HTTP client normalise these away).
 */

interface RawResponse {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function listen(app: Express, maxHeadersCount?: number): Promise<Server> {
  const server = app.listen(0, '127.0.0.1');
  if (maxHeadersCount !== undefined) server.maxHeadersCount = maxHeadersCount;
  await once(server, 'listening');
  return server;
}

async function raw(server: Server, lines: readonly string[]): Promise<RawResponse> {
  const { port } = server.address() as AddressInfo;
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`${[...lines, 'Connection: close'].join('\r\n')}\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'close');
  const text = Buffer.concat(chunks).toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const bodyText = text.slice(text.indexOf('\r\n\r\n') + 4);
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(bodyText) as Record<string, unknown>;
  } catch {
    body = { raw: bodyText };
  }
  return { status, body };
}

function appWith(options: Partial<ResolveTenantOptions>, routes?: (app: Express) => void): Express {
  const app = express();
  app.use(resolveTenant({ store: testTenants(), ...options }));
  if (routes) routes(app);
  else app.use(echo);
  app.use(jsonErrors);
  return app;
}

describe('request line and Host (raw sockets)', () => {
  const servers: Server[] = [];
  async function serve(app: Express, maxHeadersCount?: number): Promise<Server> {
    const server = await listen(app, maxHeadersCount);
    servers.push(server);
    return server;
  }
  after(() => {
    for (const s of servers) s.close();
  });

  describe('absolute-form targets (GET http://host/path, RFC 9112 §3.2.2)', () => {
    it('reads the path of an absolute-form target for the path strategy and strips its segment', async () => {
      const server = await serve(
        appWith({ strategies: [new PathStrategy({ prefix: '/api/v1' })] }),
      );
      const res = await raw(server, [
        'GET http://lexigram.test/api/v1/acme/documents?x=1 HTTP/1.1',
        'Host: lexigram.test',
      ]);
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ tenant: 'acme', source: 'path' });
      expect(res.body.url).to.equal('http://lexigram.test/api/v1/documents?x=1');
    });

    it('never lets /api/v1/:tenant match for a tenant that was not resolved (stripTenantSegment: false)', async () => {
      const server = await serve(
        appWith(
          { strategies: [new PathStrategy({ prefix: '/api/v1', stripTenantSegment: false })] },
          (app) => {
            app.use('/api/v1/:tenant', requireTenant({ param: 'tenant' }), echo);
          },
        ),
      );
      const res = await raw(server, [
        'GET http://lexigram.test/api/v1/globex/documents HTTP/1.1',
        'Host: lexigram.test',
      ]);
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ tenant: 'globex', current: 'globex' });
      expect(res.body.params).to.deep.equal({ tenant: 'globex' });
    });

    it('uses the authority of an absolute-form target as the host, and refuses one that contradicts Host', async () => {
      const server = await serve(
        appWith({ strategies: [new SubdomainStrategy({ domain: 'lexigram.dev' })] }),
      );
      const same = await raw(server, [
        'GET http://globex.lexigram.dev/ HTTP/1.1',
        'Host: globex.lexigram.dev',
      ]);
      expect([same.status, same.body.tenant]).to.deep.equal([200, 'globex']);
      const contradicting = await raw(server, [
        'GET http://globex.lexigram.dev/ HTTP/1.1',
        'Host: acme.lexigram.dev',
      ]);
      expect([contradicting.status, contradicting.body.code]).to.deep.equal([400, 'HOST_INVALID']);
      const userinfo = await raw(server, [
        'GET http://acme.lexigram.dev@globex.lexigram.dev/ HTTP/1.1',
        'Host: globex.lexigram.dev',
      ]);
      expect([userinfo.status, userinfo.body.code]).to.deep.equal([400, 'HOST_INVALID']);
    });
  });

  describe('route parameters naming the tenant', () => {
    it('answers 403 TENANT_CONFLICT when :tenant is not the tenant the token resolved', async () => {
      const server = await serve(
        appWith(
          { strategies: ['jwt_claim'], jwt: { algorithms: ['HS256'], secret: HS_SECRET } },
          (app) => {
            app.use('/api/v1/:tenant', requireTenant({ param: 'tenant' }), echo);
          },
        ),
      );
      const token = hsToken({ tid: 'acme' });
      const other = await raw(server, [
        'GET /api/v1/globex/documents HTTP/1.1',
        'Host: lexigram.test',
        `Authorization: Bearer ${token}`,
      ]);
      expect([other.status, other.body.code]).to.deep.equal([403, 'TENANT_CONFLICT']);
      const own = await raw(server, [
        'GET /api/v1/acme/documents HTTP/1.1',
        'Host: lexigram.test',
        `Authorization: Bearer ${token}`,
      ]);
      expect([own.status, own.body.tenant]).to.deep.equal([200, 'acme']);
    });
  });

  describe('Host', () => {
    const subdomain = () =>
      appWith({ strategies: [new SubdomainStrategy({ domain: 'lexigram.dev' }), 'header'] });

    for (const host of [
      'acme.lexigram.dev:80@globex.lexigram.dev',
      'acme.lexigram.dev:abc',
      'acme.lexigram.dev:80:81',
      'acme.lexigram.dev:99999',
      'acme.lexigram.dev globex.lexigram.dev',
    ]) {
      it(`answers 400 HOST_INVALID for Host: ${host}`, async () => {
        const server = await serve(subdomain());
        const res = await raw(server, ['GET / HTTP/1.1', `Host: ${host}`]);
        expect([res.status, res.body.code]).to.deep.equal([400, 'HOST_INVALID']);
      });
    }

    it('accepts a well-formed Host with a port', async () => {
      const server = await serve(subdomain());
      const res = await raw(server, ['GET / HTTP/1.1', 'Host: acme.lexigram.dev:8080']);
      expect([res.status, res.body.tenant]).to.deep.equal([200, 'acme']);
    });

    it('answers 400 HOST_INVALID for two Host headers, for every chain (header strategy too)', async () => {
      for (const app of [subdomain(), appWith({ strategies: ['header'] })]) {
        const server = await serve(app);
        const res = await raw(server, [
          'GET / HTTP/1.1',
          'Host: acme.lexigram.dev',
          'Host: globex.lexigram.dev',
          'X-Tenant-ID: acme',
        ]);
        expect([res.status, res.body.code]).to.deep.equal([400, 'HOST_INVALID']);
      }
    });
  });

  describe('headers dropped by the parser (maxHeadersCount)', () => {
    const filler = (n: number) => Array.from({ length: n }, (_, i) => `X-Filler-${i}: ${i}`);

    it('refuses a request whose headers reached the limit, so a conflicting X-Tenant-ID past it cannot be lost', async () => {
      const server = await serve(subdomain(), 20);
      const res = await raw(server, [
        'GET / HTTP/1.1',
        'Host: acme.lexigram.dev',
        ...filler(30),
        'X-Tenant-ID: globex',
      ]);
      expect([res.status, res.body.code]).to.deep.equal([400, 'REQUEST_INVALID']);
    });

    it('serves a request below the limit', async () => {
      const server = await serve(subdomain(), 20);
      const res = await raw(server, ['GET / HTTP/1.1', 'Host: acme.lexigram.dev', ...filler(5)]);
      expect([res.status, res.body.tenant]).to.deep.equal([200, 'acme']);
    });

    function subdomain(): Express {
      return appWith({ strategies: [new SubdomainStrategy({ domain: 'lexigram.dev' }), 'header'] });
    }
  });
});
