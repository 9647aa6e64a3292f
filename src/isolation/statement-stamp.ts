import type { CapturedScope } from './scope-capture';

/**
 * What the compile step tells the send step about one compiled statement,
 * carried on the object knex passes from `toSQL()` to the client's
 * `_query()`/`_stream()` (knex enriches that same object in place): the
 * scope it runs as, a conflicting scope it was also claimed by, and whether
 * it holds raw SQL that `allowRaw` lets through without proof.
 */
const STAMP: unique symbol = Symbol('tenantry.statementStamp');

/** A compiled statement's stamp. */
export interface StatementStamp {
  readonly scope: CapturedScope;
  readonly conflict: CapturedScope | undefined;
  readonly trustRaw: boolean;
}

interface Stampable {
  [STAMP]?: StatementStamp;
}

/** Stamps a `toSQL()` result (an object, or an array of them). */
export function stampStatement(compiled: unknown, stamp: StatementStamp): void {
  if (Array.isArray(compiled)) {
    for (const item of compiled) stampStatement(item, stamp);
    return;
  }
  if (typeof compiled === 'object' && compiled !== null) (compiled as Stampable)[STAMP] = stamp;
}

/** The stamp of a statement about to be sent, if it was compiled by the scoped client. */
export function statementStamp(statement: unknown): StatementStamp | undefined {
  return typeof statement === 'object' && statement !== null
    ? (statement as Stampable)[STAMP]
    : undefined;
}
