import { TenantScopeError, UnsafeQueryError } from '../../errors';
import { describeScope, type CapturedScope } from '../scope-capture';
import { parseSql } from './sql-parser';
import { proveStatement, type ProofSettings, type StatementProof } from './statement-proof';

/** Default number of proofs kept (one per distinct SQL text). */
export const DEFAULT_PROOF_CACHE_SIZE = 5000;

/** Settings of a {@link FinalSqlVerifier}. */
export interface FinalSqlVerifierSettings extends ProofSettings {
  /** How many proofs (or refusals) to keep, least recently used evicted first. */
  readonly cacheSize: number;
  /** The schema of a tenant (schema mode). */
  readonly schemaFor: (scope: CapturedScope & { kind: 'tenant' }) => string;
}

// Test-only switch for the mutation checks: they prove a suite fails without the verifier.
let verifierDisabled = false;

/**
 * Turns the final-SQL verifier off (or back on) process-wide. Internal: only
 * the mutation tests use it. Not exported from the package.
 */
export function setVerifierDisabledForMutationTest(disabled: boolean): void {
  verifierDisabled = disabled;
}

/**
 * What turns a compiled text into what PostgreSQL receives (the knex
 * client: `?` numbered as `$n`); a pure function of the text. Called on
 * cache misses only.
 */
export interface PlaceholderDialect {
  positionBindings(sql: string): string;
}

const SQL_AS_IS: PlaceholderDialect = { positionBindings: (sql) => sql };

/** A cached refusal: the message, re-thrown as a fresh error each time. */
interface Refusal {
  readonly refused: string;
}

type CacheEntry = StatementProof | Refusal;

/** Counters for benches and diagnostics. */
export interface VerifierStats {
  /** Statements proven by parsing (cache misses). */
  parsed: number;
  /** Statements served from the cache. */
  cached: number;
  /** Statements refused. */
  refused: number;
}

/**
 * The final authority of row and schema mode: before a statement is sent,
 * its final SQL text (what PostgreSQL will execute, placeholders and all)
 * is parsed by PostgreSQL's own parser and proven tenant-safe by
 * {@link proveStatement}, and the execution's bindings are checked against
 * the proof. It shares no code with the rewrite, so a rewrite bug (or a
 * Knex upgrade that changes what the rewrite sees) becomes a refusal, never
 * a leak. Proofs are cached by SQL text (bounded LRU): in row mode the text
 * of a statement shape is the same for every tenant.
 */
export class FinalSqlVerifier {
  readonly #settings: FinalSqlVerifierSettings;
  readonly #cache = new Map<string, CacheEntry>();
  readonly stats: VerifierStats = { parsed: 0, cached: 0, refused: 0 };

  constructor(settings: FinalSqlVerifierSettings) {
    if (!Number.isInteger(settings.cacheSize) || settings.cacheSize < 0) {
      throw new TypeError(
        `Cannot use a proof cache size of ${String(settings.cacheSize)}. Use a whole number >= 0.`,
      );
    }
    this.#settings = settings;
  }

  /** Number of cached proofs. */
  get size(): number {
    return this.#cache.size;
  }

  /** Drops every cached proof (the table lists changed). */
  clear(): void {
    this.#cache.clear();
  }

  /**
   * Throws unless `sql`, executed with `bindings` as `scope`, is proven
   * tenant-safe. `conflict` is a second scope the statement was also
   * claimed by (built in one tenant, executed in another): a statement on
   * tenant tables with a conflict is refused. `dialect` turns `sql` (the
   * text as compiled, the cache key) into what PostgreSQL receives (the
   * driver's placeholder numbering); it must be a pure function of `sql`.
   */
  verify(
    sql: string,
    bindings: readonly unknown[] | undefined,
    scope: CapturedScope,
    conflict?: CapturedScope,
    dialect: PlaceholderDialect = SQL_AS_IS,
  ): void {
    if (scope.kind === 'system' || verifierDisabled) return;
    const proof = this.#proof(sql, dialect);
    if ('refused' in proof) {
      this.stats.refused++;
      throw new UnsafeQueryError(proof.refused);
    }
    if (!proof.touchesTenant) return;
    if (conflict !== undefined) {
      this.stats.refused++;
      throw new TenantScopeError(
        `Cannot run a statement on a tenant table built under ${describeScope(scope)} in ` +
          `${describeScope(conflict)} because builders are lazy and would cross tenants. ` +
          'Build the query inside the scope that runs it.',
      );
    }
    if (scope.kind !== 'tenant') {
      this.stats.refused++;
      throw new TenantScopeError(
        'Cannot query a tenant table because no tenant is active. Run it inside runWithTenant() or a ' +
          'resolved request, or use runAsSystem(reason, fn) for cross-tenant work.',
      );
    }
    const groups = proof.tenantParamGroups;
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g] as readonly number[];
      let bound = false;
      for (let i = 0; i < group.length; i++) {
        if (bindings?.[(group[i] as number) - 1] === scope.id) {
          bound = true;
          break;
        }
      }
      if (!bound) {
        this.stats.refused++;
        throw new UnsafeQueryError(
          'Cannot send this statement because its tenant condition is not bound to the current tenant ' +
            `(${describeScope(scope)}). Let tenantry add the tenant condition; do not bind tenant ids by hand.`,
        );
      }
    }
    if (proof.tenantSchemas.length > 0) {
      const own = this.#settings.schemaFor(scope);
      for (const schema of proof.tenantSchemas) {
        if (schema !== own) {
          this.stats.refused++;
          throw new UnsafeQueryError(
            `Cannot send this statement because it names schema "${schema}", which is not the schema of ` +
              `${describeScope(scope)}. Let tenantry qualify tenant tables.`,
          );
        }
      }
    }
  }

  #proof(sql: string, dialect: PlaceholderDialect): CacheEntry {
    const cache = this.#cache;
    const hit = cache.get(sql);
    if (hit !== undefined) {
      this.stats.cached++;
      // Least recently used first: re-inserting moves the entry to the end.
      cache.delete(sql);
      cache.set(sql, hit);
      return hit;
    }
    this.stats.parsed++;
    let entry: CacheEntry;
    try {
      entry = proveStatement(parseSql(dialect.positionBindings(sql)), this.#settings);
    } catch (error) {
      if (error instanceof UnsafeQueryError) entry = { refused: error.message };
      else {
        const reason = error instanceof Error ? error.message : String(error);
        entry = {
          refused:
            `Cannot send this statement because PostgreSQL's parser does not accept it (${reason}), ` +
            'so tenantry cannot prove it tenant-safe. Fix the SQL.',
        };
      }
    }
    if (this.#settings.cacheSize > 0) {
      if (cache.size >= this.#settings.cacheSize) {
        const oldest = cache.keys().next();
        if (oldest.done !== true) cache.delete(oldest.value);
      }
      cache.set(sql, entry);
    }
    return entry;
  }
}
