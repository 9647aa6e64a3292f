import 'reflect-metadata';
import knexFactory, { type Knex } from 'knex';
import { parseArgs } from 'node:util';
import { loadTenancyConfig } from '../config/load-tenancy-config';
import { isValidTenantId } from '../context/tenant-id';
import type { TenantRecord } from '../context/tenant-record';
import { TenancyError } from '../errors';
import { migrationProgressReporter, type ProgressStream } from '../lifecycle/migration-progress';
import { TenantChangeNotifier } from '../lifecycle/tenant-change-notifier';
import { TenantManager } from '../lifecycle/tenant-manager';
import { migrateCentral } from '../store/central-migrations';
import { KnexTenantStore } from '../store/knex-tenant-store';

/** Where the CLI writes and what environment it reads. */
export interface CliIo {
  readonly stdout: ProgressStream;
  readonly stderr: ProgressStream;
  readonly env: NodeJS.ProcessEnv;
}

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage/input, 3 some tenants failed. */
export const CLI_EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2, partial: 3 });

const USAGE = `Usage: tenantry [--config file] [--database-url url] [--migrations dir] [--json] <command>

Commands:
  tenants create <id> [--name name] [--no-provision]
  tenants list
  tenants show <id>
  tenants suspend <id> [--reason text]
  tenants activate <id>
  tenants archive <id> [--reason text]
  tenants delete <id> [--purge]
  migrate [--tenant id] [--concurrency n]
  migrate status [--tenant id]

The database comes from --database-url or DATABASE_URL; the isolation mode
from the tenancy config file (--config, JSON or YAML).`;

class UsageError extends Error {}

function formatTenant(t: TenantRecord): string {
  return `${t.id}\t${t.status}\t${t.name}${t.statusReason ? `\t(${t.statusReason})` : ''}`;
}

