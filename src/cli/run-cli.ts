import 'reflect-metadata';
import knexFactory, { type Knex } from 'knex';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { loadTenancyConfig } from '../config/load-tenancy-config';
import { cliDatabase } from './cli-database';
import type { TenancyConfig } from '../config/tenancy-config';
import { isValidTenantId } from '../context/tenant-id';
import type { TenantRecord, TenantTier } from '../context/tenant-record';
import { isTenantTier } from '../isolation/tiered/tenant-tier';
import { TenancyConfigError, TenancyError } from '../errors';
import { tenantDatabaseName } from '../isolation/database/tenant-database-name';
import { withTenancy } from '../isolation/with-tenancy';
import { runTenancyDoctor, type TenancyDoctorReport } from '../lifecycle/doctor/run-tenancy-doctor';
import { migrationFiles } from '../lifecycle/migration-sources';
import { migrationProgressReporter, type ProgressStream } from '../lifecycle/migration-progress';
import { TenantChangeNotifier } from '../lifecycle/tenant-change-notifier';
import { TenantManager } from '../lifecycle/tenant-manager';
import { knexLogTo } from '../lifecycle/tenant-placement';
import type { TenancyLogger } from '../logger';
import { clause, messageWithCode, quoteInput } from '../message-text';
import { migrateCentral } from '../store/central-migrations';
import { KnexTenantStore } from '../store/knex-tenant-store';

/** A readable text stream for confirmations (e.g. `process.stdin`). */
export interface CliInput extends NodeJS.ReadableStream {
  /** Present and true on a terminal. */
  readonly isTTY?: boolean | undefined;
}

/** Where the CLI writes and what environment it reads. */
export interface CliIo {
  readonly stdout: ProgressStream;
  readonly stderr: ProgressStream;
  readonly env: NodeJS.ProcessEnv;
  /** Where confirmations are read from (only on a terminal). Default: none (treated as not a terminal). */
  readonly stdin?: CliInput | undefined;
}

/**
 * Exit codes: 0 ok, 1 runtime failure, 2 bad usage/input, 3 some tenants
 * failed (`doctor`: errors found), 4 `doctor` found warnings only.
 */
export const CLI_EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2, partial: 3, warnings: 4 });

const USAGE = `Usage: tenantry [--config file] [--database-url url | --knexfile file [--env name]] [--migrations dir] [--json] <command>

Commands:
  tenants create <id> [--name name] [--no-provision] [--tier row|schema|database] [--region r]
                 [--database-server name | --database-host h [--database-port n]]
  tenants provision <id>            provision a tenant made with --no-provision, or retry provisioning_failed
  tenants list                      id, status, tier (with isolation.tiers), name
  tenants show <id>
  tenants suspend <id> [--reason text]
  tenants activate <id>
  tenants archive <id> [--reason text]
  tenants delete <id> [--reason text] [--purge [--yes]]
  tenants purge <id> [--yes]        purge a deleted tenant again, or data left without a record
  tenants move <id> --tier row|schema|database [--server name] [--keep-source]
                                    move a tenant online to another tier or database server
  tenants move <id> --resume | --rollback | --cleanup
                                    finish, undo, or drop the kept source of an interrupted move
  migrate [--tenant id] [--concurrency n] [--dry-run]
  migrate status [--tenant id]
  doctor [--tenant id] [--discover] [--app-role name]
                                    check every tier's catalog: keys, indexes, RLS, migrations,
                                    orphaned rows and storage, records without storage

Options:
  --config file             tenancy config (JSON or YAML), as the app reads it; TENANCY_* variables win
  --database-url url        the central database (default: --knexfile, else DATABASE_URL, else the
                            config file's tenancy.database.url)
  --knexfile file           take the central database from a knexfile (client pg): its connection, searchPath
  --env name                the knexfile's environment (default: NODE_ENV, else development)
  --migrations dir          tenant migrations (default: TENANTRY_MIGRATIONS_DIR); .js, or .ts with a loader
  --schema-prefix p         schema mode prefix (default: config isolation.schemaPrefix)
  --database-prefix p       database mode prefix (default: TENANTRY_DATABASE_PREFIX, else config
                            isolation.database.prefix / TENANCY_DB_PREFIX, else tenant_)
  --json                    print only JSON on stdout, failures included
  --yes                     confirm a purge without asking (required off a terminal)
  --discover                doctor: also check every public table with the tenant column
  --app-role name           doctor: the role the app connects as, for the RLS checks
                            (default: the doctor's own role)
  --version, --help

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or input, 3 some tenants failed or are due
(doctor: errors found), 4 doctor found warnings only.`;

