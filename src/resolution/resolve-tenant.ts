import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { parseResolutionConfig } from '../config/parse-tenancy-config';
import type {
  BareDomainPolicy,
  TenancyConfig,
  TenancyResolutionConfig,
  TenancyResolutionConfigInput,
  TenantStrategyName,
} from '../config/tenancy-config';
import { assertServableTenant } from '../context/run-for-tenant';
import { createRequestContainer, ensureTenancyRegistered } from '../context/tenant-container';
import { TenantContext, type TenantUser } from '../context/tenant-context';
import { assertValidTenantId } from '../context/tenant-id';
import type { ClaimPath } from '../context/claim-path';
import { claimMembership, type TenantMembershipCheck } from '../context/tenant-membership';
import type { TenantRecord } from '../context/tenant-record';
import { runInTenantScope, tenantOfRequest } from '../context/tenant-scope';
import { armAtFirstDisposable, requestContainerFactory } from '../context/tsyringe-adapter';
import {
  TenancyConfigError,
  TenancyError,
  TenantConflictError,
  TenantForbiddenError,
  TenantRequiredError,
  TenantResolutionError,
  TenantUnavailableError,
} from '../errors';
import { toTenancyLogger, type TenancyLoggerInput } from '../logger';
import { quoteInput, quoteValue } from '../message-text';
import { CachedTenantStore } from '../store/cached-tenant-store';
import type { TenantStore } from '../store/tenant-store';
import { telemetryHooks, type TelemetryOption } from '../telemetry/tenancy-telemetry';
import { DomainStrategy } from './domain-strategy';
import { HeaderStrategy } from './header-strategy';
import { JwtClaimStrategy, type JwtClaimStrategyOptions } from './jwt-claim-strategy';
import { PathStrategy, type PathStrategyOptions } from './path-strategy';
import { PropagatedStrategy, type PropagatedStrategyOptions } from './propagated-strategy';
import { checkRequestHeaders } from './request-target';
import { SubdomainStrategy } from './subdomain-strategy';
import '../context/tenant-request';
import type { TenantResolution, TenantResolutionStrategy } from './tenant-resolution-strategy';

/** Options of {@link resolveTenant}. Explicit options win over `config`. */
export interface ResolveTenantOptions {
  /** Where tenants are looked up (wrap it in `CachedTenantStore` in production). Required. */
  readonly store: TenantStore;
  /**
   * The loaded config: the whole `loadTenancyConfig()` result or its
   * `tenancy.resolution` section (validated again here). Default: none.
   */
  readonly config?:
    TenancyConfig | TenancyResolutionConfig | TenancyResolutionConfigInput | undefined;
  /**
   * Strategies in the order they run: built-in names and/or your own
   * {@link TenantResolutionStrategy} objects. Default: `config.strategy`, else `['header']`.
   */
  readonly strategies?: readonly (TenantStrategyName | TenantResolutionStrategy)[] | undefined;
  /** Header of the `header` strategy. Default: config `header`, else `X-Tenant-ID`. */
  readonly header?: string | undefined;
  /**
   * Domain(s) of the `subdomain` strategy (`lexigram.dev`, or a list). Also the
   * platform domains the `domain` strategy skips. Default: config `domain`.
   * Required for `subdomain`.
   */
  readonly domain?: string | readonly string[] | undefined;
  /**
   * What the `subdomain` strategy does with a host outside its domains:
   * `refuse` (400 `HOST_INVALID`) or `skip` (so a later `domain` strategy can
   * look it up as a custom domain). Default: config `foreignHosts`, else
   * `refuse`; `skip` when the chain also runs `domain`.
   */
  readonly foreignHosts?: 'refuse' | 'skip' | undefined;
  /** Bare-domain policy of the `subdomain` strategy. Default: config `bareDomain`, else `refuse`. */
  readonly bareDomain?: BareDomainPolicy | undefined;
  /** Labels the `subdomain` strategy ignores (`www`). Default: `[]`. */
  readonly ignoredSubdomains?: readonly string[] | undefined;
  /** Verification settings of the `jwt_claim` strategy. Default: config `jwt`. Required for `jwt_claim`. */
  readonly jwt?: (JwtClaimStrategyOptions & { readonly tenantsClaim?: ClaimPath }) | undefined;
  /** Settings of the `path` strategy. Default: config `path`, else `{ prefix: '/api/v1', stripTenantSegment: true }`. */
  readonly path?: PathStrategyOptions | undefined;
  /**
   * Settings of the `propagated` strategy, field by field over config
   * `propagation` (e.g. only `nonces: new RedisNonceStore({ client })`, the
   * secret and audience coming from the config). Default: config
   * `propagation`. `secret` and `audience` are required for `propagated`.
   */
  readonly propagation?: PropagationSettings | undefined;
  /**
   * Refuse a request that names no tenant with 401 `TENANT_REQUIRED` here
   * instead of continuing without a tenant. Default: config `required`, else `false`.
   */
  readonly required?: boolean | undefined;
  /**
   * Membership check for a tenant named by a client-influenced source while a
   * user is authenticated. Default: `claimMembership()` with the jwt `claim`
   * and `tenantsClaim` (token tenant claim equals it or tenants array holds it).
   */
  readonly isMember?: TenantMembershipCheck | undefined;
  /**
   * Where the verified user comes from when no strategy produced one (e.g. a
   * session set by your auth middleware). Only return users you verified.
   * Default: none.
   */
  readonly getUser?:
    ((req: Request) => TenantUser | undefined | Promise<TenantUser | undefined>) | undefined;
  /** Parent of the per-request child containers. Default: tsyringe's root container. */
  readonly container?: DependencyContainer | undefined;
  /** Receives debug/warn logs (resolutions refused, dispose failures). Default: silent. */
  readonly logger?: TenancyLoggerInput | undefined;
  /**
   * Tracing and metrics: the resolved tenant's id as the `tenantAttribute`
   * (`tenant.id`) of the active OpenTelemetry span, `tenantResolved` and
   * `refused` (stage `resolution`, by code, never with the unverified id)
   * counters. `false` turns them off. Default: tracing with
   * `tenancyTelemetry()`'s defaults, no metrics.
   *
   * @example
   * ```ts
   * resolveTenant({ store, telemetry: tenancyTelemetry({ metrics }) });
   * ```
   */
  readonly telemetry?: TelemetryOption | undefined;
}

