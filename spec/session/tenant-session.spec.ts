import { expect } from 'chai';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import session, { MemoryStore, type SessionData } from 'express-session';
import request from 'supertest';
import {
  bindSessionToTenant,
  resolveTenant,
  sessionTenantOf,
  signInToTenant,
  signOutOfTenant,
  tenancyErrorHandler,
  type BindSessionToTenantOptions,
  type SignInToTenantOptions,
  type SignOutOfTenantOptions,
} from '../../src/index';
import { testTenants } from '../support/create-app';

const SECRET = 'tenantry-session-test-secret-0123456789';

type Strategy = 'subdomain' | 'path';

interface SessionApp {
  readonly app: Express;
  readonly sessions: MemoryStore;
}

type Session = Record<string, unknown>;
const sessionOf = (req: Request): Session => (req as unknown as { session: Session }).session;

function wrap(fn: (req: Request, res: Response) => Promise<void>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    fn(req, res).catch(next);
  };
}

/**
 * A cookie-session app: express-session (MemoryStore), resolveTenant() with the
 * given strategy, then bindSessionToTenant(), sign-in/out and a /me route.
 * `/logout-any` is mounted before the binding, so even a refused session can sign out.
 */
function sessionApp(
  strategy: Strategy,
  options: {
    bind?: BindSessionToTenantOptions;
    signIn?: SignInToTenantOptions;
    signOut?: SignOutOfTenantOptions;
  } = {},
): SessionApp {
  const sessions = new MemoryStore();
  const app = express();
  app.use(
    session({
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
      store: sessions,
      name: 'sid',
    }),
  );
  app.post(
    '/logout-any',
    wrap(async (req, res) => {
      await signOutOfTenant(req);
      res.status(204).end();
    }),
  );
  // Before resolveTenant(): a sign-in here has no tenant to bind.
  app.post(
    '/anon-login',
    bindSessionToTenant(),
    wrap(async (req, res) => {
      await signInToTenant(req);
      res.status(204).end();
    }),
  );
  app.get('/global', (req, res) => {
    res.json({ tenant: req.tenant?.id ?? null });
  });
  app.use(
    resolveTenant(
      strategy === 'subdomain'
        ? { store: testTenants(), strategies: ['subdomain'], domain: 'example.com' }
        : { store: testTenants(), strategies: ['path'] },
    ),
  );
  // The path strategy strips the tenant segment: /api/v1/acme/me is routed as /api/v1/me.
  const routes = express.Router();
  app.use(strategy === 'path' ? '/api/v1' : '/', routes);
  // A visit before sign-in that writes to the session (a cart, a return URL), so it has an id to fix.
  routes.post('/visit', (req, res) => {
    sessionOf(req).visited = true;
    res.status(204).end();
  });
  routes.use(bindSessionToTenant(options.bind));
  routes.post(
    '/login',
    wrap(async (req, res) => {
      await signInToTenant(req, options.signIn);
      sessionOf(req).user = 'alice';
      res.status(204).end();
    }),
  );
  routes.post(
    '/logout',
    wrap(async (req, res) => {
      await signOutOfTenant(req, options.signOut);
      res.status(204).end();
    }),
  );
  routes.get('/me', (req, res) => {
    const s = sessionOf(req);
    res.json({
      tenant: req.tenant?.id ?? null,
      signedInTo: sessionTenantOf(req) ?? null,
      user: (s.user as string | undefined) ?? null,
      visited: s.visited === true,
    });
  });
  app.use(tenancyErrorHandler());
  return { app, sessions };
}

/** Target of a route for a tenant: its host (subdomain) or its path prefix (path). */
function at(strategy: Strategy, tenant: string, route: string): { host: string; url: string } {
  return strategy === 'subdomain'
    ? { host: `${tenant}.example.com`, url: route }
    : { host: 'api.local', url: `/api/v1/${tenant}${route}` };
}

/** The `sid=...` cookie pair from a response's Set-Cookie. */
function sidCookie(res: request.Response): string {
  const set = res.headers['set-cookie'] as unknown as string[] | undefined;
  const cookie = set?.find((c) => c.startsWith('sid='));
  if (cookie === undefined) throw new Error('no session cookie was set');
  return cookie.split(';')[0] as string;
}

/** The session id inside a signed `sid=s:<id>.<mac>` cookie. */
function sidOf(cookie: string): string {
  const value = decodeURIComponent(cookie.slice('sid='.length));
  return value.slice(2, value.lastIndexOf('.'));
}

