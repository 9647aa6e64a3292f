import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, NextFunction, Request, Response } from 'express';
import { TenancyError, TenantUnavailableError, tenantMovingError } from '../errors';
import {
  tenantLogFields,
  toTenancyLogger,
  type TenancyLogLevel,
  type TenancyLoggerInput,
} from '../logger';

/**
 * Options of {@link tenancyErrorHandler}.
 *
 * @example
 * ```ts
 * app.use(tenancyErrorHandler({ logger: pino(), httpErrors: true, typeBase: 'https://docs.example.com/problems/' }));
 * ```
 */
export interface TenancyErrorHandlerOptions {
  /**
   * Receives one log line per rendered error, with `code`, `status`,
   * `method`, `path`, `tenantId` and `requestId` (when known) and `reason`
   * (the error message: for `UNSAFE_QUERY` it names the clause or table
   * refused, never statement values). Levels: `error` for 5xx; `warn` for
   * refusals that suggest an attack or a bug (`TENANT_FORBIDDEN`,
   * `TENANT_CONFLICT`, `TOKEN_INVALID`, `HOST_INVALID`); `info` for other
   * tenancy 4xx; `debug` for Express's and body-parser's 4xx. pino, bunyan,
   * winston and console are accepted (see `toTenancyLogger()`).
   * Default: silent.
   */
  readonly logger?: TenancyLoggerInput | undefined;
  /**
   * Prefix of the RFC 9457 `type` URI; the code in kebab case is appended
   * (`urn:tenantry:problem:tenant-required`). Default: `urn:tenantry:problem:`.
   */
  readonly typeBase?: string | undefined;
  /**
   * Also render the 4xx errors of Express itself (a malformed percent-escape
   * in a route parameter: 400) and of body-parser / http-errors (413 body too
   * large, 400 malformed JSON, 415 unsupported charset) as problem+json. Their
   * `code` is body-parser's `type` in upper snake case (`ENTITY_TOO_LARGE`),
   * else `BAD_REQUEST`-style from the status; `detail` only when the error is
   * marked `expose`. 5xx and other errors still go to `next(err)`.
   * Default: `false`.
   */
  readonly httpErrors?: boolean | undefined;
}

/** The RFC 9457 problem document rendered for a {@link TenancyError}. */
export interface TenancyProblem {
  /** URI naming the problem type. */
  readonly type: string;
  /** Short constant title of the code. */
  readonly title: string;
  /** HTTP status. */
  readonly status: number;
  /** Human explanation, only when the error is safe to expose (never for 5xx by default). */
  readonly detail?: string | undefined;
  /** Stable tenantry error code (or, with `httpErrors`, the code derived from Express's error). */
  readonly code: string;
  /** The request path (no query string, which may carry secrets). */
  readonly instance: string;
}

/** Refusals worth a `warn`: a client naming a tenant it may not use, or a forged token or host. */
const SUSPICIOUS_CODES: ReadonlySet<string> = new Set([
  'TENANT_FORBIDDEN',
  'TENANT_CONFLICT',
  'TOKEN_INVALID',
  'HOST_INVALID',
]);

interface HttpErrorLike {
  readonly status: number;
  readonly message: string;
  readonly expose: boolean;
  readonly type: string | undefined;
}

/** An Express/body-parser/http-errors 4xx: a `status` (or `statusCode`) 400-499. */
function asHttpError(err: unknown): HttpErrorLike | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & {
    status?: unknown;
    statusCode?: unknown;
    expose?: unknown;
    type?: unknown;
  };
  const status = typeof e.status === 'number' ? e.status : e.statusCode;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 499) {
    return undefined;
  }
  return {
    status,
    message: e.message,
    expose: e.expose === true,
    type: typeof e.type === 'string' && /^[a-z.]{1,64}$/.test(e.type) ? e.type : undefined,
  };
}

