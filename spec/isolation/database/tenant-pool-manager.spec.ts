import { expect } from 'chai';
import type { Knex } from 'knex';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TenantPoolManager, type TenantRecord } from '../../../src/index';

type PoolOptions = NonNullable<ConstructorParameters<typeof TenantPoolManager>[0]>;
import {
  adminQuery,
  createScratchDatabase,
  createTestKnex,
  testServer,
} from '../../support/test-database';

const run = randomBytes(3).toString('hex');

/** A pool manager on the test server (embedded or TENANTRY_TEST_DATABASE_URL), not the default 127.0.0.1:5432. */
function newPools(options: PoolOptions = {}): TenantPoolManager {
  const url = new URL(testServer().databaseUrl);
  return new TenantPoolManager({
    defaults: {
      host: url.hostname,
      port: Number(url.port || 5432),
      user: decodeURIComponent(url.username || 'postgres'),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    },
    ...options,
  });
}

function tenant(id: string, database: string): TenantRecord {
  return { id, name: id, status: 'active', isolation: { database: { database } }, config: {} };
}

async function openConnections(tenantId: string): Promise<number> {
  const { rows } = await adminQuery(
    `select count(*)::int as n from pg_stat_activity where application_name = $1`,
    [`tenantry:${tenantId}`],
  );
  return (rows[0] as { n: number }).n;
}

async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/** A transaction that holds one connection of `knex` until `release()` is called. */
function holdConnection(knex: Knex): {
  started: Promise<void>;
  release(): void;
  done: Promise<number>;
} {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const startedPromise = new Promise<void>((resolve) => (started = resolve));
  const done = knex.transaction(async (trx) => {
    await trx.raw('select 1');
    started();
    await gate;
    const { rows } = (await trx.raw('select 2 as n')) as { rows: { n: number }[] };
    return rows[0]?.n ?? 0;
  });
  return { started: startedPromise, release, done };
}

