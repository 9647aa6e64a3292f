import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { container, injectable } from 'tsyringe';
import { TenantContext, TenantScopeError, TenantScoped, runWithTenant } from '../../src/index';

@TenantScoped()
@injectable()
class DocumentService {
  constructor(readonly tenant: TenantContext) {}
  static describe(): string {
    return 'static methods are not guarded';
  }
  get label(): string {
    return 'getter';
  }
  list(): string {
    return `docs of ${this.tenant.id}`;
  }
  async count(): Promise<number> {
    await sleep(1);
    return this.tenant.id.length;
  }
}

class ReportJob {
  constructor(private readonly prefix: string) {}
  @TenantScoped()
  run(n: number): string {
    return `${this.prefix}${n}`;
  }
  @TenantScoped()
  async runLater(): Promise<string> {
    return this.prefix;
  }
  unguarded(): string {
    return 'free';
  }
}

describe('@TenantScoped()', () => {
  it('lets scoped methods run inside a tenant scope, with this and arguments intact', async () => {
    await runWithTenant('acme', async () => {
      const service = container.resolve(DocumentService);
      expect(service.list()).to.equal('docs of acme');
      expect(await service.count()).to.equal(4);
      const job = new ReportJob('r-');
      expect(job.run(7)).to.equal('r-7');
      expect(await job.runLater()).to.equal('r-');
    });
  });

  it('throws TENANT_SCOPE_REQUIRED from a sync scoped method with no tenant, before the body runs', () => {
    const service = runWithTenant('acme', () => container.resolve(DocumentService));
    expect(() => service.list())
      .to.throw(TenantScopeError)
      .with.property('code', 'TENANT_SCOPE_REQUIRED');
    expect(() => new ReportJob('x').run(1)).to.throw(TenantScopeError, /ReportJob\.run\(\)/);
  });

  it('returns a rejected promise from an async scoped method with no tenant', async () => {
    const service = runWithTenant('acme', () => container.resolve(DocumentService));
    const result = service.count(); // must not throw synchronously
    expect(result).to.be.instanceOf(Promise);
    const error = await result.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(TenantScopeError);
    const later = await new ReportJob('x').runLater().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(later).to.be.instanceOf(TenantScopeError);
  });

  it('leaves unscoped members, getters and statics alone', () => {
    expect(new ReportJob('x').unguarded()).to.equal('free');
    expect(DocumentService.describe()).to.equal('static methods are not guarded');
    const service = runWithTenant('acme', () => container.resolve(DocumentService));
    expect(service.label).to.equal('getter');
  });

  it('keeps the class usable by tsyringe (same constructor, same metadata)', () => {
    expect(Reflect.getMetadata('design:paramtypes', DocumentService)).to.deep.equal([
      TenantContext,
    ]);
    expect(DocumentService.prototype.list.name).to.equal('list');
  });
});
