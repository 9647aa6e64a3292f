import type { CapturedScope } from '../scope-capture';
import type { KnexCompiler, KnexJoin, KnexStatement } from '../knex-adapter';
import type { ScopeEngineSettings } from '../statement-scoper';
import { unsafe } from '../statement-scoper';
import type { ScopedRef } from '../row/row-scope';

function target(schema: string, ref: ScopedRef['ref']): string {
  return `${schema}.${ref.name}${ref.alias === undefined ? '' : ` as ${ref.alias}`}`;
}

/**
 * Schema-mode rewrite of one builder level: every tenant table reference
 * becomes `"<tenant schema>"."<table>"`, every shared one `"<its schema>"."<table>"`.
 * Nothing relies on search_path, so a missing tenant table is an error
 * ("relation does not exist"), never a fall-through to public.
 */
export function applySchemaScope(
  compiler: KnexCompiler,
  refs: readonly ScopedRef[],
  scope: CapturedScope,
  settings: Pick<ScopeEngineSettings, 'catalog' | 'schemaFor'>,
): void {
  if (refs.length === 0) return;
  const tenantSchema = scope.kind === 'tenant' ? settings.schemaFor(scope) : undefined;
  const rename = (r: ScopedRef): string | undefined => {
    if (r.kind === 'tenant') {
      if (tenantSchema === undefined) throw unsafe('Cannot scope a tenant table without a tenant.');
      return target(tenantSchema, r.ref);
    }
    if (r.kind === 'shared' && r.ref.schema === undefined) {
      return target(settings.catalog.sharedSchema(r.ref.name), r.ref);
    }
    return undefined;
  };
  let single: Record<string, unknown> | undefined;
  let joins: KnexJoin[] | undefined;
  const original = compiler.grouped.join as unknown as KnexJoin[] | undefined;
  for (const r of refs) {
    const name = rename(r);
    if (name === undefined) continue;
    if (r.place === 'main') {
      single ??= { ...compiler.single };
      single.table = name;
      single.schema = undefined;
    } else if (typeof r.place === 'number' && original) {
      joins ??= original.slice();
      const join = original[r.place] as KnexJoin;
      const copy = Object.assign(
        Object.create(Object.getPrototypeOf(join) as object) as KnexJoin,
        join,
      );
      copy.table = name;
      copy.schema = undefined;
      joins[r.place] = copy;
    } else if (r.place === 'extra') {
      // updateFrom / using: a string, or an array of them (knex wraps each like a table name).
      const at = r.extra;
      if (at === undefined) {
        throw unsafe('Cannot rewrite updateFrom/using tables in schema mode. Use a subquery.');
      }
      single ??= { ...compiler.single };
      if (at.index === undefined) {
        single[at.key] = name;
      } else {
        const list = single[at.key];
        const copy = Array.isArray(list) ? list.slice() : [];
        copy[at.index] = name;
        single[at.key] = copy;
      }
    }
  }
  if (single) compiler.single = single;
  if (joins) compiler.grouped.join = joins as unknown as KnexStatement[];
}