describe('TenantPoolManager (database mode pools under a connection budget)', function () {
  this.timeout(60_000);
  const tenants: TenantRecord[] = [];
  let base: Knex;

  before(async () => {
    base = createTestKnex();
    for (const name of ['a', 'b', 'c']) {
      tenants.push(tenant(`p${run}-${name}`, await createScratchDatabase(`pools_${name}`)));
    }
  });

  const [a, b, c] = [0, 1, 2].map((i) => () => tenants[i] as TenantRecord) as [
    () => TenantRecord,
    () => TenantRecord,
    () => TenantRecord,
  ];

  it('keeps a pool retired over maxPools open until its transaction commits, then closes it', async () => {
    const pools = newPools({ maxPools: 1, connectionBudget: 4 });
    try {
      const held = holdConnection(pools.knexFor(a()));
      await held.started;
      await pools.knexFor(b()).raw('select 1');
      expect(pools.stats()).to.include({ pools: 2, draining: 1 });
      held.release();
      expect(await held.done).to.equal(2);
      await eventually(() => pools.stats().draining === 0, 'the retired pool to close');
      expect(pools.stats().pools).to.equal(1);
      await eventually(async () => (await openConnections(a().id)) === 0, 'a closed connection');
    } finally {
      await pools.destroy();
    }
  });

  it('runs a builder created before its pool was closed (the pool reopens for it)', async () => {
    const pools = newPools({ maxPools: 1 });
    try {
      const early = pools.knexFor(a()).raw('select current_database() as d');
      await pools.knexFor(b()).raw('select 1');
      await eventually(() => pools.stats().pools === 1, 'the idle pool of a to close');
      const { rows } = (await early) as { rows: { d: string }[] };
      expect(rows[0]?.d).to.equal(a().isolation.database?.database);
    } finally {
      await pools.destroy();
    }
  });

  it('closes the idle connections of a busy pool to serve another tenant when the budget is full', async () => {
    const pools = newPools({
      connectionBudget: 2,
      maxConnectionsPerTenant: 2,
      connectionIdleMillis: 60_000,
      acquireTimeoutMillis: 2_000,
    });
    try {
      const knexA = pools.knexFor(a());
      await Promise.all([knexA.raw('select pg_sleep(0.05)'), knexA.raw('select pg_sleep(0.05)')]);
      expect(pools.stats().connections).to.equal(2);
      // Pool a stays busy (one connection borrowed) with one idle connection.
      const held = holdConnection(knexA);
      await held.started;
      const { rows } = (await pools.knexFor(b()).raw('select current_database() as d')) as {
        rows: { d: string }[];
      };
      expect(rows[0]?.d).to.equal(b().isolation.database?.database);
      held.release();
      expect(await held.done).to.equal(2);
      expect(pools.stats().peakConnections).to.equal(2);
    } finally {
      await pools.destroy();
    }
  });

  it('answers 503 TENANT_UNAVAILABLE after acquireTimeoutMillis while every budget slot stays borrowed, then serves the tenant', async () => {
    const pools = newPools({ connectionBudget: 1, acquireTimeoutMillis: 300 });
    try {
      const held = holdConnection(pools.knexFor(a()));
      await held.started;
      const started = Date.now();
      const error = await pools
        .knexFor(b())
        .raw('select 1')
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).to.include({ code: 'TENANT_UNAVAILABLE', status: 503 });
      expect((error as Error).message).to.match(/budget/);
      expect(Date.now() - started).to.be.at.least(250);
      held.release();
      await held.done;
      await pools.knexFor(b()).raw('select 1');
      expect(pools.stats().peakConnections).to.equal(1);
    } finally {
      await pools.destroy();
    }
  });

  it('gives free budget slots to waiting tenants first come, first served', async () => {
    const pools = newPools({ connectionBudget: 1 });
    try {
      const held = holdConnection(pools.knexFor(a()));
      await held.started;
      const order: string[] = [];
      const first = pools
        .knexFor(b())
        .raw('select 1')
        .then(() => order.push('b'));
      await eventually(() => pools.stats().waiting === 1, 'b to wait for the budget');
      const second = pools
        .knexFor(c())
        .raw('select 1')
        .then(() => order.push('c'));
      await eventually(() => pools.stats().waiting === 2, 'c to wait for the budget');
      held.release();
      await Promise.all([held.done, first, second]);
      expect(order).to.deep.equal(['b', 'c']);
    } finally {
      await pools.destroy();
    }
  });

  it('closeTenant() stops handing the pool out and settles once its running transaction is done', async () => {
    const pools = newPools();
    try {
      const oldKnex = pools.knexFor(a());
      const held = holdConnection(oldKnex);
      await held.started;
      let closed = false;
      const closing = pools.closeTenant(a().id).then(() => (closed = true));
      await sleep(50);
      expect(closed).to.equal(false);
      expect(pools.knexFor(a())).to.not.equal(oldKnex);
      held.release();
      expect(await held.done).to.equal(2);
      await closing;
      expect(closed).to.equal(true);
    } finally {
      await pools.destroy();
    }
  });

  it('destroy() waits for running transactions, closes every pool, and refuses new work with TENANT_UNAVAILABLE', async () => {
    const pools = newPools();
    const held = holdConnection(pools.knexFor(a()));
    await held.started;
    await pools.knexFor(b()).raw('select 1');
    let destroyed = false;
    const destroying = pools.destroy().then(() => (destroyed = true));
    await sleep(50);
    expect(destroyed).to.equal(false);
    held.release();
    expect(await held.done).to.equal(2);
    await destroying;
    expect(pools.stats()).to.include({ pools: 0, connections: 0 });
    expect(await openConnections(a().id)).to.equal(0);
    expect(await openConnections(b().id)).to.equal(0);
    expect(() => pools.knexFor(a()))
      .to.throw()
      .with.property('code', 'TENANT_UNAVAILABLE');
    await pools.destroy();
    // The central knex of the test run is untouched.
    expect(((await base.raw('select 1 as n')) as { rows: { n: number }[] }).rows[0]?.n).to.equal(1);
  });
});
