import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { currentSystemReason, tryCurrentTenant } from './context/tenant-scope';

/**
 * The logger tenantry writes to: message first, structured fields second
 * (`logger.warn(message, fields)`). `console` and winston loggers fit as
 * they are. Loggers that take the fields first (pino, bunyan) do not: wrap
 * them with {@link toTenancyLogger}, which the compiler insists on (a pino or
 * bunyan instance is refused where a `TenancyLogger` is expected, because its
 * fields would otherwise be dropped silently).
 *
 * @example
 * ```ts
 * const logger: TenancyLogger = winston.createLogger({ transports: [new winston.transports.Console()] });
 * const fromPino: TenancyLogger = toTenancyLogger(pino());
 * ```
 */
export interface TenancyLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /**
   * Never set. pino loggers have a `bindings()` method and take
   * `(fields, message)`: wrap them with `toTenancyLogger(pino)`.
   */
  readonly bindings?: never | undefined;
  /**
   * Never set. bunyan loggers have a `reopenFileStreams()` method and take
   * `(fields, message)`: wrap them with `toTenancyLogger(bunyan)`.
   */
  readonly reopenFileStreams?: never | undefined;
}

/**
 * One log method of a logger that takes the fields first (pino, bunyan).
 *
 * @example
 * ```ts
 * const warn: FieldsFirstLogMethod = (fields, message) => pinoLogger.warn(fields, message);
 * ```
 */
export type FieldsFirstLogMethod = (fields: Record<string, unknown>, message?: string) => void;

/**
 * A logger that takes the fields first and the message second: pino and
 * bunyan (`logger.warn({ tenantId }, 'message')`).
 *
 * @example
 * ```ts
 * const logger: FieldsFirstLogger = pino();
 * ```
 */
export interface FieldsFirstLogger {
  debug: FieldsFirstLogMethod;
  info: FieldsFirstLogMethod;
  warn: FieldsFirstLogMethod;
  error: FieldsFirstLogMethod;
}

/**
 * Every logger shape tenantry can adapt: message-first (console, winston) or
 * fields-first (pino, bunyan).
 *
 * @example
 * ```ts
 * const loggers: TenancyLoggerInput[] = [console, pino(), winston.createLogger()];
 * ```
 */
export type TenancyLoggerInput = TenancyLogger | FieldsFirstLogger;

/**
 * Argument order of a logger's methods, for {@link ToTenancyLoggerOptions.style}.
 *
 * @example
 * ```ts
 * const logger = toTenancyLogger(myFieldsFirstLogger, { style: 'fields-first' satisfies LoggerStyle });
 * ```
 */
export type LoggerStyle = 'message-first' | 'fields-first';

/**
 * Options of {@link toTenancyLogger}.
 *
 * @example
 * ```ts
 * toTenancyLogger(logger, { style: 'fields-first' });
 * ```
 */
export interface ToTenancyLoggerOptions {
  /**
   * The argument order of the logger's methods. Default: detected — pino
   * (a `bindings()` method) and bunyan (a `reopenFileStreams()` method and
   * a `streams` array) are `'fields-first'`, every other logger `'message-first'`.
   */
  readonly style?: LoggerStyle | undefined;
}

/**
 * The log levels tenantry uses.
 *
 * @example
 * ```ts
 * const level: TenancyLogLevel = status >= 500 ? 'error' : 'info';
 * ```
 */
export type TenancyLogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: readonly TenancyLogLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * A logger that discards everything: the default, so the library never prints by itself.
 *
 * @example
 * ```ts
 * app.use(tenancyErrorHandler({ logger: silentLogger }));
 * ```
 */
export const silentLogger: TenancyLogger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});

/** Loggers made by {@link toTenancyLogger}: adapting them again returns them as they are. */
const adapted = new WeakSet<TenancyLogger>();

function detectStyle(logger: object): LoggerStyle {
  const shape = logger as { bindings?: unknown; reopenFileStreams?: unknown; streams?: unknown };
  if (typeof shape.bindings === 'function') return 'fields-first';
  if (typeof shape.reopenFileStreams === 'function' && Array.isArray(shape.streams)) {
    return 'fields-first';
  }
  return 'message-first';
}