const OPTIONS = {
  config: { type: 'string' },
  'database-url': { type: 'string' },
  knexfile: { type: 'string' },
  env: { type: 'string' },
  migrations: { type: 'string' },
  'schema-prefix': { type: 'string' },
  'database-prefix': { type: 'string' },
  'database-server': { type: 'string' },
  'database-host': { type: 'string' },
  'database-port': { type: 'string' },
  tier: { type: 'string' },
  region: { type: 'string' },
  name: { type: 'string' },
  reason: { type: 'string' },
  tenant: { type: 'string' },
  concurrency: { type: 'string' },
  purge: { type: 'boolean' },
  yes: { type: 'boolean' },
  'no-provision': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  server: { type: 'string' },
  'keep-source': { type: 'boolean' },
  resume: { type: 'boolean' },
  rollback: { type: 'boolean' },
  cleanup: { type: 'boolean' },
  discover: { type: 'boolean' },
  'app-role': { type: 'string' },
  json: { type: 'boolean' },
  version: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

const GLOBAL: readonly OptionName[] = [
  'config',
  'database-url',
  'knexfile',
  'env',
  'migrations',
  'schema-prefix',
  'database-prefix',
  'json',
];

// The options each command takes besides the global ones: anything else is refused.
const COMMANDS: Readonly<Record<string, readonly OptionName[]>> = {
  'tenants create': [
    'name',
    'no-provision',
    'tier',
    'region',
    'database-server',
    'database-host',
    'database-port',
  ],
  'tenants provision': [],
  'tenants list': [],
  'tenants show': [],
  'tenants suspend': ['reason'],
  'tenants activate': [],
  'tenants archive': ['reason'],
  'tenants delete': ['reason', 'purge', 'yes'],
  'tenants purge': ['yes'],
  'tenants move': ['tier', 'server', 'keep-source', 'resume', 'rollback', 'cleanup'],
  migrate: ['tenant', 'concurrency', 'dry-run'],
  'migrate status': ['tenant'],
  doctor: ['tenant', 'discover', 'app-role'],
};

class UsageError extends Error {}

// As tenantSchemaName() checks it, so a bad prefix is bad usage (exit 2), not a failure at start-up.
const PREFIX = /^[a-z_][a-z0-9_]{0,20}$/;
// A PostgreSQL role name as doctor compares it with pg_roles.rolname (never interpolated).
const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;
// As config's tenancy.isolation.database.servers names are checked.
const SERVER_NAME = /^[A-Za-z0-9_.-]{1,63}$/;
const HOST = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

function formatTenant(t: TenantRecord, defaultTier?: TenantTier): string {
  const reason = t.statusReason ? `\t(${clause(t.statusReason)})` : '';
  // A mixed fleet shows each tenant's tier (the record's, else the default).
  const tier = defaultTier === undefined ? '' : `\t${tierLabel(t, defaultTier)}`;
  return `${t.id}\t${t.status}${tier}\t${clause(t.name)}${reason}`;
}

function tierLabel(t: TenantRecord, defaultTier: TenantTier): string {
  const tier: unknown = t.isolation?.tier ?? defaultTier;
  return isTenantTier(tier) ? tier : `invalid tier ${quoteInput(String(tier))}`;
}

function version(): string {
  // dist/cli/ and build/src/cli/ sit at different depths: walk up to our package.json.
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tenantry' && pkg.version) return pkg.version;
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

function parseError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const option = /'(-[^']*?)(?: <value>)?'/.exec(e.message ?? '')?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `Cannot use option ${quoteInput(option ?? '?')} because it is unknown. See tenantry --help.`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return `Cannot use option ${quoteInput(option ?? '?')} because it needs a value (or takes none). See tenantry --help.`;
    default:
      return `Cannot parse the arguments because ${clause(e.message ?? String(error))}. See tenantry --help.`;
  }
}

