/**
 * A mover in its own process, killed with SIGKILL right after it records the
 * step named on its command line (`started` for the move's first record):
 * what a crash, an OOM kill or a deploy does to a move.
 *
 * argv: <central url> <servers json> <tenant> <tier> <server|-> <kill-at step>
 */
import 'reflect-metadata';
import knexFactory from 'knex';
import { KnexTenantStore, withTenancy, type TenantTier } from '../../../src/index';
import { managerFor } from './move-fixture';

async function main(): Promise<void> {
  const [url, serversJson, id, tier, server, killAt] = process.argv.slice(2) as string[];
  const servers = JSON.parse(serversJson as string) as Record<
    string,
    { host: string; port: number }
  >;
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 4 } });
  const store = new KnexTenantStore(knex);
  const db = withTenancy(knex, {
    mode: 'row',
    tiers: true,
    tenantTables: ['projects', 'tasks'],
    database: { servers },
  });
  const manager = managerFor({ knex, store, servers, db });
  const die = () => process.kill(process.pid, 'SIGKILL');
  manager.events.subscribe('tenant.move_started', () => {
    if (killAt === 'started') die();
  });
  manager.events.subscribe('tenant.move_checkpoint', ({ step }) => {
    if (step === killAt) die();
  });
  await manager.move(id as string, {
    tier: tier as TenantTier,
    ...(server !== '-' ? { server } : {}),
    drainMs: 0,
  });
  process.stdout.write('finished\n');
  await knex.destroy();
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
