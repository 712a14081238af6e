// Spans, when tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT; docs/tracing.md). The HTTP servers
// and the delivery pipeline start spans through this interface; the OpenTelemetry SDK behind it
// (otel-tracing.ts) is loaded only when tracing is configured, so a process without it pays for
// nothing but an `undefined` check. New W3C ids for when no tracer makes them are here too.
import { pooledRandomBytes } from './random-pool.js';
import type { TraceContext } from '../domain/trace-context.js';

export type SpanKind = 'server' | 'client';
export type SpanAttributes = Record<string, string | number | boolean>;

/** A started span: its ids, to pass on in a `traceparent`, and its end. */
export interface SpanScope {
  readonly traceId: string;
  readonly spanId: string;
  /** Whether the span is recorded (exported): the `sampled` flag of what it passes on. */
  readonly sampled: boolean;
  /** Ends the span, with these attributes; `error` marks it failed; `name` renames it. */
  end(options?: { attributes?: SpanAttributes; error?: string | undefined; name?: string }): void;
}

export interface Tracer {
  /**
   * Starts a span: a child of `parent` (a remote span: the caller's, or the one a notification
   * was accepted in), or the root of a new trace when there is none.
   */
  startSpan(
    name: string,
    kind: SpanKind,
    parent: TraceContext | undefined,
    attributes?: SpanAttributes,
  ): SpanScope;
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

/** A new trace id: 16 random bytes as hex (all zero is invalid, and is drawn again). */
export function newTraceId(): string {
  return nonZeroHex(16);
}

/** A new span id: 8 random bytes as hex. */
export function newSpanId(): string {
  return nonZeroHex(8);
}

function nonZeroHex(bytes: number): string {
  for (;;) {
    const id = pooledRandomBytes(bytes);
    if (id.some((b) => b !== 0)) return id.toString('hex');
  }
}