/** {@link PropagatedStrategyOptions} with every field optional (filled from the config). */
export type PropagationSettings = {
  readonly [K in keyof PropagatedStrategyOptions]?: PropagatedStrategyOptions[K] | undefined;
};

type Maybe<T> = T | Promise<T>;

function isThenable<T>(value: Maybe<T>): value is Promise<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * Disposes a request container when its response closes. tsyringe's
 * `dispose()` is async (several promises per request, expensive while
 * AsyncLocalStorage hooks are on), and most requests create no disposable:
 * so the `close` listener is added only when the first disposable is
 * (`armAtFirstDisposable`, with functions made once per middleware, none per
 * request). Without that hook (another tsyringe version) the container is
 * always disposed on close.
 */
function disposalOnClose(
  failed: (error: unknown, res: Response) => void,
): (child: DependencyContainer, res: Response) => void {
  const closeListener = (child: DependencyContainer, res: Response) => (): void => {
    try {
      Promise.resolve(child.dispose()).catch((error: unknown) => failed(error, res));
    } catch (error) {
      failed(error, res);
    }
  };
  // 'close' fires once per response, after 'finish' or on abort.
  const arm = (child: DependencyContainer, res: Response): void =>
    void res.on('close', closeListener(child, res));
  return (child, res) => {
    if (!armAtFirstDisposable(child, res, arm)) arm(child, res);
  };
}

interface Identified {
  readonly named: Named[];
  user: TenantUser | undefined;
}

interface Decision {
  readonly named: readonly Named[];
  readonly context: TenantContext;
  /** The resolved tenant's id and source, readable outside its scope (telemetry). */
  readonly tenantId?: string | undefined;
  readonly source?: string | undefined;
  /** The tenant was resolved by an earlier resolveTenant() on this request: its scope is entered already. */
  readonly again?: true | undefined;
}

interface Named {
  readonly source: string;
  readonly id: string;
  readonly trusted: boolean;
  readonly accept?: (req: Request) => void;
}

function resolutionSection(
  config: ResolveTenantOptions['config'],
): TenancyResolutionConfig | undefined {
  if (config === undefined) return undefined;
  if (typeof config === 'object' && config !== null && 'tenancy' in config) {
    return parseResolutionConfig(config.tenancy.resolution);
  }
  return parseResolutionConfig(config);
}