function storedSession(store: MemoryStore, sid: string): Promise<SessionData | null | undefined> {
  return new Promise((resolve, reject) =>
    store.get(sid, (err, data) => (err ? reject(err as Error) : resolve(data))),
  );
}

function storeSession(store: MemoryStore, sid: string, data: SessionData): Promise<void> {
  return new Promise((resolve, reject) =>
    store.set(sid, data, (err) => (err ? reject(err as Error) : resolve())),
  );
}

async function signIn(app: Express, strategy: Strategy, tenant: string): Promise<string> {
  const target = at(strategy, tenant, '/login');
  const res = await request(app).post(target.url).set('Host', target.host).expect(204);
  return sidCookie(res);
}

describe('bindSessionToTenant()', () => {
  for (const strategy of ['subdomain', 'path'] as const) {
    describe(`with the ${strategy} strategy`, () => {
      it("serves a session on the tenant it signed in to, and refuses tenant A's cookie on tenant B with 403 SESSION_TENANT_MISMATCH", async () => {
        const { app } = sessionApp(strategy);
        const agent = request.agent(app);
        const login = at(strategy, 'acme', '/login');
        await agent.post(login.url).set('Host', login.host).expect(204);

        const own = at(strategy, 'acme', '/me');
        const mine = await agent.get(own.url).set('Host', own.host).expect(200);
        expect(mine.body).to.deep.equal({
          tenant: 'acme',
          signedInTo: 'acme',
          user: 'alice',
          visited: false,
        });

        const other = at(strategy, 'globex', '/me');
        const refused = await agent.get(other.url).set('Host', other.host).expect(403);
        expect(refused.type).to.equal('application/problem+json');
        expect(refused.body).to.include({ code: 'SESSION_TENANT_MISMATCH', status: 403 });
        // The refusal names neither the session's tenant nor its user.
        expect(JSON.stringify(refused.body)).not.to.match(/acme|alice/);
      });

      it("never re-binds the replayed session: after B refused A's cookie, A still works and B still refuses", async () => {
        const { app, sessions } = sessionApp(strategy);
        const cookie = await signIn(app, strategy, 'acme');
        const b = at(strategy, 'globex', '/me');
        const a = at(strategy, 'acme', '/me');
        for (let i = 0; i < 3; i += 1) {
          const replay = await request(app).get(b.url).set('Host', b.host).set('Cookie', cookie);
          expect([replay.status, replay.body.code]).to.deep.equal([403, 'SESSION_TENANT_MISMATCH']);
        }
        // A sign-in attempt on B with A's cookie makes a new session; A's stays A's.
        const bLogin = at(strategy, 'globex', '/login');
        const onB = await request(app)
          .post(bLogin.url)
          .set('Host', bLogin.host)
          .set('Cookie', cookie);
        expect([onB.status, onB.body.code]).to.deep.equal([403, 'SESSION_TENANT_MISMATCH']);
        const stored = (await storedSession(sessions, sidOf(cookie))) as unknown as Session;
        expect(stored).to.include({ tenantId: 'acme', user: 'alice' });
        const still = await request(app).get(a.url).set('Host', a.host).set('Cookie', cookie);
        expect(still.status).to.equal(200);
        expect(still.body).to.include({ signedInTo: 'acme', user: 'alice' });
      });

      it('gives the session a new id at sign-in (session fixation), so the id planted before is not signed in', async () => {
        const { app, sessions } = sessionApp(strategy);
        const visit = at(strategy, 'acme', '/visit');
        const before = sidCookie(
          await request(app).post(visit.url).set('Host', visit.host).expect(204),
        );
        const login = at(strategy, 'acme', '/login');
        const after = sidCookie(
          await request(app).post(login.url).set('Host', login.host).set('Cookie', before),
        );
        expect(sidOf(after)).not.to.equal(sidOf(before));
        expect(await storedSession(sessions, sidOf(before))).to.equal(undefined);
        const me = at(strategy, 'acme', '/me');
        const planted = await request(app).get(me.url).set('Host', me.host).set('Cookie', before);
        expect(planted.body).to.include({ signedInTo: null, user: null });
        const fresh = await request(app).get(me.url).set('Host', me.host).set('Cookie', after);
        // The previous session's data is dropped with its id.
        expect(fresh.body).to.deep.equal({
          tenant: 'acme',
          signedInTo: 'acme',
          user: 'alice',
          visited: false,
        });
      });

      it('signs out: the session is destroyed and its cookie is signed in to nothing', async () => {
        const { app, sessions } = sessionApp(strategy);
        const cookie = await signIn(app, strategy, 'acme');
        const logout = at(strategy, 'acme', '/logout');
        await request(app)
          .post(logout.url)
          .set('Host', logout.host)
          .set('Cookie', cookie)
          .expect(204);
        expect(await storedSession(sessions, sidOf(cookie))).to.equal(undefined);
        const me = at(strategy, 'acme', '/me');
        const res = await request(app).get(me.url).set('Host', me.host).set('Cookie', cookie);
        expect(res.body).to.include({ signedInTo: null, user: null });
      });
    });
  }

  it('lets an unbound session continue by default, and refuses it with 401 AUTHENTICATION_REQUIRED with unbound: "refuse"', async () => {
    const open = sessionApp('subdomain');
    const anonymous = await request(open.app).get('/me').set('Host', 'acme.example.com');
    expect(anonymous.status).to.equal(200);
    expect(anonymous.body).to.include({ tenant: 'acme', signedInTo: null });

    const strict = sessionApp('subdomain', { bind: { unbound: 'refuse' } });
    const refused = await request(strict.app).get('/me').set('Host', 'acme.example.com');
    expect([refused.status, refused.body.code]).to.deep.equal([401, 'AUTHENTICATION_REQUIRED']);
    // A session holding data but no binding is still unbound.
    const visit = sidCookie(
      await request(strict.app).post('/visit').set('Host', 'acme.example.com').expect(204),
    );
    const stillUnbound = await request(strict.app)
      .get('/me')
      .set('Host', 'acme.example.com')
      .set('Cookie', visit);
    expect(stillUnbound.status).to.equal(401);
  });

  it('does not check requests without a tenant (global routes), and serves them a bound session', async () => {
    const { app } = sessionApp('subdomain');
    const cookie = await signIn(app, 'subdomain', 'acme');
    // /global is mounted before resolveTenant(): no tenant, nothing to compare.
    const res = await request(app)
      .get('/global')
      .set('Host', 'globex.example.com')
      .set('Cookie', cookie);
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ tenant: null });
  });

  it('with destroy: false removes only the binding, after which the session can sign in to another tenant', async () => {
    const { app, sessions } = sessionApp('subdomain', {
      signOut: { destroy: false },
      signIn: { regenerate: false },
    });
    const cookie = await signIn(app, 'subdomain', 'acme');
    await request(app)
      .post('/logout')
      .set('Host', 'acme.example.com')
      .set('Cookie', cookie)
      .expect(204);
    const stored = (await storedSession(sessions, sidOf(cookie))) as unknown as Session;
    expect(stored).not.to.have.property('tenantId');
    expect(stored).to.include({ user: 'alice' });
    await request(app)
      .post('/login')
      .set('Host', 'globex.example.com')
      .set('Cookie', cookie)
      .expect(204);
    const me = await request(app)
      .get('/me')
      .set('Host', 'globex.example.com')
      .set('Cookie', cookie);
    expect(me.body).to.include({ signedInTo: 'globex' });
  });

  it('refuses signInToTenant({ regenerate: false }) on a session bound to another tenant with 403, never re-binding it', async () => {
    // The binding runs before resolveTenant() here, so only signInToTenant() can catch the mismatch.
    const sessions = new MemoryStore();
    const app = express();
    app.use(
      session({
        secret: SECRET,
        resave: false,
        saveUninitialized: false,
        store: sessions,
        name: 'sid',
      }),
    );
    app.use(bindSessionToTenant());
    app.use(
      resolveTenant({ store: testTenants(), strategies: ['subdomain'], domain: 'example.com' }),
    );
    app.post(
      '/login',
      wrap(async (req, res) => {
        await signInToTenant(req, { regenerate: false });
        res.status(204).end();
      }),
    );
    app.use(tenancyErrorHandler());
    const cookie = sidCookie(
      await request(app).post('/login').set('Host', 'acme.example.com').expect(204),
    );
    const res = await request(app)
      .post('/login')
      .set('Host', 'globex.example.com')
      .set('Cookie', cookie);
    expect([res.status, res.body.code]).to.deep.equal([403, 'SESSION_TENANT_MISMATCH']);
    expect(await storedSession(sessions, sidOf(cookie))).to.include({ tenantId: 'acme' });
  });

  describe('bad input', () => {
    const tampered: readonly [string, unknown][] = [
      ['a number', 42],
      ['an array', ['acme']],
      ['an object', { id: 'acme' }],
      ['a boolean', true],
      ['upper case', 'ACME'],
      ['a path', '../globex'],
      ['an empty string', ''],
      ['an oversized string', 'a'.repeat(5000)],
    ];
    for (const [what, value] of tampered) {
      it(`answers 400 SESSION_INVALID for a binding that is ${what}, keeps serving, and lets it sign out`, async () => {
        const { app, sessions } = sessionApp('subdomain');
        const cookie = await signIn(app, 'subdomain', 'acme');
        const sid = sidOf(cookie);
        const stored = (await storedSession(sessions, sid)) as unknown as Session;
        await storeSession(sessions, sid, { ...stored, tenantId: value } as unknown as SessionData);

        const res = await request(app)
          .get('/me')
          .set('Host', 'acme.example.com')
          .set('Cookie', cookie);
        expect([res.status, res.body.code]).to.deep.equal([400, 'SESSION_INVALID']);
        expect(res.type).to.equal('application/problem+json');
        // Nothing was rewritten: the tampered value is still there, not re-bound.
        expect(((await storedSession(sessions, sid)) as unknown as Session).tenantId).to.deep.equal(
          value,
        );
        // The process and other sessions are fine.
        const other = await signIn(app, 'subdomain', 'globex');
        await request(app)
          .get('/me')
          .set('Host', 'globex.example.com')
          .set('Cookie', other)
          .expect(200);
        await request(app).post('/logout-any').set('Cookie', cookie).expect(204);
        expect(await storedSession(sessions, sid)).to.equal(undefined);
      });
    }

    it('does not take a binding from the prototype of the session data', async () => {
      const { app } = sessionApp('subdomain');
      const cookie = sidCookie(
        await request(app).post('/visit').set('Host', 'globex.example.com').expect(204),
      );
      const proto = Object.prototype as Record<string, unknown>;
      proto.tenantId = 'acme';
      try {
        const res = await request(app)
          .get('/me')
          .set('Host', 'globex.example.com')
          .set('Cookie', cookie);
        expect(res.status).to.equal(200);
        expect(res.body).to.include({ signedInTo: null });
      } finally {
        delete proto.tenantId;
      }
    });

    it('answers 500 TENANCY_CONFIG_INVALID when express-session is not mounted, and when signInToTenant() runs without the binding', async () => {
      const app = express();
      app.use(
        resolveTenant({ store: testTenants(), strategies: ['subdomain'], domain: 'example.com' }),
      );
      app.get('/bound', bindSessionToTenant(), (_req, res) => res.json({ ok: true }));
      app.post(
        '/login',
        wrap(async (req, res) => {
          await signInToTenant(req);
          res.status(204).end();
        }),
      );
      app.use(tenancyErrorHandler());
      const a = await request(app).get('/bound').set('Host', 'acme.example.com');
      expect([a.status, a.body.code]).to.deep.equal([500, 'TENANCY_CONFIG_INVALID']);
      const b = await request(app).post('/login').set('Host', 'acme.example.com');
      expect([b.status, b.body.code]).to.deep.equal([500, 'TENANCY_CONFIG_INVALID']);
    });

    it('refuses a sign-in without a tenant with 401 TENANT_REQUIRED', async () => {
      const path = sessionApp('path');
      const none = await request(path.app).post('/anon-login').set('Host', 'api.local');
      expect([none.status, none.body.code]).to.deep.equal([401, 'TENANT_REQUIRED']);
    });

    it('throws TypeError for bad options at construction, and leaves the options unmutated', () => {
      for (const bad of [
        { key: '' },
        { key: 'a.b' },
        { key: 'cookie' },
        { key: 42 },
        { unbound: 'ignore' },
      ]) {
        expect(() => bindSessionToTenant(bad as never), JSON.stringify(bad)).to.throw(TypeError);
      }
      expect(() => bindSessionToTenant(null as never)).to.throw(TypeError);
      const options = Object.freeze({ key: 'tenant', unbound: 'refuse' as const });
      expect(bindSessionToTenant(options)).to.be.a('function');
      expect(options).to.deep.equal({ key: 'tenant', unbound: 'refuse' });
    });
  });
});
