import type { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { TenantScopeError } from '../errors';
import {
  activeScope,
  tenantScopeStorage,
  type TenantScopeState,
} from '../context/tenant-scope-storage';

function capture(what: string): TenantScopeState {
  const scope = activeScope();
  if (scope === undefined) {
    throw new TenantScopeError(
      `Cannot ${what} because no tenant scope is active. Call it inside a request handled by resolveTenant(), runWithTenant() or runAsSystem().`,
    );
  }
  return scope;
}

/**
 * Returns `fn` bound to the tenant scope current now: wherever it is called
 * from later (a pg socket's event, another request's callback), it runs as
 * this tenant. Needed for callbacks that an emitter created elsewhere fires,
 * since AsyncLocalStorage follows the emitter's origin, not the listener's.
 * Throws 500 `TENANT_SCOPE_REQUIRED` outside a scope.
 *
 * @example
 * ```ts
 * const onRow = bindTenant((row: Row) => db('comments').where({ document_id: row.id }));
 * ```
 */
export function bindTenant<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  if (typeof fn !== 'function') {
    throw new TypeError('Cannot bind a tenant to fn because it is not a function.');
  }
  const scope = capture('bind a callback to the tenant');
  return function boundToTenant(this: unknown, ...args: A): R {
    return tenantScopeStorage.run(scope, () => fn.apply(this, args));
  };
}

type Listener = ((...args: unknown[]) => void) & { listener?: Listener };
// once() and prependOnceListener() go through on() and prependListener().
const ADDERS = ['on', 'addListener', 'prependListener'] as const;
const REMOVERS = ['off', 'removeListener'] as const;
const kept = new WeakSet<object>();

/**
 * Makes every listener added to `emitter` from now on (by you, `pipe()`,
 * `pipeline()` or any library) run in the tenant scope current now, and
 * returns the emitter. Use it on streams whose events are fired by
 * something created in another scope: a Knex `.stream()` emits its rows from
 * the pooled connection's socket, which runs in the scope of whichever
 * request opened that connection. Throws 500 `TENANT_SCOPE_REQUIRED` outside
 * a scope; calling it twice on one emitter is harmless.
 *
 * @example
 * ```ts
 * keepTenant(db('documents').stream()).on('data', (row) => audit(row)); // audit() runs as this tenant
 * ```
 */
export function keepTenant<E extends EventEmitter>(emitter: E): E {
  if (
    typeof emitter !== 'object' ||
    emitter === null ||
    typeof (emitter as { on?: unknown }).on !== 'function' ||
    typeof (emitter as { rawListeners?: unknown }).rawListeners !== 'function'
  ) {
    throw new TypeError('Cannot keep the tenant of emitter because it is not an EventEmitter.');
  }
  const scope = capture('keep the tenant of an emitter');
  if (kept.has(emitter)) return emitter;
  kept.add(emitter);
  const target = emitter as unknown as Record<string, (...args: unknown[]) => unknown>;
  const wrappers = new WeakMap<Listener, Listener[]>();
  for (const name of ADDERS) {
    const add = target[name] as (event: unknown, listener: Listener) => unknown;
    target[name] = function addInTenant(this: unknown, event: unknown, listener: unknown) {
      if (typeof listener !== 'function') return add.call(this, event, listener as Listener);
      const original = listener as Listener;
      const wrapped: Listener = function inTenant(this: unknown, ...args: unknown[]) {
        tenantScopeStorage.run(scope, () => original.apply(this, args));
      };
      // What once() wrapped, so removeListener(fn) of a once(fn) still finds it.
      wrapped.listener = original.listener ?? original;
      const list = wrappers.get(original) ?? [];
      list.push(wrapped);
      wrappers.set(original, list);
      return add.call(this, event, wrapped);
    };
  }
  for (const name of REMOVERS) {
    const remove = target[name] as (event: unknown, listener: Listener) => unknown;
    target[name] = function removeInTenant(this: EventEmitter, event: unknown, listener: unknown) {
      const list = typeof listener === 'function' ? wrappers.get(listener as Listener) : undefined;
      if (list !== undefined) {
        const registered = this.rawListeners(event as string | symbol);
        for (let i = list.length - 1; i >= 0; i -= 1) {
          const wrapped = list[i] as Listener;
          if (registered.includes(wrapped)) {
            list.splice(i, 1);
            return remove.call(this, event, wrapped);
          }
        }
      }
      return remove.call(this, event, listener as Listener);
    };
  }
  return emitter;
}

/**
 * `stream/promises` `pipeline()` with {@link keepTenant} applied to every
 * stage, so each transform, every callback a stage fires and every
 * statement they start run as the current tenant, to the last chunk.
 * Resolves when the last stage finished; rejects with the first error
 * (every stage is destroyed then).
 *
 * @example
 * ```ts
 * app.get('/export', async (req, res, next) => {
 *   res.type('application/x-ndjson');
 *   await tenantPipeline(db('documents').stream(), toNdjson, res).catch(next);
 * });
 * ```
 */
export function tenantPipeline(
  source: Readable | NodeJS.ReadableStream,
  ...stages: (Writable | NodeJS.WritableStream | NodeJS.ReadWriteStream)[]
): Promise<void> {
  if (stages.length === 0) {
    return Promise.reject(
      new TypeError('Cannot run a pipeline of one stream. Pass a source and a destination.'),
    );
  }
  const all = [source, ...stages].map((s) => keepTenant(s as unknown as EventEmitter));
  return (pipeline as unknown as (streams: readonly EventEmitter[]) => Promise<void>)(all);
}

/**
 * Express middleware, mounted after `resolveTenant()`: applies
 * {@link keepTenant} to the request and response of every request that has
 * a tenant, so `res.on('drain' | 'close' | 'finish')` and `req.on('close')`
 * callbacks of streaming responses (SSE, `res.write` loops) run as the
 * request's tenant. Requests without a tenant pass untouched.
 *
 * @example
 * ```ts
 * app.use(resolveTenant({ store }), keepTenantStreams());
 * ```
 */
export function keepTenantStreams(): RequestHandler {
  return function keepTenantStreamsMiddleware(
    req: Request,
    res: Response,
    next: NextFunction,
  ): void {
    if (activeScope() !== undefined) {
      keepTenant(req);
      keepTenant(res);
    }
    next();
  };
}