function confirm(io: CliIo, question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: io.stdin as NodeJS.ReadableStream, terminal: false });
    io.stderr.write(question);
    let answered = false;
    rl.once('line', (line) => {
      answered = true;
      rl.close();
      resolve(line.trim());
    });
    rl.once('close', () => {
      if (!answered) resolve('');
    });
  });
}

/**
 * The `tenantry` command line (see `tenantry --help`). Returns the exit code.
 * With `--json`, stdout carries only JSON, failures included
 * (`{ "error": { "code", "message", "exitCode" } }`); human text and Knex's
 * own log lines go to stderr.
 *
 * @example
 * ```ts
 * const code = await runCli(['tenants', 'list'], { stdout: process.stdout, stderr: process.stderr, env: process.env });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  const out = (text: string) => io.stdout.write(`${text}\n`);
  const fail = (exitCode: number, message: string, code?: string): number => {
    // The code once: Node already writes it into many messages ("connect ECONNREFUSED …").
    const named =
      code !== undefined && new RegExp(`(^|\\W)${code.replace(/\W/g, '')}(\\W|$)`).test(message);
    io.stderr.write(`tenantry: ${code && !named ? `${code}: ` : ''}${message}\n`);
    if (json) out(JSON.stringify({ error: { code: code ?? null, message, exitCode } }));
    return exitCode;
  };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: OPTIONS });
  } catch (error) {
    return fail(CLI_EXIT.usage, parseError(error), 'USAGE');
  }
  const { values, positionals } = parsed;
  if (values.version) {
    out(json ? JSON.stringify({ version: version() }) : `tenantry ${version()}`);
    return CLI_EXIT.ok;
  }
  if (values.help) {
    io.stdout.write(json ? `${JSON.stringify({ usage: USAGE })}\n` : `${USAGE}\n`);
    return CLI_EXIT.ok;
  }
  if (positionals.length === 0) {
    if (!json) io.stderr.write(`${USAGE}\n`);
    return fail(CLI_EXIT.usage, 'Cannot run without a command. See tenantry --help.', 'USAGE');
  }
  const stderrLogger = stderrLoggerOf(io.stderr);
  let knex: Knex | undefined;
  try {
    const [group, action, arg] = positionals;
    const command =
      group === 'migrate' && action !== 'status' ? 'migrate' : `${group} ${action ?? ''}`.trim();
    const allowed = COMMANDS[command];
    if (!allowed) {
      throw new UsageError(
        `Cannot run ${quoteInput(positionals.join(' '))} because it is not a command. See tenantry --help.`,
      );
    }
    // Positionals past the command (and its id): none are taken.
    const takesId = command.startsWith('tenants') && command !== 'tenants list';
    const stray = positionals.slice(command === 'migrate' ? 1 : takesId ? 3 : 2);
    if (stray.length > 0) {
      throw new UsageError(
        `Cannot run "${command}" because of the extra argument ${quoteInput(stray[0])}. See tenantry --help.`,
      );
    }
    for (const name of Object.keys(values) as OptionName[]) {
      if (!GLOBAL.includes(name) && !allowed.includes(name)) {
        throw new UsageError(
          `Cannot use option "--${name}" with "${command}" because that command does not take it.`,
        );
      }
    }
    const needsId = takesId;
    if (needsId && arg === undefined)
      throw new UsageError(`Cannot run "${command}" without a tenant id.`);
    if (needsId && !isValidTenantId(arg)) {
      throw new UsageError(
        `Cannot use tenant id ${quoteInput(arg)} because it is not a valid id. Use 1-63 lower-case letters, digits or inner hyphens.`,
      );
    }
    if (values.tenant !== undefined && !isValidTenantId(values.tenant)) {
      throw new UsageError(
        `Cannot use --tenant ${quoteInput(values.tenant)} because it is not a valid tenant id.`,
      );
    }
    for (const name of ['name', 'reason'] as const) {
      const value = values[name];
      if (
        value !== undefined &&
        (value.trim() === '' || value.length > 1000 || CONTROL.test(value))
      ) {
        throw new UsageError(
          `Cannot use --${name} ${quoteInput(value)} because it is empty, longer than 1000 characters or holds control characters.`,
        );
      }
    }
    const prefixes = {
      'schema-prefix': values['schema-prefix'],
      'database-prefix': values['database-prefix'] ?? io.env.TENANTRY_DATABASE_PREFIX,
    };
    for (const [name, value] of Object.entries(prefixes)) {
      if (value !== undefined && !PREFIX.test(value)) {
        throw new UsageError(
          `Cannot use --${name} ${quoteInput(value)} because it is not a name prefix. Use 1-21 of [a-z0-9_], starting with a letter or _.`,
        );
      }
    }
    const host = values['database-host'];
    if (host !== undefined && !HOST.test(host)) {
      throw new UsageError(
        `Cannot use --database-host ${quoteInput(host)} because it is not a host name or IPv4 address.`,
      );
    }
    const server = values['database-server'];
    if (server !== undefined && !SERVER_NAME.test(server)) {
      throw new UsageError(
        `Cannot use --database-server ${quoteInput(server)} because it is not a server name. Use 1-63 of [A-Za-z0-9_.-], as in tenancy.isolation.database.servers.`,
      );
    }
    if (command === 'tenants move') {
      const modes = (['resume', 'rollback', 'cleanup'] as const).filter((m) => values[m] === true);
      const tier = values.tier;
      if (modes.length > 1 || (modes.length === 1 && tier !== undefined)) {
        throw new UsageError(
          'Cannot combine --tier, --resume, --rollback and --cleanup. Give one of them.',
        );
      }
      if (
        modes.length === 0 &&
        (tier === undefined || !['row', 'schema', 'database'].includes(tier))
      ) {
        throw new UsageError(
          `Cannot move a tenant to tier ${quoteInput(tier ?? '')}. Use --tier row, schema or database (or --resume, --rollback, --cleanup).`,
        );
      }
      if (
        values.server !== undefined &&
        (tier !== 'database' || !SERVER_NAME.test(values.server))
      ) {
        throw new UsageError(
          `Cannot use --server ${quoteInput(values.server)}: it needs --tier database and a name of [A-Za-z0-9_.-], as in tenancy.isolation.database.servers.`,
        );
      }
      if (values['keep-source'] === true && tier === undefined) {
        throw new UsageError('Cannot use --keep-source without --tier.');
      }
    }
    const port = values['database-port'];
    if (server !== undefined && (host !== undefined || port !== undefined)) {
      throw new UsageError(
        'Cannot place a tenant with --database-server and --database-host/--database-port together because the server already gives host and port. Pass one of them.',
      );
    }
    if (
      port !== undefined &&
      (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)
    ) {
      throw new UsageError(
        `Cannot use --database-port ${quoteInput(port)} because it must be an integer from 1 to 65535.`,
      );
    }
    const appRole = values['app-role'];
    if (appRole !== undefined && !ROLE_NAME.test(appRole)) {
      throw new UsageError(
        `Cannot use --app-role ${quoteInput(appRole)} because it is not a role name. Use 1-63 of [A-Za-z0-9_$-], starting with a letter or _.`,
      );
    }
    const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
    if (!/^\d+$/.test(values.concurrency ?? '4') || concurrency < 1 || concurrency > 256) {
      throw new UsageError(
        `Cannot use --concurrency ${quoteInput(values.concurrency)} because it must be an integer from 1 to 256.`,
      );
    }
    // The same sources as the app: the file, then TENANCY_* variables over it.
    const config: TenancyConfig = loadTenancyConfig({
      ...(values.config !== undefined ? { file: values.config } : {}),
      env: io.env,
    });
    const isolation = config.tenancy.isolation;
    const tier = values.tier;
    if (tier !== undefined && !isTenantTier(tier)) {
      throw new UsageError(
        `Cannot use --tier ${quoteInput(tier)} because it is not a tier. Use row, schema or database.`,
      );
    }
    if (tier !== undefined && !isolation.tiers && tier !== isolation.mode) {
      throw new UsageError(
        `Cannot put a tenant on the ${tier} tier because every tenant is on the ${isolation.mode} tier. ` +
          'Turn tiers on (tenancy.isolation.tiers, TENANCY_ISOLATION_TIERS=true) to mix tiers.',
      );
    }
    const region = values.region;
    if (region !== undefined && !SERVER_NAME.test(region)) {
      throw new UsageError(
        `Cannot use --region ${quoteInput(region)} because it is not a region label. Use 1-63 of [A-Za-z0-9_.-].`,
      );
    }
    const placed = server !== undefined || host !== undefined || port !== undefined;
    const tierOfNew = tier ?? isolation.mode;
    if (placed && tierOfNew !== 'database') {
      throw new UsageError(
        isolation.tiers
          ? `Cannot place a tenant with --database-server, --database-host or --database-port because it goes on the ${tierOfNew} tier. Pass --tier database.`
          : `Cannot place a tenant with --database-server, --database-host or --database-port because the isolation mode is ${isolation.mode}. Use database mode (TENANCY_ISOLATION=database).`,
      );
    }
    const servers = isolation.database.servers ?? {};
    if (server !== undefined && !Object.hasOwn(servers, server)) {
      const known = Object.keys(servers);
      throw new UsageError(
        `Cannot place a tenant on server ${quoteInput(server)} because it is not configured. ` +
          (known.length > 0
            ? `Use one of ${known.map((k) => quoteInput(k)).join(', ')}, or add it to tenancy.isolation.database.servers.`
            : 'Add it to tenancy.isolation.database.servers in the config file.'),
      );
    }
    if (values['database-url'] !== undefined && values.knexfile !== undefined) {
      throw new UsageError(
        'Cannot choose the database because both --database-url and --knexfile name one. Pass only one.',
      );
    }
    if (values.env !== undefined && values.knexfile === undefined) {
      throw new UsageError('Cannot use --env without --knexfile. Pass --knexfile file --env name.');
    }
    const database = cliDatabase({
      databaseUrl: values['database-url'],
      knexfile: values.knexfile,
      knexEnv: values.env,
      env: io.env,
      config,
    });
    if (!database)
      throw new UsageError(
        'Cannot reach the database because none was given. Pass --database-url or --knexfile, set DATABASE_URL, or set tenancy.database.url in the --config file.',
      );
    const migrationsDir = values.migrations ?? io.env.TENANTRY_MIGRATIONS_DIR;
    if (command.startsWith('migrate') && !migrationsDir)
      throw new UsageError(
        'Cannot migrate because no tenant migrations were given. Pass --migrations dir or set TENANTRY_MIGRATIONS_DIR.',
      );
    // Refuse TypeScript migrations nobody can load before anything is provisioned with them.
    if (migrationsDir) migrationFiles(path.resolve(migrationsDir));
    // The flag, then the CLI's own variable, then the config the app reads (file, TENANCY_DB_PREFIX).
    const databasePrefix = prefixes['database-prefix'] ?? isolation.database.prefix;
    knex = knexFactory({
      client: 'pg',
      connection: database.connection,
      ...(database.searchPath !== undefined ? { searchPath: [database.searchPath].flat() } : {}),
      pool: { min: 0, max: concurrency + 2 },
      log: knexLogTo(stderrLogger),
    });
    if (command === 'doctor') {
      if (appRole !== undefined && !isolation.rls) {
        throw new UsageError(
          'Cannot use --app-role because the config does not turn the RLS backstop on, so no role is checked. Set tenancy.isolation.rls: true, or leave --app-role out.',
        );
      }
      // Doctor only reads: it does not run the central migrations the other commands run.
      const { rows } = (await knex.raw("select to_regclass('tenants') is not null as present")) as {
        rows: Array<{ present: boolean }>;
      };
      if (!rows[0]?.present) {
        throw new TenancyConfigError(
          `Cannot examine the fleet because the central database (${database.source}) has no tenants table. Check the database, or create it with any other tenantry command (e.g. tenantry tenants list).`,
        );
      }
      const report = await runTenancyDoctor({
        knex,
        store: new KnexTenantStore(knex),
        mode: isolation.mode,
        tenantColumn: isolation.tenantColumn,
        tenantTables: isolation.tenantTables,
        sharedTables: isolation.sharedTables,
        discover: values.discover === true,
        rls: isolation.rls ? { role: appRole } : false,
        schemaPrefix: values['schema-prefix'] ?? isolation.schemaPrefix,
        databasePrefix,
        ...(isolation.database.servers ? { servers: isolation.database.servers } : {}),
        ...(isolation.database.passwordRefs
          ? { passwordRefs: isolation.database.passwordRefs }
          : {}),
        ...(migrationsDir ? { migrations: { directory: migrationsDir } } : {}),
        tenant: values.tenant,
        logger: stderrLogger,
      });
      if (json) out(JSON.stringify(report));
      else printDoctorReport(report, out);
      return report.errors > 0
        ? CLI_EXIT.partial
        : report.warnings > 0
          ? CLI_EXIT.warnings
          : CLI_EXIT.ok;
    }
    await migrateCentral(knex);
    const store = new KnexTenantStore(knex);
    const notifier = new TenantChangeNotifier(knex);
    const manager = new TenantManager({
      knex,
      store,
      mode: isolation.mode,
      tiers: isolation.tiers,
      ...(isolation.centralRegion !== undefined ? { centralRegion: isolation.centralRegion } : {}),
      schemaPrefix: values['schema-prefix'] ?? isolation.schemaPrefix,
      databasePrefix,
      ...(isolation.database.servers ? { servers: isolation.database.servers } : {}),
      ...(isolation.database.passwordRefs ? { passwordRefs: isolation.database.passwordRefs } : {}),
      ...(migrationsDir ? { migrations: { directory: migrationsDir } } : {}),
      ...(isolation.mode === 'row' || isolation.tiers
        ? {
            db: withTenancy(knex, {
              mode: isolation.mode,
              tiers: isolation.tiers,
              tenantColumn: isolation.tenantColumn,
              tenantTables: [...isolation.tenantTables],
              sharedTables: [...isolation.sharedTables],
            }),
          }
        : {}),
      logger: stderrLogger,
      notifier,
    });
    const shownTier = isolation.tiers ? isolation.mode : undefined;
    const show = (t: TenantRecord) => out(json ? JSON.stringify(t) : formatTenant(t, shownTier));
    const confirmPurge = async (id: string): Promise<void> => {
      if (values.yes) return;
      if (!io.stdin?.isTTY || !io.stderr.isTTY) {
        throw new UsageError(
          `Cannot purge tenant "${id}" without confirmation because this is not a terminal. Pass --yes.`,
        );
      }
      const answer = await confirm(
        io,
        `Purge tenant "${id}": delete all its data for good? Type the tenant id to confirm: `,
      );
      if (answer !== id) {
        throw new UsageError(`Cannot purge tenant "${id}" because it was not confirmed.`);
      }
    };

    if (command.startsWith('tenants')) {
      const id = arg as string;
      switch (command) {
        case 'tenants create':
          show(
            await manager.create({
              id,
              ...(values.name ? { name: values.name } : {}),
              ...(tier !== undefined ? { tier } : {}),
              ...(region !== undefined ? { region } : {}),
              ...(placed
                ? {
                    isolation: {
                      database: {
                        database: tenantDatabaseName(id, databasePrefix),
                        ...(server !== undefined ? { server } : {}),
                        ...(host !== undefined ? { host } : {}),
                        ...(port !== undefined ? { port: Number(port) } : {}),
                      },
                    },
                  }
                : {}),
              provision: !values['no-provision'],
            }),
          );
          break;
        case 'tenants provision':
          show(await manager.provision(id));
          break;
        case 'tenants list': {
          const all = await manager.list();
          if (json) out(JSON.stringify(all));
          else all.forEach(show);
          break;
        }
        case 'tenants show':
          out(JSON.stringify(await manager.get(id), null, json ? undefined : 2));
          break;
        case 'tenants suspend':
          show(await manager.suspend(id, values.reason));
          break;
        case 'tenants activate':
          show(await manager.activate(id));
          break;
        case 'tenants archive':
          show(await manager.archive(id, values.reason));
          break;
        case 'tenants delete':
          if (values.purge) {
            await manager.get(id); // 404 before asking
            await confirmPurge(id);
          }
          show(
            await manager.delete(id, {
              purge: values.purge === true,
              ...(values.reason ? { reason: values.reason } : {}),
            }),
          );
          break;
        case 'tenants move': {
          const move = values.resume
            ? await manager.resumeMove(id)
            : values.rollback
              ? await manager.rollbackMove(id)
              : values.cleanup
                ? await manager.cleanupMove(id)
                : await manager.move(id, {
                    tier: values.tier as TenantTier,
                    ...(values.server !== undefined ? { server: values.server } : {}),
                    ...(values['keep-source'] === true ? { keepSource: true } : {}),
                  });
          out(
            json
              ? JSON.stringify(move)
              : `${id}\tmove ${move.status}\tstep ${move.step}\t${move.target.tier ?? ''}` +
                  (move.checkpoint.freezeMs !== undefined
                    ? `\tfreeze ${move.checkpoint.freezeMs} ms`
                    : ''),
          );
          break;
        }
        case 'tenants purge':
          await confirmPurge(id);
          await manager.purge(id);
          out(json ? JSON.stringify({ id, purged: true }) : `${id}\tpurged`);
          break;
      }
      return CLI_EXIT.ok;
    }
    const scope = values.tenant ? { tenant: values.tenant } : {};
    if (command === 'migrate status' || values['dry-run']) {
      const status = await manager.migrationStatus(scope);
      const due = status.tenants.filter((t) => !t.upToDate);
      if (values['dry-run']) {
        if (json) {
          out(
            JSON.stringify({
              dryRun: true,
              latest: status.latest,
              tenants: due.map((t) => ({ tenantId: t.tenantId, migrations: t.pendingMigrations })),
            }),
          );
        } else {
          out(`would migrate ${due.length} of ${status.tenants.length} tenants (dry run)`);
          for (const t of due) out(`${t.tenantId}\t${t.pendingMigrations.join(', ')}`);
        }
        return CLI_EXIT.ok;
      }
      if (json) out(JSON.stringify(status));
      else {
        out(`latest: ${status.latest ?? '(none)'} (${status.total} migrations)`);
        for (const t of status.tenants) {
          out(
            `${t.tenantId}\t${t.version ?? '-'}\t${t.upToDate ? 'current' : `${t.pending} pending`}\t${t.status}${t.error ? `\t${clause(t.error)}` : ''}`,
          );
        }
      }
      return due.length === 0 ? CLI_EXIT.ok : CLI_EXIT.partial;
    }
    const result = await manager.migrateTenants({
      concurrency,
      ...scope,
      onProgress: migrationProgressReporter(io.stderr),
    });
    if (json) out(JSON.stringify(result));
    else {
      out(
        `migrated ${result.migrated.length}, current ${result.current.length}, failed ${result.failed.length}`,
      );
      for (const f of result.failed) out(`FAILED ${f.tenantId}: ${clause(f.error)}`);
    }
    return result.failed.length > 0 ? CLI_EXIT.partial : CLI_EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) return fail(CLI_EXIT.usage, error.message, 'USAGE');
    if (error instanceof TenancyError) {
      return fail(
        error.status < 500 ? CLI_EXIT.usage : CLI_EXIT.failure,
        clause(error.message) + '.',
        error.code,
      );
    }
    // Node and pg errors: their code once (Node's messages already start with it).
    const raw = (error as { code?: unknown }).code;
    const code = typeof raw === 'string' && raw !== '' ? raw : undefined;
    return fail(
      CLI_EXIT.failure,
      `${clause(error instanceof Error ? error.message : String(error))}.`,
      code,
    );
  } finally {
    await knex?.destroy();
  }
}

function printDoctorReport(report: TenancyDoctorReport, out: (text: string) => void): void {
  for (const f of report.findings) {
    const where = [f.tier, f.tenant, f.table].filter((v) => v !== undefined).join(' ');
    out(`${f.severity.toUpperCase()}\t${f.check}\t${where}\t${clause(f.detail)}`);
    out(`\tfix: ${clause(f.fix)}`);
  }
  const scope = `tiers ${report.tiers.join(', ') || '(none)'}; ${report.tenants} tenants, ${report.tables.length} tenant tables`;
  out(
    report.findings.length === 0
      ? `doctor: no problems found (${scope})`
      : `doctor: ${report.errors} errors, ${report.warnings} warnings (${scope})`,
  );
}

// Knex's migrator warns with the error it is about to throw; the CLI reports that error itself.
// Likewise for a connection that cannot be acquired.
const REPEATED =
  /^knex: (migration file "[^"]*" failed|migration failed with error:|Acquire connection error)/;

// Diagnostics (Knex's warnings, failed notifications) as one escaped line each on stderr.
function stderrLoggerOf(stderr: ProgressStream): TenancyLogger {
  const line = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    if (REPEATED.test(message)) return;
    const detail =
      fields && 'error' in fields ? `: ${messageWithCode(fields.error as unknown)}` : '';
    // One line: the first line of the message (Knex appends stack traces).
    const first = message.split('\n')[0] ?? '';
    stderr.write(`tenantry ${level}: ${clause(first)}${clause(detail)}\n`);
  };
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: line('warn'),
    error: line('error'),
  };
}