/**
 * The `tenantry` command line (see `tenantry --help`). Returns the exit code.
 *
 * @example
 * ```ts
 * const code = await runCli(['tenants', 'list'], { stdout: process.stdout, stderr: process.stderr, env: process.env });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        'database-url': { type: 'string' },
        migrations: { type: 'string' },
        name: { type: 'string' },
        reason: { type: 'string' },
        tenant: { type: 'string' },
        concurrency: { type: 'string' },
        purge: { type: 'boolean' },
        'no-provision': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.stderr.write(`tenantry: ${(error as Error).message}\n\n${USAGE}\n`);
    return CLI_EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? io.stdout : io.stderr).write(`${USAGE}\n`);
    return values.help ? CLI_EXIT.ok : CLI_EXIT.usage;
  }
  const out = (text: string) => io.stdout.write(`${text}\n`);
  let knex: Knex | undefined;
  try {
    const [group, action, arg] = positionals;
    const known =
      (group === 'tenants' &&
        ['create', 'list', 'show', 'suspend', 'activate', 'archive', 'delete'].includes(
          action ?? '',
        )) ||
      (group === 'migrate' && (action === undefined || action === 'status'));
    if (!known)
      throw new UsageError(`Cannot run "${positionals.join(' ')}" because it is not a command.`);
    const needsId = group === 'tenants' && action !== 'list';
    if (needsId && arg === undefined)
      throw new UsageError(`Cannot run "tenants ${action}" without a tenant id.`);
    if (needsId && !isValidTenantId(arg)) {
      throw new UsageError(
        `Cannot use tenant id "${String(arg).slice(0, 70)}" because it is not a valid id. Use 1-63 lower-case letters, digits or inner hyphens.`,
      );
    }
    if (values.tenant !== undefined && !isValidTenantId(values.tenant)) {
      throw new UsageError(
        `Cannot use --tenant "${String(values.tenant).slice(0, 70)}" because it is not a valid tenant id.`,
      );
    }
    const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
      throw new UsageError('Cannot use --concurrency because it must be an integer from 1 to 256.');
    }
    const config =
      values.config !== undefined ? loadTenancyConfig({ file: values.config }) : undefined;
    const isolation = config?.tenancy.isolation;
    const url = values['database-url'] ?? io.env.DATABASE_URL;
    if (!url)
      throw new UsageError(
        'Cannot reach the database because no URL was given. Pass --database-url or set DATABASE_URL.',
      );
    const migrationsDir = values.migrations ?? io.env.TENANTRY_MIGRATIONS_DIR;
    knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: concurrency + 2 } });
    await migrateCentral(knex);
    const store = new KnexTenantStore(knex);
    const notifier = new TenantChangeNotifier(knex);
    const manager = new TenantManager({
      knex,
      store,
      mode: isolation?.mode ?? 'row',
      ...(isolation?.schemaPrefix ? { schemaPrefix: isolation.schemaPrefix } : {}),
      ...(isolation?.database.servers ? { servers: isolation.database.servers } : {}),
      ...(isolation?.database.passwordRefs
        ? { passwordRefs: isolation.database.passwordRefs }
        : {}),
      ...(migrationsDir ? { migrations: { directory: migrationsDir } } : {}),
      notifier,
    });
    const show = (t: TenantRecord) => out(values.json ? JSON.stringify(t) : formatTenant(t));

    if (group === 'tenants') {
      const id = arg as string;
      switch (action) {
        case 'create':
          show(
            await manager.create({
              id,
              ...(values.name ? { name: values.name } : {}),
              provision: !values['no-provision'],
            }),
          );
          break;
        case 'list': {
          const all = await manager.list();
          if (values.json) out(JSON.stringify(all));
          else all.forEach(show);
          break;
        }
        case 'show':
          out(JSON.stringify(await manager.get(id), null, 2));
          break;
        case 'suspend':
          show(await manager.suspend(id, values.reason));
          break;
        case 'activate':
          show(await manager.activate(id));
          break;
        case 'archive':
          show(await manager.archive(id, values.reason));
          break;
        case 'delete':
          show(await manager.delete(id, { purge: values.purge === true }));
          break;
      }
      return CLI_EXIT.ok;
    }
    if (!migrationsDir)
      throw new UsageError(
        'Cannot migrate because no tenant migrations were given. Pass --migrations dir or set TENANTRY_MIGRATIONS_DIR.',
      );
    if (action === 'status') {
      const status = await manager.migrationStatus(values.tenant ? { tenant: values.tenant } : {});
      if (values.json) out(JSON.stringify(status));
      else {
        out(`latest: ${status.latest ?? '(none)'} (${status.total} migrations)`);
        for (const t of status.tenants) {
          out(
            `${t.tenantId}\t${t.version ?? '-'}\t${t.upToDate ? 'current' : `${t.pending} pending`}\t${t.status}${t.error ? `\t${t.error}` : ''}`,
          );
        }
      }
      return status.tenants.every((t) => t.upToDate) ? CLI_EXIT.ok : CLI_EXIT.partial;
    }
    const result = await manager.migrateTenants({
      concurrency,
      ...(values.tenant ? { tenant: values.tenant } : {}),
      onProgress: migrationProgressReporter(io.stderr),
    });
    if (values.json) out(JSON.stringify(result));
    else {
      out(
        `migrated ${result.migrated.length}, current ${result.current.length}, failed ${result.failed.length}`,
      );
      for (const f of result.failed) out(`FAILED ${f.tenantId}: ${f.error}`);
    }
    return result.failed.length > 0 ? CLI_EXIT.partial : CLI_EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`tenantry: ${error.message}\n`);
      return CLI_EXIT.usage;
    }
    if (error instanceof TenancyError) {
      io.stderr.write(`tenantry: ${error.code}: ${error.message}\n`);
      return error.status < 500 ? CLI_EXIT.usage : CLI_EXIT.failure;
    }
    const e = error as { code?: string; message?: string };
    io.stderr.write(`tenantry: ${e.code ? `${e.code}: ` : ''}${e.message ?? String(error)}\n`);
    return CLI_EXIT.failure;
  } finally {
    await knex?.destroy();
  }
}
