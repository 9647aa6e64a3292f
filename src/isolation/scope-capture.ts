import { AsyncLocalStorage } from 'node:async_hooks';
import type { TenantRecord } from '../context/tenant-record';
import { activeScope, tenantScopeStorage } from '../context/tenant-scope-storage';

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

/**
 * Reads the current scope. `TenantContext.tenant` is only readable while its
 * scope is active. Built once per scope state (a request, a runWithTenant()
 * call) and kept in its `captured` slot: every builder, runner and checkout
 * of that scope shares it.
 */
export function captureScope(): CapturedScope {
  const scope = activeScope();
  if (scope === undefined) return NONE;
  const cached = scope.captured as CapturedScope | undefined;
  if (cached !== undefined) return cached;
  let result: CapturedScope;
  if (scope.kind === 'system') {
    result = Object.freeze({ kind: 'system', reason: scope.reason });
  } else {
    const record = scope.context.tenant;
    result = Object.freeze({ kind: 'tenant', id: record.id, record });
  }
  scope.captured = result;
  return result;
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

/**
 * The scope a lazily executed statement runs as (built in a scope, awaited
 * outside any): the connection checkout of that statement reads it, so the
 * RLS setting follows the statement and not the empty caller scope. Entered
 * with `run()` only, around one runner.
 */
const statementScopeStorage = new AsyncLocalStorage<CapturedScope>();

/** Runs `fn` (one statement's runner) as `scope`. */
export function runAsStatementScope<T>(scope: CapturedScope, fn: () => T): T {
  return statementScopeStorage.run(scope, fn);
}

/** The scope a connection checkout serves: the lazily run statement's, else the caller's. */
export function connectionScope(): CapturedScope {
  return statementScopeStorage.getStore() ?? captureScope();
}

/**
 * Whether a builder built in `built` may run from `executed`. It always runs
 * as the scope it was built in, so awaiting it with no active scope is fine
 * (it can only reach that tenant); from any other scope the two must agree.
 */
export function executionAllowed(
  built: CapturedScope | undefined,
  executed: CapturedScope,
): boolean {
  if (built === undefined || executed.kind === 'none') return true;
  return sameScope(built, executed);
}

// The scope of the execution whose statement is being compiled right now.
// knex compiles a statement synchronously inside the runner's connection
// callback, so a slot set around that call is exact per execution: two
// concurrent awaits of one builder each compile inside their own callback
// and never see each other's scope (a slot on the builder would be shared).
let executing: CapturedScope | undefined;

/** Runs `fn` (one execution's synchronous compile-and-send) with `scope` as the execution scope. */
export function withExecutionScope<T>(scope: CapturedScope, fn: () => T): T {
  const previous = executing;
  executing = scope;
  try {
    return fn();
  } finally {
    executing = previous;
  }
}

/** The scope of the execution being compiled, if any (see {@link withExecutionScope}). */
export function executionScope(): CapturedScope | undefined {
  return executing;
}

/**
 * Runs `fn` outside every tenant scope (the request's and a lazily run
 * statement's). Pooled connections are opened through it: a socket keeps the
 * async context it was created in, so callbacks it fires later (the rows of
 * a stream, driver events) would otherwise run as whichever request happened
 * to open the connection, and a statement built there would run as that
 * tenant. Outside every scope, such a statement fails closed.
 */
export function outsideTenantScopes<T>(fn: () => T): T {
  return tenantScopeStorage.exit(() => statementScopeStorage.exit(fn));
}