/**
 * Turns the values of a field record into what every logger can print:
 * an `Error` becomes `{ name, message, code }` (winston's JSON format and
 * `JSON.stringify` would print `{}`; its stack and own properties stay out,
 * as they may hold statement values).
 */
function printable(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (fields === undefined) return out;
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      const code = (value as { code?: unknown }).code;
      out[key] = {
        name: value.name,
        message: value.message,
        ...(typeof code === 'string' ? { code } : {}),
      };
    } else out[key] = value;
  }
  return out;
}

/**
 * Adapts the logger your application already has to the {@link TenancyLogger}
 * tenantry writes to: pino and bunyan (fields first) are detected and their
 * argument order swapped; console and winston (message first) are passed the
 * message and the fields as they are. `undefined` gives the
 * {@link silentLogger}. `Error` values in fields are logged as
 * `{ name, message, code }`.
 *
 * @throws TypeError when `logger` lacks one of `debug`, `info`, `warn`, `error`.
 * @example
 * ```ts
 * import pino from 'pino';
 * const logger = toTenancyLogger(pino());
 * app.use(resolveTenant({ store, logger }));
 * ```
 */
export function toTenancyLogger(
  logger: TenancyLoggerInput | undefined,
  options: ToTenancyLoggerOptions = {},
): TenancyLogger {
  if (logger === undefined) return silentLogger;
  if (logger === silentLogger || adapted.has(logger as TenancyLogger))
    return logger as TenancyLogger;
  if (typeof logger !== 'object' || logger === null) {
    throw new TypeError(
      'Cannot use the logger because it is not an object. Pass pino, winston, bunyan, console or a TenancyLogger.',
    );
  }
  const source = logger as unknown as Record<TenancyLogLevel, unknown>;
  for (const level of LEVELS) {
    if (typeof source[level] !== 'function') {
      throw new TypeError(
        `Cannot use the logger because it has no ${level}() method. Pass pino, winston, bunyan, console or a TenancyLogger.`,
      );
    }
  }
  const style = options.style ?? detectStyle(logger);
  if (style !== 'message-first' && style !== 'fields-first') {
    throw new TypeError(
      `Cannot use toTenancyLogger({ style: ${JSON.stringify(style)} }). Use 'message-first' or 'fields-first'.`,
    );
  }
  const call = (level: TenancyLogLevel) => {
    const method = source[level] as (...args: unknown[]) => void;
    return style === 'fields-first'
      ? (message: string, fields?: Record<string, unknown>) =>
          method.call(logger, printable(fields), message)
      : (message: string, fields?: Record<string, unknown>) =>
          fields === undefined
            ? method.call(logger, message)
            : method.call(logger, message, printable(fields));
  };
  const result: TenancyLogger = Object.freeze({
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
  });
  adapted.add(result);
  return result;
}

/** Extra log fields of the current request or job (the request id). */
const logFieldStorage = new AsyncLocalStorage<Readonly<Record<string, unknown>>>();

/**
 * Runs `fn` with `fields` added to what {@link tenantLogFields} returns, for
 * everything `fn` starts (promises, timers, callbacks). Nested calls add to
 * the outer fields for their inner function only. For jobs and scripts; HTTP
 * requests get theirs from {@link requestLogFields}.
 *
 * @example
 * ```ts
 * await withLogFields({ jobId: job.id }, () => runWithTenant(job.data.tenantId, () => work(job)));
 * ```
 */
export function withLogFields<T>(fields: Readonly<Record<string, unknown>>, fn: () => T): T {
  if (typeof fields !== 'object' || fields === null) {
    throw new TypeError('withLogFields(fields, fn) needs an object of fields.');
  }
  const outer = logFieldStorage.getStore();
  return logFieldStorage.run(Object.freeze({ ...outer, ...fields }), fn);
}

/**
 * The fields that identify the current unit of work: `tenantId` (the tenant
 * scope's tenant), `systemReason` (inside `runAsSystem()`), and the fields of
 * {@link requestLogFields} / {@link withLogFields} (`requestId`, ...).
 * Empty outside any scope. Use it as pino's `mixin` or in a winston format.
 *
 * @example
 * ```ts
 * const logger = pino({ mixin: tenantLogFields });
 * // every line: {"tenantId":"acme","requestId":"9f1c...","msg":"saved"}
 * ```
 */
