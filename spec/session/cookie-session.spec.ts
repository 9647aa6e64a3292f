import { expect } from 'chai';
import cookieSession from 'cookie-session';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import request from 'supertest';
import {
  bindSessionToTenant,
  resolveTenant,
  sessionTenantOf,
  signInToTenant,
  signOutOfTenant,
  tenancyErrorHandler,
} from '../../src/index';
import { testTenants } from '../support/create-app';

type Session = Record<string, unknown>;
const sessionOf = (req: Request): Session => (req as unknown as { session: Session }).session;

function wrap(fn: (req: Request, res: Response) => Promise<void>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    fn(req, res).catch(next);
  };
}

/** A signed-cookie session app (cookie-session): the cookie holds the session data itself. */
function cookieApp(): Express {
  const app = express();
  app.use(cookieSession({ name: 'sess', keys: ['tenantry-cookie-session-key-0123456789'] }));
  // Stands for data an older release or a leaked key wrote: validly signed, wrong type.
  app.post('/corrupt', express.json(), (req, res) => {
    sessionOf(req).tenantId = (req.body as { value: unknown }).value;
    res.status(204).end();
  });
  app.use(
    resolveTenant({ store: testTenants(), strategies: ['subdomain'], domain: 'example.com' }),
  );
  app.post('/visit', (req, res) => {
    sessionOf(req).planted = 'by-someone-else';
    res.status(204).end();
  });
  app.use(bindSessionToTenant());
  app.post(
    '/login',
    wrap(async (req, res) => {
      await signInToTenant(req);
      sessionOf(req).user = 'alice';
      res.status(204).end();
    }),
  );
  app.post(
    '/logout',
    wrap(async (req, res) => {
      await signOutOfTenant(req);
      res.status(204).end();
    }),
  );
  app.get('/me', (req, res) => {
    const s = sessionOf(req);
    res.json({
      signedInTo: sessionTenantOf(req) ?? null,
      user: (s.user as string | undefined) ?? null,
      planted: (s.planted as string | undefined) ?? null,
    });
  });
  app.use(tenancyErrorHandler());
  return app;
}

/** Every `name=value` pair a response set (cookie-session sets `sess` and `sess.sig`). */
function cookies(res: request.Response): string {
  const set = (res.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
  return set.map((c) => c.split(';')[0] as string).join('; ');
}

describe('bindSessionToTenant() with signed-cookie sessions (cookie-session)', () => {
  it("refuses tenant A's signed cookie replayed on tenant B with 403 SESSION_TENANT_MISMATCH, and keeps serving A", async () => {
    const app = cookieApp();
    const cookie = cookies(
      await request(app).post('/login').set('Host', 'acme.example.com').expect(204),
    );
    const own = await request(app).get('/me').set('Host', 'acme.example.com').set('Cookie', cookie);
    expect(own.body).to.deep.equal({ signedInTo: 'acme', user: 'alice', planted: null });
    const replay = await request(app)
      .get('/me')
      .set('Host', 'globex.example.com')
      .set('Cookie', cookie);
    expect([replay.status, replay.body.code]).to.deep.equal([403, 'SESSION_TENANT_MISMATCH']);
    // The refusal rewrote nothing: the same cookie still works on A.
    expect(replay.headers['set-cookie']).to.equal(undefined);
    await request(app).get('/me').set('Host', 'acme.example.com').set('Cookie', cookie).expect(200);
  });

  it('drops the data of a cookie planted before sign-in (there is no id to regenerate)', async () => {
    const app = cookieApp();
    const planted = cookies(
      await request(app).post('/visit').set('Host', 'acme.example.com').expect(204),
    );
    const signedIn = cookies(
      await request(app)
        .post('/login')
        .set('Host', 'acme.example.com')
        .set('Cookie', planted)
        .expect(204),
    );
    const me = await request(app)
      .get('/me')
      .set('Host', 'acme.example.com')
      .set('Cookie', signedIn);
    expect(me.body).to.deep.equal({ signedInTo: 'acme', user: 'alice', planted: null });
  });

  it('signs out by emptying the cookie session', async () => {
    const app = cookieApp();
    const cookie = cookies(
      await request(app).post('/login').set('Host', 'acme.example.com').expect(204),
    );
    const out = cookies(
      await request(app)
        .post('/logout')
        .set('Host', 'acme.example.com')
        .set('Cookie', cookie)
        .expect(204),
    );
    const me = await request(app).get('/me').set('Host', 'acme.example.com').set('Cookie', out);
    expect(me.body).to.include({ signedInTo: null, user: null });
  });

  it('answers 400 SESSION_INVALID for a signed binding of the wrong type, and treats a forged cookie as no session', async () => {
    const app = cookieApp();
    for (const value of [42, ['acme'], { id: 'acme' }, 'ACME']) {
      const cookie = cookies(await request(app).post('/corrupt').send({ value }).expect(204));
      const res = await request(app)
        .get('/me')
        .set('Host', 'acme.example.com')
        .set('Cookie', cookie);
      expect([res.status, res.body.code], JSON.stringify(value)).to.deep.equal([
        400,
        'SESSION_INVALID',
      ]);
    }
    // A cookie whose data was edited without the key fails its signature: cookie-session ignores it.
    const forged = `sess=${Buffer.from(JSON.stringify({ tenantId: 'globex', user: 'mallory' })).toString('base64')}; sess.sig=forged`;
    const res = await request(app)
      .get('/me')
      .set('Host', 'globex.example.com')
      .set('Cookie', forged);
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ signedInTo: null, user: null });
  });
});
