/**
 * Test helpers for the HTTP half: a TenantStore wrapper that counts calls (so
 * tests can prove a bad request never reached the store), and createApp(), a
 * tiny Express app with resolveTenant(), the error handler and an echo route.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import jwt from 'jsonwebtoken';
import { TenantContext } from '../../src/context/tenant-context';
import { tryCurrentTenant } from '../../src/context/tenant-scope';
import { resolveTenant, type ResolveTenantOptions } from '../../src/resolution/resolve-tenant';
import { InMemoryTenantStore } from '../../src/store/in-memory-tenant-store';
import type { TenantRecord } from '../../src/context/tenant-record';
import type {
  NewTenant,
  TenantListOptions,
  TenantPatch,
  TenantStore,
} from '../../src/store/tenant-store';

/** Wraps a store and counts every call; can delay or fail findById. */
export class CountingTenantStore implements TenantStore {
  findByIdCalls = 0;
  otherCalls = 0;
  delayMs = 0;
  failNext: Error | undefined;
  readonly lookedUp: string[] = [];
  /** Domains asked of `findByDomain` (present only when the wrapped store has it). */
  readonly domainLookups: string[] = [];
  readonly findByDomain?: (domain: string) => Promise<TenantRecord | undefined>;

  constructor(private readonly inner: TenantStore) {
    const byDomain = inner.findByDomain;
    if (byDomain !== undefined) {
      this.findByDomain = (domain) => {
        this.domainLookups.push(domain);
        return byDomain.call(inner, domain);
      };
    }
  }

  get totalCalls(): number {
    return this.findByIdCalls + this.otherCalls;
  }

  reset(): void {
    this.findByIdCalls = 0;
    this.otherCalls = 0;
    this.lookedUp.length = 0;
  }

  async findById(id: string): Promise<TenantRecord | undefined> {
    this.findByIdCalls += 1;
    this.lookedUp.push(id);
    if (this.delayMs > 0) await sleep(this.delayMs);
    const failure = this.failNext;
    if (failure) {
      this.failNext = undefined;
      throw failure;
    }
    return this.inner.findById(id);
  }

  list(options?: TenantListOptions): Promise<TenantRecord[]> {
    this.otherCalls += 1;
    return this.inner.list(options);
  }

  create(tenant: NewTenant): Promise<TenantRecord> {
    this.otherCalls += 1;
    return this.inner.create(tenant);
  }

  update(id: string, patch: TenantPatch): Promise<TenantRecord> {
    this.otherCalls += 1;
    return this.inner.update(id, patch);
  }

  remove(id: string): Promise<boolean> {
    this.otherCalls += 1;
    return this.inner.remove(id);
  }
}

// ---------------------------------------------------------------------------
// createApp(): a tiny Express app around resolveTenant().

/** HMAC secret of the test tokens (>= 32 bytes). */
export const HS_SECRET = 'tenantry-test-secret-0123456789abcdef';

let rsa: { publicKey: KeyObject; privateKey: KeyObject } | undefined;
let otherRsa: { publicKey: KeyObject; privateKey: KeyObject } | undefined;

/** The test RSA key pair (generated once per run). */
export function rsaKeys(): { publicKey: KeyObject; privateKey: KeyObject } {
  rsa ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
  return rsa;
}

/** A second RSA key pair: tokens signed with it are forged. */
export function otherRsaKeys(): { publicKey: KeyObject; privateKey: KeyObject } {
  otherRsa ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
  return otherRsa;
}

/** Signs an HS256 test token valid for an hour unless claims say otherwise. */
export function hsToken(claims: Record<string, unknown>, options: jwt.SignOptions = {}): string {
  return jwt.sign({ sub: 'user-1', ...claims }, HS_SECRET, {
    algorithm: 'HS256',
    ...('exp' in claims ? {} : { expiresIn: '1h' }),
    ...options,
  });
}

/** Signs an RS256 test token with the test key (or `key`). */
export function rsToken(
  claims: Record<string, unknown>,
  key: KeyObject = rsaKeys().privateKey,
): string {
  return jwt.sign({ sub: 'user-1', ...claims }, key, { algorithm: 'RS256', expiresIn: '1h' });
}

/** The standard test tenants. */
export function testTenants(): InMemoryTenantStore {
  return new InMemoryTenantStore([
    { id: 'acme', name: 'Acme' },
    { id: 'globex', name: 'Globex' },
    { id: 'initech', status: 'suspended' },
    { id: 'umbrella', status: 'deleted' },
    { id: 'hooli', status: 'provisioning' },
  ]);
}

/** What the echo route reports. */
export interface Echo {
  tenant: string | null;
  source: string | null;
  trusted: boolean | null;
  user: string | null;
  current: string | null;
  fromContainer: string | null;
  url: string;
  originalUrl: string;
  params: Record<string, string>;
}

/** The echo handler: what the request sees about its tenant. */
export const echo: RequestHandler = (req, res) => {
  const body: Echo = {
    tenant: req.tenant?.id ?? null,
    source: req.tenant?.source ?? null,
    trusted: req.tenant?.trusted ?? null,
    user: req.tenantUser?.id ?? null,
    current: tryCurrentTenant()?.id ?? null,
    fromContainer: req.container?.resolve(TenantContext).id ?? null,
    url: req.url,
    originalUrl: req.originalUrl,
    params: { ...(req.params as Record<string, string>) },
  };
  res.json(body);
};

/** Renders errors as { code, status } (the real problem+json handler is tested in spec/enforcement). */
export const jsonErrors: ErrorRequestHandler = (
  err: { status?: number; code?: string },
  _req,
  res,
  _next,
) => {
  res.status(err.status ?? 500).json({ code: err.code ?? 'INTERNAL', status: err.status ?? 500 });
};

/** Options of {@link createApp}. */
export interface CreateAppOptions extends Partial<ResolveTenantOptions> {
  /** Express `trust proxy` setting. Default: unset (false). */
  readonly trustProxy?: boolean | string | number;
  /** Routes to mount after resolveTenant() instead of the catch-all echo. */
  readonly routes?: (app: Express) => void;
}

/**
 * An app with resolveTenant(), the given routes (default: echo everything) and
 * jsonErrors. The store is wrapped in a CountingTenantStore, returned as `store`.
 */
export function createApp(options: CreateAppOptions = {}): {
  app: Express;
  store: CountingTenantStore;
} {
  const { trustProxy, routes, store: given, ...rest } = options;
  const store = new CountingTenantStore(given ?? testTenants());
  const app = express();
  if (trustProxy !== undefined) app.set('trust proxy', trustProxy);
  app.use(resolveTenant({ ...rest, store }));
  if (routes) routes(app);
  else app.use(echo);
  app.use(jsonErrors);
  return { app, store };
}
