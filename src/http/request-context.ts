// Each request's identity and its record: the request id (the caller's X-Request-Id when it is
// a sane token, else a new UUID), returned on every answer; the W3C trace context of an incoming
// `traceparent`, bound to the request's log lines, and, when tracing is on, a server span per
// request (a child of the caller's span); and, when the request is answered, its count and
// duration in the HTTP metrics and one access-log line (info level: LOG_LEVEL=warn leaves them
// out).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { HttpMetrics } from '../observability/metrics.js';
import type { SpanScope, Tracer } from '../observability/tracing.js';
import { parseTraceparent, type TraceContext } from '../domain/trace-context.js';
import './api-key-auth.js';

export type { TraceContext } from '../domain/trace-context.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The trace context the request's work continues: Herald's span of it when tracing is on,
     * else the caller's valid `traceparent`; undefined when neither.
     */
    traceContext?: TraceContext | undefined;
    /** Herald's span of this request (tracing on only). */
    span?: SpanScope | undefined;
  }
}

/** Ids we take from callers: what they would log, bounded; anything else gets a new id. */
const callerRequestId = /^[\w.:@/+-]{1,128}$/;

export function requestIdOf(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  return typeof header === 'string' && callerRequestId.test(header) ? header : randomUUID();
}

/** A `traceparent` header of version 00 (W3C Trace Context), or undefined when it is not one. */
export const traceContextOf = parseTraceparent;

/** Probes and scrapes: frequent, and nothing to follow; they get no span. */
const untracedRoutes = new Set(['/healthz', '/readyz', '/metrics']);

export function registerRequestContext(
  app: FastifyInstance,
  options: { role: string; metrics?: HttpMetrics | undefined; tracer?: Tracer | undefined },
): void {
  const { role, metrics, tracer } = options;
  app.addHook('onRequest', (request, reply, done) => {
    // Set before any handler runs, so error answers and hijacked streams carry it too.
    void reply.header('x-request-id', request.id);
    const incoming = parseTraceparent(request.headers.traceparent);
    request.traceContext = incoming;
    if (tracer !== undefined && !untracedRoutes.has(request.routeOptions.url ?? '')) {
      // Named by method only here; the route template is known once routing is done (onResponse).
      const span = tracer.startSpan(request.method, 'server', incoming, { 'herald.role': role });
      request.span = span;
      request.traceContext = { traceId: span.traceId, parentId: span.spanId, sampled: span.sampled };
      request.log = request.log.child({
        trace_id: span.traceId,
        span_id: span.spanId,
        ...(incoming === undefined ? {} : { parent_span_id: incoming.parentId }),
      });
    } else if (incoming !== undefined) {
      request.log = request.log.child({ trace_id: incoming.traceId, parent_span_id: incoming.parentId });
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    // The route template, never the URL: ids in paths would make a series per request.
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics?.httpRequests.inc({ role, method: request.method, route, status: String(reply.statusCode) });
    metrics?.httpRequestSeconds.observe({ role, method: request.method, route }, seconds);
    // The route template, not the URL: paths and query strings carry callers' values (user ids,
    // notification ids, a realtime stream's token), which stay out of the log.
    const line = {
      role,
      method: request.method,
      route,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      service: request.caller?.serviceName,
    };
    if (reply.statusCode >= 500) request.log.warn(line, 'request failed');
    else request.log.info(line, 'request');
    request.span?.end({
      name: `${request.method} ${route}`,
      attributes: {
        'http.request.method': request.method,
        'http.route': route,
        'http.response.status_code': reply.statusCode,
        ...(line.service === undefined ? {} : { 'herald.service': line.service }),
      },
      error: reply.statusCode >= 500 ? `HTTP ${String(reply.statusCode)}` : undefined,
    });
    done();
  });
}
