/**
 * Compile-only type test (never run: `npm run build:test` fails if it does
 * not type-check). Pins that handlers behind requireTenant() can be written
 * without casts through tenantHandler()/getTenantRequest(), and that a plain
 * Express Request keeps `tenant` and `container` optional.
 */
import express, { type Request, type RequestHandler } from 'express';
import type { DependencyContainer } from 'tsyringe';
import {
  getTenantRequest,
  requireTenant,
  tenantHandler,
  tryTenantRequest,
  TenantContext,
  type TenantHandler,
  type TenantRequest,
  type TenantUser,
} from '../../src/index';

type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(_value?: T): void {}

class DocumentService {
  list(): string[] {
    return [];
  }
}

const app = express();
app.use('/api', requireTenant());

// Inside tenantHandler(), tenant and container are not optional.
app.get(
  '/api/docs',
  tenantHandler((req, res) => {
    assertType<Equals<typeof req.tenant, TenantContext>>();
    assertType<Equals<typeof req.container, DependencyContainer>>();
    assertType<Equals<typeof req.tenantUser, TenantUser | undefined>>();
    res.json({ tenant: req.tenant.id, docs: req.container.resolve(DocumentService).list() });
  }),
);

// Async handlers are accepted too (their rejections reach next(err)).
const asyncHandler: TenantHandler = async (req, res) => {
  res.json(await Promise.resolve(req.container.resolve(DocumentService).list()));
};
const wrapped: RequestHandler = tenantHandler(asyncHandler);
app.get('/api/async', wrapped);

// On a plain Request both stay optional under strict.
app.get('/api/plain', (req: Request, res) => {
  // @ts-expect-error container may be undefined on a plain Request
  req.container.resolve(DocumentService);
  // @ts-expect-error tenant may be undefined on a plain Request
  res.json(req.tenant.id);
});

// getTenantRequest() narrows (or throws 401); tryTenantRequest() may be undefined.
app.get('/api/get', (req, res) => {
  const narrowed: TenantRequest = getTenantRequest(req);
  res.json(narrowed.container.resolve(DocumentService).list());
  const maybe = tryTenantRequest(req);
  assertType<Equals<typeof maybe, TenantRequest | undefined>>();
  // @ts-expect-error maybe is possibly undefined
  res.json(maybe.tenant.id);
});
