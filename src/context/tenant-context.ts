import { TenantScopeError } from '../errors';
import { copyTenantRecord, type TenantRecord } from './tenant-record';
import { activeScope } from './tenant-scope-storage';

/**
 * Where a tenant id came from. The four built-in strategies use their names;
 * `runWithTenant()` uses `explicit`; custom strategies use their own name.
 */
export type TenantSource =
  'header' | 'jwt_claim' | 'subdomain' | 'path' | 'explicit' | (string & {});

/** The authenticated user of a request, from a verified token. */
export interface TenantUser {
  /** The user id (the token's `sub`, or the configured user claim). */
  readonly id: string;
  /** Every verified claim of the token. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/** What a {@link TenantContext} is built from. */
export interface TenantContextInit {
  /** The tenant, as loaded from the tenant store. */
  readonly tenant: TenantRecord;
  /** The resolution source that named the tenant. Default: `explicit`. */
  readonly source?: TenantSource | undefined;
  /**
   * Whether the source is trusted (a verified token claim is; header,
   * subdomain and path are client-influenced). Default: `true` for
   * `explicit`, else `false`.
   */
  readonly trusted?: boolean | undefined;
  /** The authenticated user, if any. */
  readonly user?: TenantUser | undefined;
}

/**
 * The tenant of the current scope, injectable into services:
 *
 * ```ts
 * @injectable()
 * class DocumentService {
 *   constructor(private readonly tenant: TenantContext) {}
 * }
 * ```
 *
 * A `TenantContext` is bound to the scope it was created for. Reading it from
 * any other scope (for example through a singleton that captured it during an
 * earlier request) throws {@link TenantScopeError}: a captured context can
 * never serve a different request.
 *
 * @example
 * ```ts
 * const ctx = container.resolve(TenantContext);
 * ctx.id; // 'acme'
 * ```
 */
export class TenantContext {
  readonly #tenant: TenantRecord;
  readonly #source: TenantSource;
  readonly #trusted: boolean;
  readonly #user: TenantUser | undefined;

  constructor(init: TenantContextInit) {
    // A frozen record (what the stores hand out) cannot change: no copy needed.
    this.#tenant = Object.isFrozen(init.tenant)
      ? init.tenant
      : Object.freeze(copyTenantRecord(init.tenant));
    this.#source = init.source ?? 'explicit';
    this.#trusted = init.trusted ?? this.#source === 'explicit';
    this.#user = init.user;
  }

  /** The tenant id. */
  get id(): string {
    return this.#checked().#tenant.id;
  }

  /** The tenant record (status, isolation placement, config). */
  get tenant(): TenantRecord {
    return this.#checked().#tenant;
  }

  /** The resolution source that named this tenant. */
  get source(): TenantSource {
    return this.#checked().#source;
  }

  /** Whether the tenant came from a trusted (verified) source. */
  get trusted(): boolean {
    return this.#checked().#trusted;
  }

  /** The authenticated user, if the request carried a verified token. */
  get user(): TenantUser | undefined {
    return this.#checked().#user;
  }

  /**
   * Whether this context is the one of the current scope. Never throws.
   *
   * @example
   * ```ts
   * if (!ctx.isActive()) return;
   * ```
   */
  isActive(): boolean {
    const scope = activeScope();
    return scope?.kind === 'tenant' && scope.context === this;
  }

  /** The tenant id without the scope check, for logs and error messages only. */
  toString(): string {
    return `TenantContext(${this.#tenant.id})`;
  }

  #checked(): this {
    if (this.isActive()) return this;
    throw new TenantScopeError(
      `Cannot read TenantContext(${this.#tenant.id}) because it is not the tenant of the current scope. ` +
        'It was probably captured by a singleton or kept past its request; inject TenantContext into ' +
        'transient or request-scoped services, or use currentTenant().',
    );
  }
}