function httpErrorCode(status: number, type: string | undefined): string {
  if (type !== undefined) return type.toUpperCase().replace(/\./g, '_');
  return (STATUS_CODES[status] ?? 'Client Error').toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

function describeCause(cause: unknown): Record<string, unknown> | undefined {
  if (cause === undefined) return undefined;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return {
      name: cause.name,
      message: cause.message,
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { message: String(cause) };
}

/**
 * The opt-in error handler: renders every {@link TenancyError} as RFC 9457
 * `application/problem+json` (`type`, `title`, `status`, `detail` when
 * exposable, `code`, `instance`) and passes every other error to `next(err)`
 * (with `httpErrors: true`, Express's and body-parser's own 4xx errors are
 * rendered too). The message of a non-exposed error (5xx) never reaches the
 * client; it is logged instead, at `error` level, with the current tenant
 * and request id. Token errors also get a `WWW-Authenticate: Bearer` header.
 *
 * @example
 * ```ts
 * app.use(tenancyErrorHandler({ logger: pino(), httpErrors: true }));
 * // 403 { "type": "urn:tenantry:problem:tenant-forbidden", "title": "Not a member of the tenant",
 * //       "status": 403, "detail": "Cannot access tenant ...", "code": "TENANT_FORBIDDEN", "instance": "/docs" }
 * ```
 */
export function tenancyErrorHandler(options: TenancyErrorHandlerOptions = {}): ErrorRequestHandler {
  const logger = toTenancyLogger(options.logger);
  const typeBase = options.typeBase ?? 'urn:tenantry:problem:';
  const httpErrors = options.httpErrors ?? false;
  if (typeof typeBase !== 'string')
    throw new TypeError('Cannot use tenancyErrorHandler({ typeBase }) because it is not a string.');
  if (typeof httpErrors !== 'boolean')
    throw new TypeError(
      'Cannot use tenancyErrorHandler({ httpErrors }) because it is not a boolean.',
    );

  function send(req: Request, res: Response, problem: TenancyProblem): void {
    res
      .status(problem.status)
      .set('Cache-Control', 'no-store')
      .type('application/problem+json')
      .send(JSON.stringify(problem));
  }

  function instanceOf(req: Request): string {
    return req.originalUrl.split('?')[0] ?? '/';
  }

  return function tenancyErrorHandlerMiddleware(
    raw: unknown,
    req: Request,
    res: Response,
    next: NextFunction,
  ): void {
    if (res.headersSent) {
      next(raw);
      return;
    }
    // A write the database refused during a move's write freeze is a 503 with Retry-After, not a 500.
    const err = raw instanceof TenancyError ? raw : (tenantMovingError(raw) ?? raw);
    if (!(err instanceof TenancyError)) {
      const http = httpErrors ? asHttpError(err) : undefined;
      if (http === undefined) {
        next(err);
        return;
      }
      const code = httpErrorCode(http.status, http.type);
      logger.debug(`http error: ${http.message}`, {
        ...tenantLogFields(),
        code,
        status: http.status,
        method: req.method,
        path: req.path,
      });
      send(req, res, {
        type: `${typeBase}${code.toLowerCase().replace(/_/g, '-')}`,
        title: STATUS_CODES[http.status] ?? 'Client Error',
        status: http.status,
        ...(http.expose ? { detail: http.message } : {}),
        code,
        instance: instanceOf(req),
      });
      return;
    }
    const level: TenancyLogLevel =
      err.status >= 500 ? 'error' : SUSPICIOUS_CODES.has(err.code) ? 'warn' : 'info';
    const cause = err.status >= 500 ? describeCause(err.cause) : undefined;
    logger[level](`tenancy error ${err.code}: ${err.message}`, {
      ...tenantLogFields(),
      code: err.code,
      status: err.status,
      method: req.method,
      path: req.path,
      reason: err.message,
      ...(cause !== undefined ? { cause } : {}),
    });
    if (err instanceof TenantUnavailableError && err.retryAfterSeconds !== undefined) {
      res.set('Retry-After', String(Math.max(0, Math.ceil(err.retryAfterSeconds))));
    }
    if (err.code === 'TOKEN_INVALID' || err.code === 'TOKEN_EXPIRED') {
      res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
    }
    send(req, res, {
      type: `${typeBase}${err.code.toLowerCase().replace(/_/g, '-')}`,
      title: err.title,
      status: err.status,
      ...(err.expose ? { detail: err.message } : {}),
      code: err.code,
      instance: instanceOf(req),
    });
  };
}
