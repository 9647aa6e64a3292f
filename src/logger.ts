/**
 * The logger tenantry writes to. Compatible with pino, winston and
 * `console` (each method takes a message and optional structured fields).
 *
 * @example
 * ```ts
 * const logger: TenancyLogger = pino();
 * ```
 */
export interface TenancyLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that discards everything: the default, so the library never prints by itself. */
export const silentLogger: TenancyLogger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});