export function tenantLogFields(): Record<string, unknown> {
  const tenantId = tryCurrentTenant()?.id;
  const systemReason = tenantId === undefined ? currentSystemReason() : undefined;
  return {
    ...logFieldStorage.getStore(),
    ...(tenantId !== undefined ? { tenantId } : {}),
    ...(systemReason !== undefined ? { systemReason } : {}),
  };
}

/**
 * A logger for your own code that adds {@link tenantLogFields} (the current
 * tenant id and request id) to every line, read at the moment of each call:
 * one singleton logger serves every request, timer and job, and never
 * captures a tenant. Accepts the same loggers as {@link toTenancyLogger}.
 *
 * @example
 * ```ts
 * const log = tenantLogger(pino());
 * app.get('/documents', async (req, res) => {
 *   log.info('listing documents'); // {"tenantId":"acme","requestId":"...","msg":"listing documents"}
 *   res.json(await documents.list());
 * });
 * ```
 */
export function tenantLogger(
  base: TenancyLoggerInput,
  options: ToTenancyLoggerOptions = {},
): TenancyLogger {
  const logger = toTenancyLogger(base, options);
  const call = (level: TenancyLogLevel) => (message: string, fields?: Record<string, unknown>) =>
    logger[level](message, { ...tenantLogFields(), ...fields });
  return Object.freeze({
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
  });
}

/**
 * Options of {@link requestLogFields}.
 *
 * @example
 * ```ts
 * app.use(requestLogFields({ header: 'x-correlation-id', responseHeader: 'X-Correlation-Id' }));
 * ```
 */
export interface RequestLogFieldsOptions {
  /**
   * Request header carrying an id set by a proxy or the caller; used when it
   * is 1-128 characters of `[A-Za-z0-9._:-]`, otherwise a new id is made.
   * `false` always makes a new id. Default: `'x-request-id'`.
   */
  readonly header?: string | false | undefined;
  /** Makes a new request id. Default: `crypto.randomUUID`. */
  readonly generate?: (() => string) | undefined;
  /** Response header the id is echoed in; `false` for none. Default: `'X-Request-Id'`. */
  readonly responseHeader?: string | false | undefined;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Middleware giving every request a `requestId` log field (from the
 * `X-Request-Id` header when well-formed, else a new UUID) for the rest of
 * the request, including timers and promises it starts: read it with
 * {@link tenantLogFields} or log through {@link tenantLogger}. Mount it
 * before `resolveTenant()` so resolution refusals carry the id too.
 *
 * @example
 * ```ts
 * app.use(requestLogFields());
 * app.use(resolveTenant({ store, logger: tenantLogger(pino()) }));
 * ```
 */
export function requestLogFields(options: RequestLogFieldsOptions = {}): RequestHandler {
  const header = options.header ?? 'x-request-id';
  const generate = options.generate ?? randomUUID;
  const responseHeader = options.responseHeader ?? 'X-Request-Id';
  if (header !== false && (typeof header !== 'string' || header === '')) {
    throw new TypeError('Cannot use requestLogFields({ header }) because it is not a header name.');
  }
  if (typeof generate !== 'function') {
    throw new TypeError('Cannot use requestLogFields({ generate }) because it is not a function.');
  }
  if (responseHeader !== false && (typeof responseHeader !== 'string' || responseHeader === '')) {
    throw new TypeError(
      'Cannot use requestLogFields({ responseHeader }) because it is not a header name.',
    );
  }
  const headerName = header === false ? false : header.toLowerCase();

  return function requestLogFieldsMiddleware(
    req: Request,
    res: Response,
    next: NextFunction,
  ): void {
    const sent = headerName === false ? undefined : req.headers[headerName];
    const requestId =
      typeof sent === 'string' && REQUEST_ID_PATTERN.test(sent) ? sent : String(generate());
    if (responseHeader !== false) res.setHeader(responseHeader, requestId);
    withLogFields({ requestId }, () => next());
  };
}
