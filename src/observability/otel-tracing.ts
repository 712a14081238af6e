// The OpenTelemetry tracer behind tracing.ts: spans batched and exported over OTLP/HTTP (JSON)
// to `<endpoint>/v1/traces`. The SDK is imported here only, and this module only by a dynamic
// import when tracing is configured (src/composition/infrastructure.ts), so without it no
// OpenTelemetry code is loaded. Parents are passed explicitly (a W3C context per request or
// per notification) instead of through an async context manager: nothing else is instrumented.
import {
  ROOT_CONTEXT,
  SpanKind as OtelSpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { TraceContext } from '../domain/trace-context.js';
import type { SpanKind, SpanScope, Tracer } from './tracing.js';

export interface OtelTracingOptions {
  /** The OTLP/HTTP base URL; spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  serviceName: string;
  /** Sent with every export (e.g. a backend's API key). */
  headers: Record<string, string>;
  /** The process's roles, as a resource attribute. */
  roles: readonly string[];
  /** How often buffered spans are exported. */
  exportIntervalMs?: number;
}

const kinds: Record<SpanKind, OtelSpanKind> = { server: OtelSpanKind.SERVER, client: OtelSpanKind.CLIENT };

export function createOtelTracer(options: OtelTracingOptions): Tracer {
  const exporter = new OTLPTraceExporter({
    url: `${options.endpoint.replace(/\/+$/, '')}/v1/traces`,
    headers: options.headers,
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName,
      'herald.roles': options.roles.join(','),
    }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, { scheduledDelayMillis: options.exportIntervalMs ?? 5000 }),
    ],
  });
  const tracer = provider.getTracer('herald');
  return {
    startSpan(name, kind, parent, attributes): SpanScope {
      const span = tracer.startSpan(
        name,
        { kind: kinds[kind], ...(attributes === undefined ? {} : { attributes }) },
        parentContext(parent),
      );
      const context = span.spanContext();
      return {
        traceId: context.traceId,
        spanId: context.spanId,
        sampled: (context.traceFlags & TraceFlags.SAMPLED) !== 0,
        end(end = {}) {
          if (end.name !== undefined) span.updateName(end.name);
          if (end.attributes !== undefined) span.setAttributes(end.attributes);
          if (end.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: end.error });
          span.end();
        },
      };
    },
    shutdown: () => provider.shutdown(),
  };
}

/** The remote span a new span continues (the parent-based sampler follows its sampled flag). */
function parentContext(parent: TraceContext | undefined) {
  if (parent === undefined) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: parent.traceId,
    spanId: parent.parentId,
    traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}
