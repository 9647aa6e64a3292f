/**
 * Online move of one tenant with 100k rows (TENANTRY_BENCH_ROWS), row tier →
 * schema tier, while a writer keeps inserting rows of that tenant: the time
 * of the whole move, and the length of its write freeze (goal: < 1 s). The
 * baseline, measured in the same run on the same rows: one plain
 * `COPY (select …) TO STDOUT` piped into `COPY … FROM STDIN` of every table
 * into an empty schema (what a hand-written offline move does).
 *
 * DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; a scratch database is created and dropped).
 *
 *   npm run build:test && node build/bench/move.bench.js
 */
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { KnexTenantStore, TenantManager, migrateCentral, withTenancy } from '../src/index';

const ROWS = Number(process.env.TENANTRY_BENCH_ROWS ?? 100_000);
const SERVER = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const migrations = [
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
        t.uuid('project_id').notNullable().references('id').inTable('projects');
        t.text('title').notNullable();
        t.integer('n').notNullable().defaultTo(0);
        t.jsonb('meta');
      });
    },
  },
];

async function main(): Promise<void> {
  const dbName = `tenantry_bench_move_${randomBytes(3).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: SERVER, pool: { min: 0, max: 1 } });
  await admin.raw('create database ??', [dbName]);
  const url = new URL(SERVER);
  url.pathname = `/${dbName}`;
  const knex = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 6 } });
  try {
    await migrateCentral(knex);
    const store = new KnexTenantStore(knex);
    const db = withTenancy(knex, { mode: 'row', tiers: true, tenantTables: ['projects', 'tasks'] });
    const manager = new TenantManager({ knex, store, mode: 'row', migrations, db });
    await manager.migrateTenants();
    for (const id of ['big', 'other']) {
      await manager.create({ id });
      await knex.raw(
        `with p as (insert into projects (tenant_id, name) values (?, 'main') returning id)
         insert into tasks (tenant_id, project_id, title, n, meta)
         select ?, p.id, 'task ' || g, g, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', 'b'))
           from p, generate_series(1, ?) g`,
        [id, id, ROWS],
      );
    }
    await knex.raw('vacuum analyze tasks');

    // Baseline: plain COPY of the same rows into an empty schema.
    await knex.raw('create schema bench_copy');
    await knex.raw('create table bench_copy.projects (like projects including all)');
    await knex.raw(
      'create table bench_copy.tasks (like tasks including all, foreign key (project_id) references bench_copy.projects (id))',
    );
    const source = new pg.Client(url.toString());
    const target = new pg.Client(url.toString());
    await source.connect();
    await target.connect();
    let t0 = performance.now();
    await target.query('begin');
    for (const table of ['projects', 'tasks']) {
      await pipeline(
        source.query(copyTo(`copy (select * from ${table} where tenant_id = 'big') to stdout`)),
        target.query(copyFrom(`copy bench_copy.${table} from stdin`)),
      );
    }
    await target.query('commit');
    const baselineS = (performance.now() - t0) / 1000;
    await source.end();
    await target.end();
    await knex.raw('drop schema bench_copy cascade');

    // The move, with a writer inserting rows of the moving tenant throughout.
    let writing = true;
    let acknowledged = 0;
    let refused = 0;
    const [project] = (await knex('projects').where({ tenant_id: 'big' }).select('id')) as {
      id: string;
    }[];
    const writer = (async () => {
      while (writing) {
        try {
          await knex('tasks').insert({
            tenant_id: 'big',
            project_id: project?.id,
            title: `live ${acknowledged}`,
          });
          acknowledged += 1;
        } catch {
          refused += 1;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const steps: string[] = [];
    let last = performance.now();
    manager.events.subscribe('tenant.move_checkpoint', ({ step }) => {
      const now = performance.now();
      steps.push(`${step} +${Math.round(now - last)} ms`);
      last = now;
    });
    t0 = performance.now();
    last = t0;
    const move = await manager.move('big', { tier: 'schema', drainMs: 0 });
    const moveS = (performance.now() - t0) / 1000;
    writing = false;
    await writer;
    const freezeMs = move.checkpoint.freezeMs ?? NaN;
    const moved = Object.values(move.checkpoint.verified ?? {}).reduce((a, b) => a + b, 0);
    console.log(
      `move row → schema, ${ROWS} rows (+${acknowledged} written live, ${refused} refused in the freeze; ${moved} rows verified)`,
    );
    console.log(`  plain COPY baseline:  ${baselineS.toFixed(2)} s`);
    console.log(
      `  online move:          ${moveS.toFixed(2)} s  (ratio vs plain COPY ${(moveS / baselineS).toFixed(2)})`,
    );
    console.log(
      `  write freeze:         ${freezeMs} ms  (goal < 1000 ms: ${freezeMs < 1000 ? 'met' : 'NOT met'}; ${(freezeMs / 1000 / baselineS).toFixed(3)} of the plain COPY time)`,
    );
    console.log(`  steps:                ${steps.join(', ')}`);
    await db.destroy();
  } finally {
    await knex.destroy();
    await admin.raw('drop database if exists ?? with (force)', [dbName]);
    await admin.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