function platformDomains(
  options: ResolveTenantOptions,
  config: TenancyResolutionConfig | undefined,
): readonly string[] {
  const given = options.domain ?? config?.domains ?? config?.domain;
  if (given === undefined) return [];
  return typeof given === 'string' ? [given] : given;
}

function buildStrategies(
  options: ResolveTenantOptions,
  config: TenancyResolutionConfig | undefined,
) {
  const wanted = options.strategies ?? config?.strategy ?? ['header'];
  if (!Array.isArray(wanted) || wanted.length === 0) {
    throw new TenancyConfigError(
      'Cannot resolve tenants because no strategy is configured. Pass strategies, e.g. ["header"].',
    );
  }
  const names = new Set<string>();
  const strategies: TenantResolutionStrategy[] = wanted.map((entry) => {
    let strategy: TenantResolutionStrategy;
    if (typeof entry === 'string') {
      switch (entry) {
        case 'header':
          strategy = new HeaderStrategy({
            header: options.header ?? config?.header ?? 'X-Tenant-ID',
          });
          break;
        case 'domain':
          strategy = new DomainStrategy({
            store: options.store,
            platformDomains: platformDomains(options, config),
          });
          break;
        case 'subdomain': {
          const domain = options.domain ?? config?.domains ?? config?.domain;
          if (domain === undefined) {
            throw new TenancyConfigError(
              'Cannot use strategy "subdomain" because no domain is configured. Pass domain, e.g. "lexigram.dev".',
            );
          }
          strategy = new SubdomainStrategy({
            domain,
            bareDomain: options.bareDomain ?? config?.bareDomain ?? 'refuse',
            ignoredLabels: options.ignoredSubdomains ?? [],
            foreignHosts:
              options.foreignHosts ??
              config?.foreignHosts ??
              (wanted.includes('domain') ? 'skip' : 'refuse'),
          });
          break;
        }
        case 'jwt_claim': {
          const jwt = options.jwt ?? config?.jwt;
          if (jwt === undefined) {
            throw new TenancyConfigError(
              'Cannot use strategy "jwt_claim" because no jwt settings are configured. Pass jwt: { algorithms, secret | publicKey }.',
            );
          }
          strategy = new JwtClaimStrategy(jwt);
          break;
        }
        case 'path':
          strategy = new PathStrategy(options.path ?? config?.path ?? {});
          break;
        case 'propagated': {
          const given = options.propagation ?? {};
          const base = config?.propagation;
          const secret = given.secret ?? base?.secret;
          const audience = given.audience ?? base?.audience;
          if (secret === undefined || audience === undefined) {
            throw new TenancyConfigError(
              'Cannot use strategy "propagated" because no propagation secret and audience are configured. Set tenancy.resolution.propagation (secret from TENANCY_PROPAGATION_SECRET) or pass propagation: { secret, audience }.',
            );
          }
          strategy = new PropagatedStrategy({
            secret,
            audience,
            header: given.header ?? base?.header,
            maxAgeMs: given.maxAgeMs ?? base?.maxAgeMs,
            format: given.format ?? base?.format,
            nonces: given.nonces,
            now: given.now,
          });
          break;
        }
        default:
          throw new TenancyConfigError(
            `Cannot use strategy ${quoteValue(entry)} because it is unknown. Use header, jwt_claim, subdomain, path, domain, propagated or a TenantResolutionStrategy object.`,
          );
      }
    } else if (
      typeof entry === 'object' &&
      entry !== null &&
      typeof entry.resolve === 'function' &&
      typeof entry.name === 'string' &&
      entry.name !== ''
    ) {
      strategy = entry;
    } else {
      throw new TenancyConfigError(
        'Cannot use a strategy without a name and a resolve(req) method. Implement TenantResolutionStrategy.',
      );
    }
    if (names.has(strategy.name)) {
      throw new TenancyConfigError(
        `Cannot run strategy ${quoteInput(strategy.name)} twice. Remove the duplicate.`,
      );
    }
    names.add(strategy.name);
    return strategy;
  });
  return Object.freeze(strategies);
}

