import type { ErrorRequestHandler, NextFunction, Request, Response } from 'express';
import { TenancyError } from '../errors';
import { silentLogger, type TenancyLogger } from '../logger';

/** Options of {@link tenancyErrorHandler}. */
export interface TenancyErrorHandlerOptions {
  /** Receives one log line per rendered error: `warn` for 5xx, `debug` for 4xx. Default: silent. */
  readonly logger?: TenancyLogger;
  /**
   * Prefix of the RFC 9457 `type` URI; the code in kebab case is appended
   * (`urn:tenantry:problem:tenant-required`). Default: `urn:tenantry:problem:`.
   */
  readonly typeBase?: string;
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
  readonly detail?: string;
  /** Stable tenantry error code. */
  readonly code: string;
  /** The request path (no query string, which may carry secrets). */
  readonly instance: string;
}

/**
 * The opt-in error handler: renders every {@link TenancyError} as RFC 9457
 * `application/problem+json` (`type`, `title`, `status`, `detail` when
 * exposable, `code`, `instance`) and passes every other error to `next(err)`.
 * The message of a non-exposed error (5xx) never reaches the client; it is
 * logged instead. Token errors also get a `WWW-Authenticate: Bearer` header.
 *
 * @example
 * ```ts
 * app.use(tenancyErrorHandler({ logger }));
 * // 403 { "type": "urn:tenantry:problem:tenant-forbidden", "title": "Not a member of the tenant",
 * //       "status": 403, "detail": "Cannot access tenant ...", "code": "TENANT_FORBIDDEN", "instance": "/docs" }
 * ```
 */
export function tenancyErrorHandler(options: TenancyErrorHandlerOptions = {}): ErrorRequestHandler {
  const logger = options.logger ?? silentLogger;
  const typeBase = options.typeBase ?? 'urn:tenantry:problem:';
  if (typeof typeBase !== 'string')
    throw new TypeError('Cannot use tenancyErrorHandler({ typeBase }) because it is not a string.');

  return function tenancyErrorHandlerMiddleware(
    err: unknown,
    req: Request,
    res: Response,
    next: NextFunction,
  ): void {
    if (!(err instanceof TenancyError) || res.headersSent) {
      next(err);
      return;
    }
    const fields = { code: err.code, status: err.status, method: req.method, path: req.path };
    if (err.status >= 500)
      logger.warn(`tenancy error: ${err.message}`, { ...fields, cause: err.cause });
    else logger.debug(`tenancy error: ${err.message}`, fields);
    const problem: TenancyProblem = {
      type: `${typeBase}${err.code.toLowerCase().replace(/_/g, '-')}`,
      title: err.title,
      status: err.status,
      ...(err.expose ? { detail: err.message } : {}),
      code: err.code,
      instance: req.originalUrl.split('?')[0] ?? '/',
    };
    if (err.code === 'TOKEN_INVALID' || err.code === 'TOKEN_EXPIRED') {
      res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
    }
    res
      .status(err.status)
      .set('Cache-Control', 'no-store')
      .type('application/problem+json')
      .send(JSON.stringify(problem));
  };
}
