// A stand-in for an OpenTelemetry collector's OTLP/HTTP traces endpoint: POST /v1/traces with an
// ExportTraceServiceRequest as JSON (what @opentelemetry/exporter-trace-otlp-http sends). It keeps
// every span with its resource attributes, ids as lower-case hex, and answers 200 with an
// empty partial-success object as a collector does. Protobuf bodies are refused with 415.
import type { IncomingHttpHeaders, Server } from 'node:http';
import { bodyServer, closeServer, listenOnLoopback } from '../helpers/loopback-server.js';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 server, 3 client. */
  kind: number;
  attributes: Record<string, unknown>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, unknown>;
}

interface KeyValue {
  key: string;
  value: Record<string, unknown>;
}

interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: KeyValue[];
        status?: { code?: number };
      }[];
    }[];
  }[];
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** The content type of every export request. */
  readonly contentTypes: string[] = [];
  /** The headers of every export request. */
  readonly requestHeaders: IncomingHttpHeaders[] = [];
  private server: Server | undefined;
  base = '';

  async start(): Promise<void> {
    this.server = bodyServer((req, res, body) => {
      const contentType = req.headers['content-type'] ?? '';
      this.contentTypes.push(contentType);
      this.requestHeaders.push(req.headers);
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      if (!contentType.startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      this.take(JSON.parse(body.toString('utf8')) as ExportRequest);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    this.base = await listenOnLoopback(this.server);
  }

  stop(): Promise<void> {
    return closeServer(this.server);
  }

  private take(request: ExportRequest): void {
    for (const resourceSpans of request.resourceSpans ?? []) {
      const resource = attributesOf(resourceSpans.resource?.attributes);
      for (const scope of resourceSpans.scopeSpans ?? [])
        for (const span of scope.spans ?? [])
          this.spans.push({
            traceId: hexId(span.traceId),
            spanId: hexId(span.spanId),
            parentSpanId: span.parentSpanId === undefined ? '' : hexId(span.parentSpanId),
            name: span.name,
            kind: span.kind,
            attributes: attributesOf(span.attributes),
            statusCode: span.status?.code ?? 0,
            resource,
          });
    }
  }
}

/** OTLP/JSON ids are hex (the specification); base64, protobuf's JSON mapping, is accepted too. */
function hexId(id: string): string {
  if (/^[0-9a-fA-F]*$/.test(id) && (id.length === 32 || id.length === 16 || id.length === 0))
    return id.toLowerCase();
  return Buffer.from(id, 'base64').toString('hex');
}

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = Object.values(value)[0];
  return out;
}