/**
 * Express middleware that identifies the tenant of each request with an
 * ordered chain of strategies, then runs the rest of the chain inside that
 * tenant's scope.
 *
 * Per request: every strategy runs (so disagreements are seen); every named
 * id is validated against `TENANT_ID_PATTERN` (400 `TENANT_INVALID`); two
 * different ids are refused (403 `TENANT_CONFLICT`, never first-wins); a
 * tenant named only by a client-influenced source while a user is
 * authenticated must pass the membership check (403 `TENANT_FORBIDDEN`);
 * then the store is asked (404 `TENANT_NOT_FOUND`, 403 `TENANT_SUSPENDED`
 * unless `active`; `deleted` is 404). On success it sets `req.tenant`,
 * `req.tenantUser` and `req.container` (a child container disposed when the
 * response ends) and calls `next()` inside `runWithTenant()`. Failures go to
 * `next(err)`; this middleware never writes a response.
 *
 * A request naming no tenant continues without one (add `requireTenant()`
 * where one is needed), unless `required` is set.
 *
 * @example
 * ```ts
 * const config = loadTenancyConfig({ file: 'tenancy.yaml', env: true });
 * app.use(resolveTenant({ config: config.tenancy.resolution, store: new CachedTenantStore(store) }));
 * app.use('/api', requireTenant(), apiRouter);
 * app.use(tenancyErrorHandler());
 * ```
 */
