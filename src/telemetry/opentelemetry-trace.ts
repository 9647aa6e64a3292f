/**
 * The one door to `@opentelemetry/api` (an optional peer). It is required
 * once, on first use, inside a try: without the package tenantry neither
 * fails nor pays, and with it but no tracer provider registered the active
 * span is absent or not recording, so every hook returns after one check.
 * Only the three span methods below are used, typed here so tenantry's
 * declarations never name the package.
 */

/** The part of an OpenTelemetry span tenantry writes to. */
export interface TelemetrySpan {
  isRecording(): boolean;
  setAttribute(key: string, value: string): unknown;
  addEvent(name: string, attributes?: Record<string, string>): unknown;
}

interface TraceApi {
  getActiveSpan(): TelemetrySpan | undefined;
}

let trace: TraceApi | null | undefined;

/** `@opentelemetry/api`'s `trace`, or undefined when the package is not installed. */
export function openTelemetryTrace(): TraceApi | undefined {
  if (trace === undefined) {
    trace = null;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const api = require('@opentelemetry/api') as { trace?: Partial<TraceApi> };
      if (typeof api.trace?.getActiveSpan === 'function') trace = api.trace as TraceApi;
    } catch {
      // Not installed (or not loadable): tracing stays off.
    }
  }
  return trace ?? undefined;
}
