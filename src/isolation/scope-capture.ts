import type { TenantRecord } from '../context/tenant-record';
import { activeScope } from '../context/tenant-scope-storage';

/**
 * The tenant scope a statement belongs to, captured while the
 * AsyncLocalStorage context is still there (when the builder is created and
 * when it is executed): pg pool callbacks and knex events lose it.
 */
export type CapturedScope =
  | { readonly kind: 'tenant'; readonly id: string; readonly record: TenantRecord }
  | { readonly kind: 'system'; readonly reason: string }
  | { readonly kind: 'none' };

const NONE: CapturedScope = Object.freeze({ kind: 'none' });

/** Reads the current scope. `TenantContext.tenant` is only readable while its scope is active. */
export function captureScope(): CapturedScope {
  const scope = activeScope();
  if (scope === undefined) return NONE;
  if (scope.kind === 'system') return { kind: 'system', reason: scope.reason };
  const record = scope.context.tenant;
  return { kind: 'tenant', id: record.id, record };
}

/** Whether two captured scopes are the same tenant (or both system, or both none). */
export function sameScope(a: CapturedScope, b: CapturedScope): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'tenant' && b.kind === 'tenant') return a.id === b.id;
  return true;
}

/** A short description of a scope for error messages (tenant ids are validated, safe to print). */
export function describeScope(scope: CapturedScope): string {
  if (scope.kind === 'tenant') return `tenant "${scope.id}"`;
  if (scope.kind === 'system') return 'a system scope';
  return 'no tenant scope';
}