export function resolveTenant(options: ResolveTenantOptions): RequestHandler {
  if (options === undefined || options === null || typeof options.store?.findById !== 'function') {
    throw new TenancyConfigError(
      'Cannot resolve tenants without a tenant store. Pass store: a TenantStore (e.g. InMemoryTenantStore).',
    );
  }
  const config = resolutionSection(options.config);
  const strategies = buildStrategies(options, config);
  const store = options.store;
  const jwt = options.jwt ?? config?.jwt;
  const isMember =
    options.isMember ??
    claimMembership({
      claim: jwt?.claim ?? 'tid',
      tenantsClaim: jwt?.tenantsClaim ?? 'tenants',
      ...(options.jwt?.mapTenantId !== undefined ? { mapTenantId: options.jwt.mapTenantId } : {}),
    });
  if (typeof isMember !== 'function') {
    throw new TenancyConfigError(
      'Cannot use isMember because it is not a function (user, tenantId, req) => boolean.',
    );
  }
  const getUser = options.getUser;
  const required = options.required ?? config?.required ?? false;
  const parent = options.container ?? rootContainer;
  ensureTenancyRegistered(parent); // once here, not per request
  // Prepared (and tsyringe's internals checked) once here; per request it
  // costs the same whatever the number of the parent's registrations.
  const containers = requestContainerFactory(parent);
  const logger = toTenancyLogger(options.logger);
  const telemetry = telemetryHooks(options.telemetry);
  const disposeOnClose = disposalOnClose((error, res) =>
    logger.warn('tenant container dispose failed', {
      tenantId: (res.req as Request | undefined)?.tenant?.toString(),
      error,
    }),
  );
  // A CachedTenantStore answers warm lookups synchronously.
  const peek = store instanceof CachedTenantStore ? (id: string) => store.peek(id) : undefined;

  // Everything below runs per request. Each step returns a plain value when it
  // can (sync strategies, a warm CachedTenantStore, a sync membership check) and
  // a promise only when it must, so a warm request creates no promise at all —
  // except a bearer token: jose verifies through WebCrypto, which is async.

  // Per strategy, the label of its id in error messages (built once, not per request).
  const sourceLabels = strategies.map((strategy) => `${strategy.name} source`);

  // Anything that is not a TenancyError (a bug in a custom strategy, a
  // membership check that threw) becomes a coded 500: a plain Error would
  // reach Express's HTML handler, and the cause is never rendered.
  function asCoded(what: string, cause: unknown): TenancyError {
    if (cause instanceof TenancyError) return cause;
    return new TenantResolutionError(
      `Cannot resolve the tenant because ${what} failed. Fix it; the cause is logged, not shown.`,
      { cause },
    );
  }
  function coded(what: string): (cause: unknown) => never {
    return (cause) => {
      throw asCoded(what, cause);
    };
  }
  const strategyFailed = strategies.map((strategy) =>
    coded(`strategy ${quoteInput(strategy.name)}`),
  );
  const memberFailed = coded('the membership check (isMember)');
  const userFailed = coded('the user lookup (getUser)');

  function collect(acc: Identified, index: number, found: TenantResolution | undefined): void {
    if (found === undefined) return;
    if (typeof found !== 'object' || found === null) {
      throw new TenantResolutionError(
        `Cannot resolve the tenant because strategy ${quoteInput((strategies[index] as TenantResolutionStrategy).name)} returned ${found === null ? 'null' : typeof found}, not a TenantResolution or undefined. Fix the strategy.`,
      );
    }
    if (found.accept !== undefined && typeof found.accept !== 'function') {
      throw new TenantResolutionError(
        `Cannot resolve the tenant because strategy ${quoteInput((strategies[index] as TenantResolutionStrategy).name)} returned an accept that is not a function. Fix the strategy.`,
      );
    }
    if (found.user !== undefined) acc.user ??= found.user;
    if (found.tenantId === undefined) return;
    // Validated here, before any other strategy's id is compared or the store is asked.
    const id = assertValidTenantId(found.tenantId, sourceLabels[index] as string);
    const source = (strategies[index] as TenantResolutionStrategy).name;
    const trusted = found.trusted === true;
    acc.named.push(
      found.accept ? { source, id, trusted, accept: found.accept } : { source, id, trusted },
    );
  }

  function step(req: Request, acc: Identified, index: number): Maybe<Identified> {
    for (let i = index; i < strategies.length; i += 1) {
      const failed = strategyFailed[i] as (cause: unknown) => never;
      let found: Maybe<TenantResolution | undefined>;
      try {
        found = (strategies[i] as TenantResolutionStrategy).resolve(req);
      } catch (cause) {
        return failed(cause);
      }
      if (isThenable(found)) {
        return found.then((value) => {
          collect(acc, i, value);
          return step(req, acc, i + 1);
        }, failed);
      }
      collect(acc, i, found);
    }
    if (getUser !== undefined && acc.user === undefined && req.tenantUser === undefined) {
      let user: Maybe<TenantUser | undefined>;
      try {
        user = getUser(req);
      } catch (cause) {
        throw asCoded('the user lookup (getUser)', cause);
      }
      const keep = (found: TenantUser | undefined): Identified => {
        acc.user = found;
        return acc;
      };
      return isThenable(user) ? user.then(keep, userFailed) : keep(user);
    }
    return acc;
  }

  function identify(req: Request): Maybe<Identified> {
    return step(req, { named: [], user: undefined }, 0);
  }

  // Requests served during a move's write freeze (everything else is answered 503).
  const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
  // The one status check jobs and scripts use too (runForTenant), so both refuse alike.
  const checkRecord = assertServableTenant;

  function storeFailed(cause: unknown): never {
    if (cause instanceof TenancyError) throw cause;
    throw new TenantUnavailableError(
      'Cannot look up the tenant because the tenant store failed. Retry later.',
      { cause },
    );
  }

  function lookup(id: string): Promise<TenantRecord> {
    let pending: Promise<TenantRecord | undefined>;
    try {
      pending = store.findById(id);
    } catch (cause) {
      storeFailed(cause);
    }
    return pending.then((record) => checkRecord(id, record), storeFailed);
  }

  function decide(req: Request, found: Identified): Maybe<Decision | undefined> {
    const { named } = found;
    // A second resolveTenant() on the same request (an app-level chain and a
    // router-level one): it may agree with the tenant already resolved, never
    // switch the request to another one, nor replace the verified user. The
    // earlier tenant is the scope an earlier chain entered for this request
    // (read from the scope: each property read of an Express request is a
    // V8 map miss, measured in bench/http-instructions.bench.ts).
    const earlier = tenantOfRequest(req);
    const previousUser = req.tenantUser;
    if (
      previousUser !== undefined &&
      found.user !== undefined &&
      found.user.id !== previousUser.id
    ) {
      throw new TenantConflictError(
        `Cannot accept user ${quoteInput(found.user.id)} because an earlier resolveTenant() verified user ${quoteInput(previousUser.id)} on this request. Send one identity.`,
      );
    }
    const user = previousUser ?? found.user;
    if (previousUser === undefined && user !== undefined) req.tenantUser = user;
    const first = named[0];
    if (first === undefined) {
      if (earlier !== undefined) return { named, context: earlier, again: true };
      if (required) throw new TenantRequiredError();
      return undefined;
    }
    if (earlier !== undefined && earlier.id !== first.id) {
      throw new TenantConflictError(
        `Cannot pick a tenant because an earlier resolveTenant() resolved "${earlier.id}" and ${first.source} names "${first.id}". Send one tenant.`,
      );
    }
    let chosen: Named | undefined;
    for (const n of named) {
      if (n.id !== first.id) {
        throw new TenantConflictError(
          `Cannot pick a tenant because ${first.source} names "${first.id}" and ${n.source} names "${n.id}". Send one tenant.`,
        );
      }
      if (chosen === undefined && n.trusted) chosen = n;
    }
    const source = chosen ?? first;
    if (user === undefined || source.trusted) return admitted(named, source, user, req, earlier);
    let answer: Maybe<boolean>;
    try {
      answer = isMember(user, first.id, req);
    } catch (cause) {
      throw asCoded('the membership check (isMember)', cause);
    }
    const judge = (member: boolean): Maybe<Decision> => {
      // Only a literal true admits: a check that answers anything else fails closed.
      if (member !== true) {
        throw new TenantForbiddenError(
          `Cannot access tenant "${first.id}" because the user is not a member of it.`,
        );
      }
      return admitted(named, source, user, req, earlier);
    };
    return isThenable(answer) ? answer.then(judge, memberFailed) : judge(answer);
  }

  // The steps below take what they need as arguments: no closure is made per
  // request on the warm path.
  function admitted(
    named: readonly Named[],
    chosen: Named,
    user: TenantUser | undefined,
    req: Request,
    earlier: TenantContext | undefined,
  ): Maybe<Decision> {
    if (earlier !== undefined) return { named, context: earlier, again: true };
    // A CachedTenantStore answers a warm id synchronously: no promise, no thenable check.
    const cached = peek?.(chosen.id);
    if (cached !== undefined) {
      return buildDecision(named, chosen, user, req, checkRecord(chosen.id, cached ?? undefined));
    }
    return lookup(chosen.id).then((tenant) => buildDecision(named, chosen, user, req, tenant));
  }

  function buildDecision(
    named: readonly Named[],
    chosen: Named,
    user: TenantUser | undefined,
    req: Request,
    tenant: TenantRecord,
  ): Decision {
    // The write freeze of an online move: reads go on, writes wait for the switch.
    if (tenant.status === 'moving' && !READ_METHODS.has(req.method)) {
      throw new TenantUnavailableError(
        `Cannot write for tenant "${tenant.id}" because it is being moved. Retry in a moment.`,
        { retryAfterSeconds: 1 },
      );
    }
    return {
      named,
      tenantId: tenant.id,
      source: chosen.source,
      context: new TenantContext(
        user !== undefined
          ? { tenant, source: chosen.source, trusted: chosen.trusted, user }
          : { tenant, source: chosen.source, trusted: chosen.trusted },
      ),
    };
  }

  function refuse(req: Request, next: NextFunction, error: unknown): void {
    const refused = asCoded('tenant resolution', error);
    logger.debug('tenant resolution refused', {
      code: refused.code,
      status: refused.status,
      path: req.path,
    });
    telemetry?.resolutionRefused(refused.code);
    next(refused);
  }

  function enter(
    req: Request,
    res: Response,
    next: NextFunction,
    decision: Decision | undefined,
  ): void {
    if (decision === undefined) {
      next();
      return;
    }
    const { context, named } = decision;
    try {
      for (const n of named) n.accept?.(req);
    } catch (cause) {
      refuse(req, next, asCoded("a strategy's accept()", cause));
      return;
    }
    if (decision.again === true) {
      next(); // already inside this tenant's scope, with its container
      return;
    }
    const child = createRequestContainer(context, containers);
    req.tenant = context;
    req.container = child;
    if (telemetry !== undefined && decision.tenantId !== undefined) {
      telemetry.tenantResolved(decision.tenantId, decision.source ?? 'unknown');
    }
    disposeOnClose(child, res);
    runInTenantScope(context, next, req);
  }

  return function resolveTenantMiddleware(req: Request, res: Response, next: NextFunction): void {
    let outcome: Maybe<Decision | undefined>;
    try {
      // Duplicate or malformed Host, or headers the parser may have dropped: refused for every chain.
      checkRequestHeaders(req);
      const found = identify(req);
      outcome = isThenable(found) ? found.then((f) => decide(req, f)) : decide(req, found);
    } catch (error) {
      refuse(req, next, error);
      return;
    }
    if (isThenable(outcome)) {
      outcome
        .then(
          (decision) => enter(req, res, next, decision),
          (error: unknown) => refuse(req, next, error),
        )
        // enter() and refuse() catch their own failures; this only keeps a
        // throwing downstream next() from becoming an unhandled rejection.
        .catch((error: unknown) =>
          logger.error('tenant resolution failed after next()', { error }),
        );
    } else {
      enter(req, res, next, outcome);
    }
  };
}
