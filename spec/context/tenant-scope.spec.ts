import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { container, injectable, singleton } from 'tsyringe';
import {
  TenantContext,
  TenantScopeError,
  createTenantContainer,
  currentTenant,
  runAsSystem,
  runWithTenant,
  tryCurrentTenant,
  onTenancyAudit,
  type TenancyAuditEvent,
} from '../../src/index';

class Clock {
  now(): number {
    return 42;
  }
}

@injectable()
class ReportService {
  // No @inject(): the constructor types come from emitted decorator metadata.
  constructor(
    readonly tenant: TenantContext,
    readonly clock: Clock,
  ) {}
}

@singleton()
class CachingSingleton {
  constructor(readonly tenant: TenantContext) {}
}

describe('tenant scope', () => {
  it('compiles with decorator metadata, so tsyringe injects constructor types without @inject', () => {
    const types = Reflect.getMetadata('design:paramtypes', ReportService) as unknown[];
    expect(types).to.deep.equal([TenantContext, Clock]);
    runWithTenant('acme', () => {
      const service = container.resolve(ReportService);
      expect(service.clock.now()).to.equal(42);
      expect(service.tenant.id).to.equal('acme');
    });
  });

  it('throws TENANT_SCOPE_REQUIRED from currentTenant() outside any scope (fail closed)', () => {
    expect(tryCurrentTenant()).to.equal(undefined);
    expect(() => currentTenant())
      .to.throw(TenantScopeError)
      .with.property('code', 'TENANT_SCOPE_REQUIRED');
    expect(() => container.resolve(ReportService)).to.throw(/no tenant scope is active/);
  });

  it('rejects a malformed tenant id in runWithTenant()', () => {
    expect(() => runWithTenant("acme'; drop table x;--", () => 1))
      .to.throw()
      .with.property('code', 'TENANT_INVALID');
  });

  it('keeps every one of 1,000 interleaved scopes on its own tenant', async () => {
    const tenants = Array.from({ length: 50 }, (_, i) => `t${i}`);
    const seen = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const id = tenants[i % tenants.length] as string;
        return runWithTenant(id, async () => {
          const observed: string[] = [];
          for (let step = 0; step < 3; step += 1) {
            await sleep(Math.floor(Math.random() * 3));
            observed.push(currentTenant().id, container.resolve(ReportService).tenant.id);
          }
          return { id, observed };
        });
      }),
    );
    for (const { id, observed } of seen) expect(observed.every((o) => o === id)).to.equal(true);
  });

  it('makes a singleton that captured TenantContext fail loudly in the next scope', () => {
    const first = runWithTenant('acme', () => container.resolve(CachingSingleton));
    runWithTenant('globex', () => {
      const again = container.resolve(CachingSingleton);
      expect(again).to.equal(first);
      expect(() => again.tenant.id)
        .to.throw(TenantScopeError)
        .with.property('message')
        .that.matches(/captured by a singleton/);
    });
    // Even the same tenant in a later scope is refused: the context belongs to one scope.
    runWithTenant('acme', () => {
      expect(() => container.resolve(CachingSingleton).tenant.id).to.throw(TenantScopeError);
    });
  });

  it('gives a request child container its own TenantContext value', () => {
    const ctx = new TenantContext({
      tenant: { id: 'acme', name: 'Acme', status: 'active', isolation: {}, config: {} },
      source: 'header',
    });
    const child = createTenantContainer(ctx);
    runWithTenant(ctx, () => {
      expect(child.resolve(TenantContext)).to.equal(ctx);
      expect(child.resolve(ReportService).tenant.trusted).to.equal(false);
    });
  });

  it('runs system work with no tenant and emits an audit event with the reason', () => {
    const events: TenancyAuditEvent[] = [];
    const stop = onTenancyAudit((e) => events.push(e));
    try {
      runWithTenant('acme', () =>
        runAsSystem('nightly report', () => {
          expect(tryCurrentTenant()).to.equal(undefined);
          expect(() => currentTenant()).to.throw(/system scope \("nightly report"\)/);
        }),
      );
    } finally {
      stop();
    }
    expect(events).to.have.length(1);
    expect(events[0]).to.include({
      type: 'system_scope',
      reason: 'nightly report',
      tenantId: 'acme',
    });
    expect(() => runAsSystem('  ', () => 1)).to.throw(TypeError);
  });
});
