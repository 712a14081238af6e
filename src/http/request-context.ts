// Each request's identity and its record: the request id (the caller's X-Request-Id when it is
// a sane token, else a new UUID), returned on every answer; the W3C trace context of an incoming
// `traceparent`, bound to the request's log lines; and, when the request is answered, its count
// and duration in the HTTP metrics and one access-log line (info level: LOG_LEVEL=warn leaves
// them out).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { HttpMetrics } from '../observability/metrics.js';
import './api-key-auth.js';

/** Ids we take from callers: what they would log, bounded; anything else gets a new id. */
const callerRequestId = /^[\w.:@/+-]{1,128}$/;

export function requestIdOf(request: IncomingMessage): string {
  const header = request.headers['x-request-id'];
  return typeof header === 'string' && callerRequestId.test(header) ? header : randomUUID();
}

export interface TraceContext {
  traceId: string;
  /** The caller's span: the parent of whatever this request does. */
  parentId: string;
  sampled: boolean;
}

/** A `traceparent` header of version 00 (W3C Trace Context), or undefined when it is not one. */
export function traceContextOf(header: string | string[] | undefined): TraceContext | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(header.trim());
  if (match?.[1] === undefined || match[2] === undefined || match[3] === undefined) return undefined;
  // All-zero ids are invalid by the specification.
  if (/^0+$/.test(match[1]) || /^0+$/.test(match[2])) return undefined;
  return { traceId: match[1], parentId: match[2], sampled: (parseInt(match[3], 16) & 1) === 1 };
}

export function registerRequestContext(
  app: FastifyInstance,
  options: { role: string; metrics?: HttpMetrics | undefined },
): void {
  const { role, metrics } = options;
  app.addHook('onRequest', (request, reply, done) => {
    // Set before any handler runs, so error answers and hijacked streams carry it too.
    void reply.header('x-request-id', request.id);
    const trace = traceContextOf(request.headers.traceparent);
    if (trace !== undefined)
      request.log = request.log.child({ trace_id: trace.traceId, parent_span_id: trace.parentId });
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    // The route template, never the URL: ids in paths would make a series per request.
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000;
    metrics?.httpRequests.inc({ role, method: request.method, route, status: String(reply.statusCode) });
    metrics?.httpRequestSeconds.observe({ role, method: request.method, route }, seconds);
    // Without the query string: a realtime stream may carry its token there (EventSource).
    const line = {
      role,
      method: request.method,
      route,
      path: request.url.split('?')[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      service: request.caller?.serviceName,
    };
    if (reply.statusCode >= 500) request.log.warn(line, 'request failed');
    else request.log.info(line, 'request');
    done();
  });
}
