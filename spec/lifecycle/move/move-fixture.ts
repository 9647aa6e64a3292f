/**
 * Shared set-up of the online-move specs: a central database on the suite's
 * server, a second PostgreSQL (embedded, on a free port) named `second`,
 * tenant migrations with a foreign key (projects ← tasks, uuid keys so rows
 * can move into the shared tables), a TenantManager in row mode, the tiered
 * engine, and an Express app serving each tenant on its tier.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import express from 'express';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import {
  KnexTenantStore,
  TenantManager,
  migrateCentral,
  resolveTenant,
  tenancyErrorHandler,
  withTenancy,
  type TenantKnex,
} from '../../../src/index';
import {
  startEmbeddedPostgres,
  type EmbeddedPostgresServer,
} from '../../../demo/embedded-postgres';
import { createScratchDatabase, testServer } from '../../support/test-database';

export const TENANT_MIGRATIONS = [
  {
    name: '001_projects_tasks',
    async up(k: Knex) {
      await k.schema.createTable('projects', (t) => {
        t.uuid('id').primary().defaultTo(k.raw('gen_random_uuid()'));
        t.text('tenant_id');
        t.text('name').notNullable();
      });
      await k.schema.createTable('tasks', (t) => {
        t.uuid('id').primary().defaultTo(k.raw('gen_random_uuid()'));
        t.text('tenant_id');
        t.uuid('project_id').notNullable().references('id').inTable('projects').onDelete('cascade');
        t.text('title').notNullable();
        t.integer('n').notNullable().defaultTo(0);
        t.jsonb('meta');
      });
    },
    async down(k: Knex) {
      await k.schema.dropTable('tasks');
      await k.schema.dropTable('projects');
    },
  },
];

export interface MoveFixture {
  readonly knex: Knex;
  readonly store: KnexTenantStore;
  readonly manager: TenantManager;
  readonly db: TenantKnex;
  readonly second: EmbeddedPostgresServer;
  readonly servers: Record<string, { host: string; port: number }>;
  readonly centralUrl: string;
  readonly baseUrl: string;
  readonly run: string;
  /** A connection to a database on the main (`main`) or the second (`second`) server. */
  query(
    server: 'main' | 'second',
    database: string,
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult>;
  close(): Promise<void>;
}

export function managerFor(
  f: Pick<MoveFixture, 'knex' | 'store' | 'servers' | 'db'>,
): TenantManager {
  return new TenantManager({
    knex: f.knex,
    store: f.store,
    mode: 'row',
    migrations: TENANT_MIGRATIONS,
    servers: f.servers,
    db: f.db,
  });
}

export async function startMoveFixture(): Promise<MoveFixture> {
  const run = randomBytes(3).toString('hex');
  const centralDb = await createScratchDatabase('move');
  const centralUrl = testServer().urlFor(centralDb);
  const main = new URL(centralUrl);
  const second = await startEmbeddedPostgres({ name: `move-spec-${process.pid}-${run}` });
  const servers = {
    main: { host: main.hostname, port: Number(main.port || 5432) },
    second: { host: '127.0.0.1', port: second.port },
  };
  const knex = knexFactory({ client: 'pg', connection: centralUrl, pool: { min: 0, max: 12 } });
  await migrateCentral(knex);
  const store = new KnexTenantStore(knex);
  const db = withTenancy(knex, {
    mode: 'row',
    tiers: true,
    tenantTables: ['projects', 'tasks'],
    database: { servers },
  });
  const manager = managerFor({ knex, store, servers, db });
  await manager.migrateTenants();

  const app = express();
  app.use(express.json());
  app.use(resolveTenant({ store, strategies: ['header'] }));
  app.get('/tasks', async (_req, res, next) => {
    try {
      res.json(await db('tasks').select('id', 'title', 'n').orderBy('title'));
    } catch (error) {
      next(error);
    }
  });
  app.post('/tasks', async (req, res, next) => {
    try {
      const body = req.body as { title: string };
      const [project] = (await db('projects').select('id').limit(1)) as { id: string }[];
      const [row] = (await db('tasks')
        .insert({ title: body.title, project_id: project?.id, n: 0 })
        .returning(['id'])) as { id: string }[];
      res.status(201).json(row);
    } catch (error) {
      next(error);
    }
  });
  app.patch('/tasks/:id', async (req, res, next) => {
    try {
      const body = req.body as { n: number };
      const count = await db('tasks').where({ id: req.params.id }).update({ n: body.n });
      res.status(count === 1 ? 200 : 404).json({ count });
    } catch (error) {
      next(error);
    }
  });
  app.use(tenancyErrorHandler());
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function query(
    which: 'main' | 'second',
    database: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult> {
    const url = which === 'main' ? testServer().urlFor(database) : second.urlFor(database);
    const client = new pg.Client(url);
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end();
    }
  }

  return {
    knex,
    store,
    manager,
    db,
    second,
    servers,
    centralUrl,
    baseUrl,
    run,
    query,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await db.destroy?.();
      await knex.destroy();
      await second.stop();
      // A named data directory in the project stays after stop(): this one is the run's own.
      rmSync(second.dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates an active row-tier tenant with one project and `tasks` tasks (inserted with COPY-free plain SQL). */
export async function seedTenant(f: MoveFixture, id: string, tasks: number): Promise<void> {
  await f.manager.create({ id, name: id });
  await f.knex.raw(
    `with p as (insert into projects (tenant_id, name) values (?, 'main') returning id)
     insert into tasks (tenant_id, project_id, title, n, meta)
     select ?, p.id, ? || ':seed-' || lpad(g::text, 7, '0'), g, jsonb_build_object('g', g) from p, generate_series(1, ?) g`,
    [id, id, id, tasks],
  );
}
