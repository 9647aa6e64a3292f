/**
 * Test helpers for the HTTP half: a TenantStore wrapper that counts calls (so
 * tests can prove a bad request never reached the store), and createApp(), a
 * tiny Express app with resolveTenant(), the error handler and an echo route.
 */
import { setTimeout as sleep } from 'node:timers/promises';
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

  constructor(private readonly inner: TenantStore) {}

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
