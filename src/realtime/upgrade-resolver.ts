import { IncomingMessage, ServerResponse, STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { TenantContext, TenantUser } from '../context/tenant-context';
import { runInTenantScope } from '../context/tenant-scope';
import { TenantRequiredError, TenancyConfigError, UpgradeTimeoutError } from '../errors';
import { tenancyErrorHandler } from '../enforcement/tenancy-error-handler';
import { toTenancyLogger, type TenancyLoggerInput } from '../logger';
import '../context/tenant-request';

/**
 * Options of {@link createUpgradeResolver}.
 *
 * @example
 * ```ts
 * const resolveUpgrade = createUpgradeResolver({
 *   handlers: [resolveTenant({ store }), requireTenant()],
 * });
 * ```
 */
export interface UpgradeResolverOptions {
  /**
   * The Express middleware that resolve and enforce the tenant of an HTTP
   * request (`resolveTenant()`, `requireTenant()`, your auth middleware):
   * they run on the upgrade request exactly as on a plain request. Required.
   */
  readonly handlers: readonly RequestHandler[];
  /**
   * Renders a refusal (an error passed to `next(err)`) as the HTTP response
   * written before the protocol switch. Default: `tenancyErrorHandler()`
   * (RFC 9457 problem+json, with the `logger` below).
   */
  readonly errorHandler?: ErrorRequestHandler | undefined;
  /**
   * Express's `trust proxy` setting for the upgrade request (what
   * `X-Forwarded-Host`/`-Proto` count for). Use the value of your app.
   * Default: `false` (forwarded headers ignored).
   */
  readonly trustProxy?: boolean | number | string | readonly string[] | undefined;
  /**
   * Refuse an upgrade that resolved no tenant with 401 `TENANT_REQUIRED`.
   * Default: `true` (a connection without a tenant has no scope to bind).
   */
  readonly required?: boolean | undefined;
  /** Receives refusal logs (through the default error handler). Default: silent. */
  readonly logger?: TenancyLoggerInput | undefined;
  /**
   * Longest time the handlers may take on one upgrade request, in ms: a
   * strategy, tenant store or auth middleware that never answers gets the
   * upgrade refused with 503 `UPGRADE_TIMEOUT` (problem+json) instead of
   * holding the socket open forever. `0` waits forever. Default: `10000`.
   */
  readonly timeoutMs?: number | undefined;
}

/** Default of {@link UpgradeResolverOptions.timeoutMs}. */
export const DEFAULT_UPGRADE_TIMEOUT_MS = 10_000;

/** The HTTP answer to a refused upgrade, written before the protocol switch. */
export interface UpgradeRefusal {
  /** HTTP status (401, 403, 404, 503…). */
  readonly status: number;
  /** Response headers (`content-type: application/problem+json`, `www-authenticate`…). */
  readonly headers: Readonly<OutgoingHttpHeaders>;
  /** Response body (the problem+json document). */
  readonly body: string;
}

/** What {@link createUpgradeResolver}'s function answers for one upgrade request. */
export type UpgradeResolution =
  | {
      readonly ok: true;
      /** The connection's tenant (undefined only with `required: false`). */
      readonly tenant: TenantContext | undefined;
      /** The tenant id, readable outside the tenant scope. */
      readonly tenantId: string | undefined;
      /** The verified user of the upgrade request, if any. */
      readonly user: TenantUser | undefined;
      /** Ends the request's per-request container; call it when the connection closes. */
      readonly release: () => void;
    }
  | { readonly ok: false; readonly refusal: UpgradeRefusal };

/** A copy of the upgrade request for the Express chain, so the original is not re-prototyped. */
function copyRequest(req: IncomingMessage): IncomingMessage {
  const copy = new IncomingMessage(req.socket as Socket);
  copy.headers = req.headers;
  copy.rawHeaders = req.rawHeaders;
  copy.url = req.url ?? '/';
  copy.method = req.method ?? 'GET';
  copy.httpVersion = req.httpVersion;
  copy.httpVersionMajor = req.httpVersionMajor;
  copy.httpVersionMinor = req.httpVersionMinor;
  copy.complete = true;
  copy.push(null); // an upgrade request has no body for a body parser to wait on
  return copy;
}

/**
 * Builds the function that resolves and enforces the tenant of a WebSocket
 * (or any HTTP upgrade) request by running the given Express middleware on
 * it with a response that is never sent: the strategies, chain rules
 * (conflicts, membership, status) and errors are exactly those of HTTP. A
 * refusal is captured as the status, headers and body the error handler
 * rendered, for {@link writeUpgradeRefusal} to write before any switch.
 * The function never rejects.
 *
 * @example
 * ```ts
 * const resolveUpgrade = createUpgradeResolver({ handlers: [resolveTenant({ store })] });
 * server.on('upgrade', async (req, socket, head) => {
 *   const outcome = await resolveUpgrade(req);
 *   if (!outcome.ok) return writeUpgradeRefusal(socket, outcome.refusal);
 *   // hand the socket to your WebSocket server
 * });
 * ```
 */
export function createUpgradeResolver(
  options: UpgradeResolverOptions,
): (req: IncomingMessage) => Promise<UpgradeResolution> {
  if (
    options === undefined ||
    options === null ||
    !Array.isArray(options.handlers) ||
    options.handlers.length === 0 ||
    !options.handlers.every((h) => typeof h === 'function')
  ) {
    throw new TenancyConfigError(
      'Cannot resolve upgrade requests without handlers. Pass handlers: [resolveTenant({ store }), requireTenant()].',
    );
  }
  if (options.errorHandler !== undefined && typeof options.errorHandler !== 'function') {
    throw new TypeError(
      'Cannot use errorHandler because it is not a function (err, req, res, next).',
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_UPGRADE_TIMEOUT_MS;
  if (
    typeof timeoutMs !== 'number' ||
    !Number.isInteger(timeoutMs) ||
    timeoutMs < 0 ||
    timeoutMs > 2_147_483_647
  ) {
    throw new TypeError(
      'Cannot use timeoutMs because it is not a whole number of ms from 0 (no limit) to 2147483647. Use e.g. 10000.',
    );
  }
  const required = options.required ?? true;
  const logger = toTenancyLogger(options.logger);
  const errorHandler = options.errorHandler ?? tenancyErrorHandler({ logger });
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', options.trustProxy ?? false);
  app.use(...options.handlers);

  return function resolveUpgrade(req: IncomingMessage): Promise<UpgradeResolution> {
    return new Promise<UpgradeResolution>((resolve) => {
      const copy = copyRequest(req);
      const res = new ServerResponse(copy);
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (outcome: UpgradeResolution): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        resolve(outcome);
      };
      const chunks: string[] = [];
      const collect = (chunk: unknown): void => {
        if (typeof chunk === 'string') chunks.push(chunk);
        else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk).toString('utf8'));
      };
      // Whatever a handler or the error handler writes is the refusal: the
      // response has no socket and is never sent itself.
      res.write = ((chunk: unknown) => {
        collect(chunk);
        return true;
      }) as ServerResponse['write'];
      res.end = ((chunk?: unknown) => {
        if (typeof chunk !== 'function') collect(chunk);
        settle({
          ok: false,
          refusal: {
            status: res.statusCode,
            headers: { ...res.getHeaders() },
            body: chunks.join(''),
          },
        });
        return res;
      }) as ServerResponse['end'];
      const unhandled = (error: unknown): void => {
        logger.error('upgrade request failed outside the error handler', { error });
        settle({
          ok: false,
          refusal: {
            status: 500,
            headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store' },
            body: JSON.stringify({
              type: 'about:blank',
              title: STATUS_CODES[500],
              status: 500,
              code: 'INTERNAL_SERVER_ERROR',
            }),
          },
        });
      };
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          // The hanging chain may still answer later: settle() ignores it. The
          // response 'close' ends the per-request container it opened.
          const late = new UpgradeTimeoutError(
            `Cannot accept this connection because resolving its tenant took more than ${timeoutMs} ms. Retry later.`,
          );
          if (res.headersSent) unhandled(late);
          else errorHandler(late, copy as never, res as never, unhandled);
          res.emit('close');
        }, timeoutMs);
        timer.unref();
      }
      app(copy as never, res as never, (error?: unknown) => {
        if (settled) {
          // Answered after the timeout refused it: nothing may use this request now.
          res.emit('close');
          return;
        }
        if (error !== undefined && error !== null && error !== 'route' && error !== 'router') {
          errorHandler(error, copy as never, res as never, (rest?: unknown) => unhandled(rest));
          return;
        }
        const r = copy as IncomingMessage & {
          tenant?: TenantContext;
          tenantUser?: TenantUser;
        };
        if (r.tenant === undefined && required) {
          errorHandler(new TenantRequiredError(), copy as never, res as never, unhandled);
          return;
        }
        // Read once inside the tenant's scope: the id stays usable outside it.
        const tenant = r.tenant;
        const tenantId =
          tenant === undefined ? undefined : runInTenantScope(tenant, () => tenant.id);
        settle({
          ok: true,
          tenant: r.tenant,
          tenantId,
          user: r.tenantUser,
          release: () => {
            res.emit('close');
          },
        });
      });
    });
  };
}

/**
 * Writes a refused upgrade's HTTP response on the raw socket and closes it:
 * the client gets the status and the problem+json body, never a switch.
 *
 * @example
 * ```ts
 * if (!outcome.ok) return writeUpgradeRefusal(socket, outcome.refusal);
 * ```
 */
export function writeUpgradeRefusal(socket: Duplex, refusal: UpgradeRefusal): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = [`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}`];
  for (const [name, value] of Object.entries(refusal.headers)) {
    if (value === undefined || name === 'content-length' || name === 'connection') continue;
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${String(v)}`);
  }
  lines.push(`content-length: ${Buffer.byteLength(refusal.body)}`, 'connection: close', '', '');
  socket.end(lines.join('\r\n') + refusal.body);
}
