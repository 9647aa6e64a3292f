import { context, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import type { RequestHandler } from 'express';

/** A real OpenTelemetry SDK set-up with an in-memory exporter, registered globally. */
export interface RegisteredTracing {
  readonly exporter: InMemorySpanExporter;
  /** Express middleware running the rest of the request inside an active span named `name`. */
  readonly requestSpan: (name: string) => RequestHandler;
  /** Runs fn inside an active span, ended when fn settles. */
  readonly inSpan: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
  /** Ended spans so far. */
  readonly spans: () => ReadableSpan[];
  readonly unregister: () => void;
}

export function registerTracing(): RegisteredTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  trace.setGlobalTracerProvider(provider);
  const tracer = trace.getTracer('tenantry-spec');
  return {
    exporter,
    requestSpan: (name) =>
      function requestSpan(req, res, next) {
        tracer.startActiveSpan(`${name} ${req.path}`, (span: Span) => {
          res.on('finish', () => span.end());
          next();
        });
      },
    inSpan: (name, fn) =>
      tracer.startActiveSpan(name, async (span: Span) => {
        try {
          return await fn();
        } finally {
          span.end();
        }
      }),
    spans: () => exporter.getFinishedSpans(),
    unregister: () => {
      trace.disable();
      context.disable();
      manager.disable();
    },
  };
}

/** The events of a span with the given name. */
export function eventsOf(span: ReadableSpan, name: string): Array<Record<string, unknown>> {
  return span.events.filter((e) => e.name === name).map((e) => ({ ...e.attributes }));
}
