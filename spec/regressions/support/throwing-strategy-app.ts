/**
 * A child-process app for spec/regressions/strategy-failures.spec.ts: a
 * custom strategy that fails in the hook the `X-Fail` header names (sync
 * throw or async rejection in resolve(), a throw in accept(), a resolution
 * that is not an object), a membership check and a user lookup that fail,
 * and a store whose findById throws synchronously. It prints its port on
 * stdout. Node's default for an unhandled rejection is to exit, so the
 * process staying alive is what the spec checks.
 */
import 'reflect-metadata';
import express, { type Request } from 'express';
import {
  InMemoryTenantStore,
  requireTenant,
  resolveTenant,
  tenancyErrorHandler,
  type TenantRecord,
  type TenantResolution,
  type TenantResolutionStrategy,
  type TenantStore,
} from '../../../src/index';

function failure(req: Request): string {
  const value = req.headers['x-fail'];
  return typeof value === 'string' ? value : '';
}

const flaky: TenantResolutionStrategy = {
  name: 'flaky',
  resolve(req): TenantResolution | undefined | Promise<TenantResolution | undefined> {
    switch (failure(req)) {
      case 'resolve-throw':
        throw new Error('resolve() threw');
      case 'resolve-reject':
        return Promise.reject(new Error('resolve() rejected'));
      case 'resolve-reject-later':
        return new Promise((_resolve, reject) => setTimeout(() => reject(new Error('later')), 5));
      case 'resolve-null':
        return null as unknown as undefined;
      case 'resolve-throw-string':
        throw 'a string';
      case 'accept-throw':
        return {
          tenantId: 'acme',
          trusted: false,
          accept: () => {
            throw new Error('accept() threw');
          },
        };
      case 'accept-throw-async':
        return Promise.resolve({
          tenantId: 'acme',
          trusted: false,
          accept: () => {
            throw new Error('accept() threw after an await');
          },
        });
      case 'member-throw':
      case 'member-reject':
        return { tenantId: 'acme', trusted: false, user: { id: 'u1', claims: {} } };
      case 'store-throw':
        return { tenantId: 'globex', trusted: false };
      case 'none':
        return { tenantId: 'acme', trusted: false };
      default:
        return undefined;
    }
  },
};

const inner = new InMemoryTenantStore([{ id: 'acme' }, { id: 'globex' }]);
const store: TenantStore = {
  findById(id: string): Promise<TenantRecord | undefined> {
    if (id === 'globex') throw new Error('findById threw synchronously');
    return inner.findById(id);
  },
  list: (o) => inner.list(o),
  create: (t) => inner.create(t),
  update: (id, p) => inner.update(id, p),
  remove: (id) => inner.remove(id),
};

const app = express();
app.use(
  resolveTenant({
    store,
    strategies: [flaky],
    isMember: (_user, _id, req) => {
      if (failure(req) === 'member-reject') return Promise.reject(new Error('isMember rejected'));
      throw new Error('isMember threw');
    },
    getUser: (req) => {
      if (failure(req) === 'user-throw') throw new Error('getUser threw');
      if (failure(req) === 'user-reject') return Promise.reject(new Error('getUser rejected'));
      return undefined;
    },
  }),
);
app.get('/health', (_req, res) => {
  res.json({ ok: true });
});
app.get('/', requireTenant(), (req, res) => {
  res.json({ tenant: req.tenant?.id ?? null });
});
app.use(tenancyErrorHandler());

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address !== null && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
