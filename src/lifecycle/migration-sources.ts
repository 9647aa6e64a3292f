import type { Knex } from 'knex';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { TenancyConfigError } from '../errors';
import { quoteInput } from '../message-text';

/** A migration as Knex runs it. */
export interface TenantMigration {
  up(knex: Knex): Promise<unknown>;
  down?(knex: Knex): Promise<unknown>;
}

/** Where tenant migrations come from: a Knex migration source object, or a directory. */
export type TenantMigrationsOption =
  | Knex.MigrationSource<unknown>
  | { readonly directory: string }
  | readonly {
      readonly name: string;
      up(knex: Knex): Promise<unknown>;
      down?(knex: Knex): Promise<unknown>;
    }[];

// Knex refuses a migration without `down`; tenant migrations often have none.
function withDown(m: TenantMigration): Knex.Migration {
  return { up: (k) => m.up(k), down: (k) => (m.down ? m.down(k) : Promise.resolve()) };
}

const JS = /\.c?js$/;
const TS = /\.[cm]?ts$/;

// Whether `require()` can load TypeScript here: a loader registered a `.ts`
// hook (ts-node, tsx, @swc-node/register) or Node strips types itself.
function typeScriptLoadable(): boolean {
  return (
    '.ts' in require.extensions ||
    (process.features as { typescript?: unknown }).typescript !== undefined
  );
}

/**
 * The migration files of a directory in name order: `.js`/`.cjs`, and
 * `.ts`/`.cts`/`.mts` (not `.d.ts`) when a TypeScript loader is available.
 * A TypeScript file without a compiled `.js` twin and no loader is refused:
 * skipping it would leave tenants `active` without its tables.
 */
export function migrationFiles(directory: string): string[] {
  const files = readdirSync(directory).filter(
    (f) => (JS.test(f) || TS.test(f)) && !/\.d\.[cm]?[jt]s$/.test(f),
  );
  const compiled = new Set(files.filter((f) => JS.test(f)).map((f) => f.replace(JS, '')));
  const typescript = files.filter((f) => TS.test(f) && !compiled.has(f.replace(TS, '')));
  if (typescript.length > 0 && !typeScriptLoadable()) {
    throw new TenancyConfigError(
      `Cannot load tenant migration ${quoteInput(typescript[0])} because it is TypeScript and no TypeScript loader is registered. ` +
        'Compile the migrations to .js, or run with a loader (node --require ts-node/register, or tsx).',
    );
  }
  return files.filter((f) => JS.test(f) || typescript.includes(f)).sort();
}

/**
 * Normalises the migrations option into a Knex migration source. A
 * directory holds `.js`/`.cjs` files exporting `up` (and `down`), applied in
 * file-name order, as with Knex's own migrator; `.ts` files are loaded when
 * a TypeScript loader is registered, and refused (`TENANCY_CONFIG_INVALID`)
 * otherwise, never skipped.
 *
 * @example
 * ```ts
 * const source = toMigrationSource({ directory: 'dist/migrations/tenant' });
 * ```
 */
export function toMigrationSource(option: TenantMigrationsOption): Knex.MigrationSource<unknown> {
  if (Array.isArray(option)) {
    const list = option as readonly {
      name: string;
      up(k: Knex): Promise<unknown>;
      down?(k: Knex): Promise<unknown>;
    }[];
    return {
      getMigrations: () => Promise.resolve([...list]),
      getMigrationName: (m) => (m as { name: string }).name,
      getMigration: (m) => Promise.resolve(withDown(m as TenantMigration)),
    };
  }
  if ('directory' in option) {
    const directory = path.resolve(option.directory);
    return {
      getMigrations: () => {
        try {
          return Promise.resolve(migrationFiles(directory));
        } catch (error) {
          return Promise.reject(error as Error);
        }
      },
      getMigrationName: (file) => String(file),
      getMigration: (file) =>
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        Promise.resolve(withDown(require(path.join(directory, String(file))) as TenantMigration)),
    };
  }
  return option as Knex.MigrationSource<unknown>;
}

/**
 * Wraps a source so each migration runs with `search_path` set to one
 * tenant schema (inside the migration's own transaction, so nothing
 * survives on the pooled connection). Migrations stay schema-agnostic.
 */
export function inSchema(
  source: Knex.MigrationSource<unknown>,
  schema: string,
): Knex.MigrationSource<unknown> {
  return {
    getMigrations: (loadExtensions) => source.getMigrations(loadExtensions),
    getMigrationName: (m) => source.getMigrationName(m),
    getMigration: async (m) => {
      const migration = (await source.getMigration(m)) as TenantMigration;
      const scoped = (fn: (k: Knex) => Promise<unknown>) => async (knex: Knex) => {
        // `set local` only lasts for the transaction Knex runs the migration in.
        await knex.raw('set local search_path to ??', [schema]);
        return fn(knex);
      };
      return {
        up: scoped((k) => migration.up(k)),
        down: scoped((k) => (migration.down ? migration.down(k) : Promise.resolve())),
      } as Knex.Migration;
    },
  };
}
