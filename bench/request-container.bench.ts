/**
 * The per-request container alone, without HTTP, at 0, 500 and 2,000
 * registrations in the app's container (5 of them ContainerScoped when there
 * are any): each variant creates a request container, registers the tenant
 * and resolves one service through it, in alternating blocks of calls.
 *   N) tsyringe's `parent.createChildContainer()` (what tenantry did before),
 *   F) the floor: `prepared.createChildContainer()` on a container prepared
 *      once that holds only the ContainerScoped copies, and
 *   T) tenantry's request container (the path `resolveTenant()` takes).
 * Prints µs per request container for each and T/F (goal <= 1.02) per size.
 *
 *   node build/bench/request-container.bench.js
 *   BENCH_SIZES=0,500,2000 BENCH_ROUNDS=30 BENCH_CALLS=2000 node build/bench/request-container.bench.js
 */
import 'reflect-metadata';
import { Lifecycle, container, injectable, type DependencyContainer } from 'tsyringe';
import { TenantContext } from '../src/index';
import { createRequestContainer } from '../src/context/tenant-container';
import { requestContainerFactory } from '../src/context/tsyringe-adapter';
import { microsPerCall } from './support/interleaved';

const SIZES = (process.env.BENCH_SIZES ?? '0,500,2000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);

@injectable()
class Greeting {
  constructor(readonly tenant: TenantContext) {}
}
class Registered {}

function appContainer(size: number): DependencyContainer {
  const app = container.createChildContainer();
  for (let i = 0; i < size; i += 1) {
    const token = Symbol(`registration ${i}`);
    if (i < 5)
      app.register(token, { useClass: Registered }, { lifecycle: Lifecycle.ContainerScoped });
    else if (i % 4 === 0) app.register(token, { useValue: i });
    else if (i % 4 === 1) app.register(token, { useClass: Registered });
    else if (i % 4 === 2) app.registerSingleton(token, Registered);
    else app.register(token, { useFactory: () => i });
  }
  return app;
}

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const ctx = new TenantContext({
  tenant: { id: 'acme', name: 'Acme', status: 'active', isolation: {}, config: {} },
  source: 'header',
});

let sink = 0;
for (const size of SIZES) {
  const parent = appContainer(size);
  const prepared = parent.createChildContainer();
  const factory = requestContainerFactory(parent);
  const variants: Record<'N' | 'F' | 'T', () => DependencyContainer> = {
    N: () => {
      const child = parent.createChildContainer();
      child.register(TenantContext, { useValue: ctx });
      return child;
    },
    F: () => {
      const child = prepared.createChildContainer();
      child.register(TenantContext, { useValue: ctx });
      return child;
    },
    T: () => createRequestContainer(ctx, factory),
  };
  const samples: Record<keyof typeof variants, number[]> = { N: [], F: [], T: [] };
  const names = Object.keys(variants) as (keyof typeof variants)[];
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = names.map((_, i) => names[(i + round) % names.length] as keyof typeof variants);
    for (const name of order) {
      const make = variants[name];
      samples[name].push(
        microsPerCall(() => {
          sink += make().resolve(Greeting).tenant === ctx ? 1 : 0;
        }, CALLS),
      );
    }
  }
  const n = median(samples.N);
  const f = median(samples.F);
  const t = median(samples.T);
  const ratios = samples.T.map((v, i) => v / (samples.F[i] as number));
  console.log(
    `${String(size).padStart(5)} registrations: N createChildContainer() ${n.toFixed(2)} µs, F floor ${f.toFixed(2)} µs, T tenantry ${t.toFixed(2)} µs; T/F ${median(ratios).toFixed(3)} (goal <= 1.02 ${median(ratios) <= 1.02 ? 'MET' : 'NOT MET'}), N/F ${(n / f).toFixed(1)}`,
  );
}
if (sink === 0) process.exitCode = 1;
