import { expect } from 'chai';
import { InMemoryTenantStore } from '../../src/index';

describe('InMemoryTenantStore', () => {
  it('creates tenants with defaults and finds them by id', async () => {
    const store = new InMemoryTenantStore([{ id: 'acme', name: 'Acme' }]);
    const globex = await store.create({ id: 'globex', config: { plan: 'pro' } });
    expect(globex).to.include({ id: 'globex', name: 'globex', status: 'active' });
    expect((await store.findById('acme'))?.name).to.equal('Acme');
    expect(await store.findById('nobody')).to.equal(undefined);
  });

  it('lists tenants ordered by id, filtered by status', async () => {
    const store = new InMemoryTenantStore([
      { id: 'umbrella', status: 'suspended' },
      { id: 'acme' },
      { id: 'globex' },
    ]);
    expect((await store.list()).map((t) => t.id)).to.deep.equal(['acme', 'globex', 'umbrella']);
    expect((await store.list({ status: ['suspended'] })).map((t) => t.id)).to.deep.equal([
      'umbrella',
    ]);
  });

  it('refuses invalid and duplicate ids with TENANT_INVALID and TENANT_STATE_INVALID', async () => {
    const store = new InMemoryTenantStore([{ id: 'acme' }]);
    await store.create({ id: 'Bad Id' }).then(
      () => expect.fail('should refuse'),
      (e: { code: string }) => expect(e.code).to.equal('TENANT_INVALID'),
    );
    await store.create({ id: 'acme' }).then(
      () => expect.fail('should refuse'),
      (e: { code: string }) => expect(e.code).to.equal('TENANT_STATE_INVALID'),
    );
  });

  it('updates and removes, answering TENANT_NOT_FOUND for unknown ids', async () => {
    const store = new InMemoryTenantStore([{ id: 'acme' }]);
    expect(
      (await store.update('acme', { status: 'suspended', statusReason: 'unpaid' })).status,
    ).to.equal('suspended');
    expect((await store.findById('acme'))?.statusReason).to.equal('unpaid');
    await store.update('nobody', { name: 'x' }).then(
      () => expect.fail('should refuse'),
      (e: { code: string }) => expect(e.code).to.equal('TENANT_NOT_FOUND'),
    );
    expect(await store.remove('acme')).to.equal(true);
    expect(await store.remove('acme')).to.equal(false);
  });

  it('returns copies: mutating a result does not change the store', async () => {
    const store = new InMemoryTenantStore([{ id: 'acme', config: { plan: 'free' } }]);
    const found = (await store.findById('acme')) as { config: Record<string, unknown> };
    found.config.plan = 'enterprise';
    expect((await store.findById('acme'))?.config).to.deep.equal({ plan: 'free' });
  });
});
