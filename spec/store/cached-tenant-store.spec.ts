import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CachedTenantStore,
  InMemoryTenantStore,
  type TenantRecord,
  type TenantStore,
} from '../../src/index';
import { CountingTenantStore } from '../support/create-app';

function setup(options: ConstructorParameters<typeof CachedTenantStore>[1] = {}) {
  let now = 1_000;
  const inner = new CountingTenantStore(
    new InMemoryTenantStore([
      { id: 'acme' },
      { id: 'globex' },
      { id: 'initech', status: 'suspended' },
    ]),
  );
  const cached = new CachedTenantStore(inner, { now: () => now, ...options });
  return { inner, cached, advance: (ms: number) => (now += ms) };
}

describe('CachedTenantStore', () => {
  it('answers a repeated lookup from the cache with zero store calls', async () => {
    const { inner, cached } = setup();
    expect((await cached.findById('acme'))?.id).to.equal('acme');
    expect(inner.findByIdCalls).to.equal(1);
    for (let i = 0; i < 10; i += 1) expect((await cached.findById('acme'))?.id).to.equal('acme');
    expect(inner.findByIdCalls).to.equal(1);
    expect(cached.stats).to.include({ hits: 10, misses: 1, storeCalls: 1, size: 1 });
  });

  it('reads the store again once the TTL has passed', async () => {
    const { inner, cached, advance } = setup({ ttlMs: 100 });
    await cached.findById('acme');
    advance(99);
    await cached.findById('acme');
    expect(inner.findByIdCalls).to.equal(1);
    advance(1);
    await cached.findById('acme');
    expect(inner.findByIdCalls).to.equal(2);
  });

  it('coalesces concurrent misses for one id into one store call', async () => {
    const { inner, cached } = setup();
    inner.delayMs = 20;
    const results = await Promise.all(Array.from({ length: 50 }, () => cached.findById('globex')));
    expect(results.every((r) => r?.id === 'globex')).to.equal(true);
    expect(inner.findByIdCalls).to.equal(1);
    expect(cached.stats).to.include({ misses: 50, coalesced: 49, storeCalls: 1 });
  });

  it('remembers unknown ids only for the short negative TTL', async () => {
    const { inner, cached, advance } = setup({ ttlMs: 60_000, negativeTtlMs: 50 });
    expect(await cached.findById('nobody')).to.equal(undefined);
    expect(await cached.findById('nobody')).to.equal(undefined);
    expect(inner.findByIdCalls).to.equal(1);
    advance(50);
    expect(await cached.findById('nobody')).to.equal(undefined);
    expect(inner.findByIdCalls).to.equal(2);
  });

  it('evicts the least recently used entry when full', async () => {
    const { inner, cached } = setup({ maxEntries: 2 });
    await cached.findById('acme');
    await cached.findById('globex');
    await cached.findById('acme'); // acme is now the most recently used
    await cached.findById('initech'); // evicts globex
    expect(cached.stats).to.include({ size: 2, evictions: 1 });
    inner.reset();
    await cached.findById('acme');
    expect(inner.findByIdCalls).to.equal(0);
    await cached.findById('globex');
    expect(inner.findByIdCalls).to.equal(1);
  });

  it('keeps entries read since they were cached and evicts the unread oldest (second chance)', async () => {
    const { inner, cached } = setup({ maxEntries: 2 });
    await cached.findById('acme');
    await cached.findById('globex');
    await cached.findById('globex'); // globex read, acme not
    await cached.findById('initech'); // evicts acme, the oldest unread
    inner.reset();
    await cached.findById('globex');
    await cached.findById('initech');
    expect(inner.findByIdCalls).to.equal(0);
    await cached.findById('acme');
    expect(inner.findByIdCalls).to.equal(1);
    expect(cached.stats).to.include({ size: 2, evictions: 2 });
  });

  it('never evicts the entry it has just cached, even when every other one was read', async () => {
    const { inner, cached } = setup({ maxEntries: 1 });
    await cached.findById('acme');
    await cached.findById('acme'); // read: a second chance
    await cached.findById('globex');
    inner.reset();
    await cached.findById('globex');
    expect(inner.findByIdCalls).to.equal(0);
    expect(cached.stats).to.include({ size: 1, evictions: 1 });
  });

  it('copies a record with an own "__proto__" key without giving the copy another prototype', async () => {
    const polluted = JSON.parse(
      '{"id":"acme","name":"Acme","status":"active","isolation":{},"config":{},"__proto__":{"admin":true}}',
    ) as TenantRecord;
    const cached = new CachedTenantStore({
      findById: async () => polluted,
    } as unknown as TenantStore);
    const record = await cached.findById('acme');
    expect(Object.getPrototypeOf(record)).to.equal(Object.prototype);
    expect((record as unknown as { admin?: unknown }).admin).to.equal(undefined);
    expect(Object.isFrozen(record)).to.equal(true);
    expect(record).to.include({ id: 'acme', status: 'active' });
  });

  it('invalidate(id) makes the next lookup read the store', async () => {
    const { inner, cached } = setup();
    await cached.findById('acme');
    await cached.findById('globex');
    cached.invalidate('acme');
    await cached.findById('acme');
    await cached.findById('globex');
    expect(inner.findByIdCalls).to.equal(3);
    cached.invalidateAll();
    await cached.findById('acme');
    await cached.findById('globex');
    expect(inner.findByIdCalls).to.equal(5);
  });

  it('does not cache a lookup that was running when invalidate(id) was called', async () => {
    const { inner, cached } = setup();
    inner.delayMs = 20;
    const running = cached.findById('acme');
    await sleep(5);
    cached.invalidate('acme');
    await running;
    inner.delayMs = 0;
    await cached.findById('acme');
    // The in-flight answer may predate the change that caused invalidate(): it must not be served again.
    expect(inner.findByIdCalls).to.equal(2);
    await cached.findById('acme');
    expect(inner.findByIdCalls).to.equal(2);
  });

  it('invalidates on writes made through the wrapper, including a negatively cached id', async () => {
    const { cached } = setup();
    expect(await cached.findById('hooli')).to.equal(undefined);
    await cached.create({ id: 'hooli' });
    expect((await cached.findById('hooli'))?.status).to.equal('active');
    await cached.update('hooli', { status: 'suspended' });
    expect((await cached.findById('hooli'))?.status).to.equal('suspended');
    await cached.remove('hooli');
    expect(await cached.findById('hooli')).to.equal(undefined);
  });

  it('does not cache store failures and passes them to every waiter', async () => {
    const { inner, cached } = setup();
    inner.failNext = new Error('connection reset');
    const results = await Promise.allSettled([cached.findById('acme'), cached.findById('acme')]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected']);
    expect((await cached.findById('acme'))?.id).to.equal('acme');
    expect(inner.findByIdCalls).to.equal(2);
  });

  it('hands out frozen records so one request cannot change what another sees', async () => {
    const { cached } = setup();
    const record = await cached.findById('acme');
    expect(Object.isFrozen(record)).to.equal(true);
    expect(Object.isFrozen(record?.config)).to.equal(true);
  });

  it('peek() answers warm lookups synchronously: record, null for a known-unknown id, undefined when not cached', async () => {
    const { inner, cached, advance } = setup({ ttlMs: 100, negativeTtlMs: 50 });
    expect(cached.peek('acme')).to.equal(undefined);
    await cached.findById('acme');
    await cached.findById('nobody');
    expect(cached.peek('acme')?.id).to.equal('acme');
    expect(cached.peek('nobody')).to.equal(null);
    expect(inner.findByIdCalls).to.equal(2);
    advance(50);
    expect(cached.peek('nobody')).to.equal(undefined);
    advance(50);
    expect(cached.peek('acme')).to.equal(undefined);
    expect(inner.findByIdCalls).to.equal(2);
  });

  it('refuses bad options at construction', () => {
    const inner = new InMemoryTenantStore();
    expect(() => new CachedTenantStore(inner, { ttlMs: -1 })).to.throw(TypeError, /ttlMs=-1/);
    expect(() => new CachedTenantStore(inner, { maxEntries: 0 })).to.throw(
      TypeError,
      /maxEntries=0/,
    );
    expect(() => new CachedTenantStore({} as never)).to.throw(TypeError, /findById/);
  });
});
