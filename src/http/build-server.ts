// Builds a Fastify instance with Herald's plugins and the given route plugins. Never listens:
// tests use inject(), main listens (Fastify testing guide).
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import AjvCompiler from '@fastify/ajv-compiler';
import swaggerUi from '@fastify/swagger-ui';
import responseValidation from '@fastify/response-validation';
import ajvFormats from 'ajv-formats';
import { registerProblemHandler, sendProblem, writeRawProblem } from './problem-handler.js';
import { guardInput } from './input-guard.js';
import { requireOpsToken } from './ops-access.js';
import { registerRequestContext, requestIdOf } from './request-context.js';
import type { HttpMetrics } from '../observability/metrics.js';
import { documentInfo, sharedSchemas } from './openapi-contract.js';
import type { Tracer } from '../observability/tracing.js';
import { jsonBodyAjvOptions } from './body-validator.js';

/** How long a client may take, per connection (docs/security.md). */
export interface HttpTimeouts {
  /** The whole request, headers and body, from its first byte. */
  requestMs: number;
  /** The headers (and a new connection's first request). */
  headersMs: number;
  /** An idle kept-alive connection between requests. */
  keepAliveMs: number;
  /** No byte in either direction, during a request or its response. */
  idleMs: number;
}

export interface ServerOptions {
  logger: FastifyBaseLogger;
  bodyLimit: number;
  title: string;
  description: string;
  timeouts: HttpTimeouts;
  /**
   * Serve this server's OpenAPI document at /openapi.json and /docs (OPS_ENDPOINTS=public).
   * Without it the document is still built, for the ops port (app.swagger() after ready()).
   */
  exposeDocs: boolean;
  /** OPS_TOKEN: /metrics and the documents need it as a bearer token. */
  opsToken?: string | undefined;
  /** Errors meaning the database cannot be reached: answered 503 with Retry-After. */
  isUnavailable?: (error: unknown) => boolean;
  /** The role this server answers for: the `role` label of its request metrics. */
  role: string;
  /** Where each answered request is counted and timed. */
  metrics?: HttpMetrics | undefined;
  /** Starts a span per request when tracing is on (docs/tracing.md). */
  tracer?: Tracer | undefined;
  /**
   * Origins whose pages may call this server from a browser (CORS, preflights answered). Their
   * requests carry a bearer token, never cookies, so credentials are not allowed.
   */
  corsOrigins?: readonly string[] | undefined;
  /** The document's `servers` entry (PUBLIC_URL for the api role); unset: the serving host. */
  serverUrl?: string | undefined;
  /**
   * Check every JSON answer against the route's documented response schema as it leaves
   * (RESPONSE_VALIDATION): an undocumented status or a body off its schema becomes a 500 and
   * an error log line. The test suite runs with it on, so the document cannot drift.
   */
  validateResponses?: boolean | undefined;
}

/**
 * Node enforces the request and headers timeouts from a timer that checks the connections
 * still receiving a request every `connectionsCheckingInterval` (default 30 s, so a 10 s
 * timeout could fire 30 s late). A fifth of the shorter timeout, at most a second, keeps the
 * lateness small; each check only visits connections in the middle of receiving a request.
 */
export function timeoutCheckIntervalMs(timeouts: HttpTimeouts): number {
  return Math.max(50, Math.min(1000, Math.floor(Math.min(timeouts.headersMs, timeouts.requestMs) / 5)));
}

export async function buildServer(
  options: ServerOptions,
  routes: FastifyPluginAsync[],
): Promise<FastifyInstance> {
  const { timeouts } = options;
  const app: FastifyInstance = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    // Fastify sets these on the server it creates; it leaves requestTimeout at 0 (off) otherwise.
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    connectionTimeout: timeouts.idleMs,
    // Passed to http.createServer: the headers timeout and the check interval exist only there
    // (Node validates headersTimeout <= requestTimeout when the server is created).
    http: {
      requestTimeout: timeouts.requestMs,
      headersTimeout: timeouts.headersMs,
      connectionsCheckingInterval: timeoutCheckIntervalMs(timeouts),
    },
    // The caller's X-Request-Id when it is a sane token, else a new UUID (request-context.ts).
    genReqId: requestIdOf,
    // User ids may be 128 characters; leave room for percent-encoding.
    routerOptions: { maxParamLength: 512 },
    // Malformed percent-encoding and over-long path segments, answered by Fastify's router
    // before any handler, become problem+json too.
    frameworkErrors: (error, request, reply) => {
      void sendProblem(
        request,
        reply,
        error.code === 'FST_ERR_BAD_URL' ? 'malformed_url' : 'route_not_found',
      );
    },
    // Requests Node's HTTP layer refuses: headers or URL too large, bad syntax, not received in time.
    clientErrorHandler: (error, socket) => writeRawProblem(error, socket),
    requestIdHeader: false,
    // Fastify's two lines per request are replaced by one access-log line (request-context.ts).
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    schemaController: { compilersFactory: { buildValidator: jsonBodiesUncoerced() } },
  });
  registerProblemHandler(app, options.isUnavailable);
  if (options.opsToken !== undefined) app.addHook('onRequest', requireOpsToken(options.opsToken));
  // An answer given before the request was read to its end (a 401 from an onRequest hook, a 413
  // for a declared length over the limit) closes the connection: otherwise Node would go on
  // reading and discarding whatever the client still sends, however slowly, to keep it.
  app.addHook('onSend', (request, reply, _payload, done) => {
    if (!request.raw.complete) void reply.header('connection', 'close');
    done();
  });
  app.addHook('preValidation', guardInput);
  // Herald's routes take JSON only; without this, text bodies would reach the schema check.
  app.removeContentTypeParser('text/plain');
  for (const schema of sharedSchemas) app.addSchema(schema);
  await app.register(swagger, {
    openapi: documentInfo(options.title, options.description, options.serverUrl),
    // Shared schemas keep their $id as their name under components.schemas.
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) =>
        typeof json['$id'] === 'string' ? json['$id'] : `def-${String(i)}`,
    },
  });
  if (options.validateResponses === true)
    await app.register(responseValidation, {
      responseStatusCodeValidation: true,
      ajv: { removeAdditional: false, schemas: sharedSchemas, plugins: [ajvFormats.default] },
    });
  if (options.exposeDocs) {
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  }
  registerRequestContext(app, { role: options.role, metrics: options.metrics, tracer: options.tracer });
  if (options.corsOrigins !== undefined && options.corsOrigins.length > 0)
    await app.register(cors, {
      origin: [...options.corsOrigins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'last-event-id', 'idempotency-key'],
      exposedHeaders: ['retry-after', 'location', 'x-request-id'],
      credentials: false,
      maxAge: 600,
    });
  for (const plugin of routes) await app.register(plugin);
  return app;
}

/**
 * Path parameters, query strings and headers arrive as text and are coerced to their schema's
 * types; JSON bodies already carry types and are not. Coercing bodies turned `null` into `""`
 * (so a nullable URL or email could never be cleared), `"5"` into 5 and a scalar into an array.
 */
function jsonBodiesUncoerced(): AjvCompiler.BuildCompilerFromPool {
  const coercing = AjvCompiler();
  const strict = AjvCompiler();
  return (externalSchemas, options) => {
    const forText = coercing(externalSchemas, options);
    const forBodies = strict(externalSchemas, {
      plugins: options?.plugins ?? [],
      customOptions: { ...(options?.mode === 'JTD' ? {} : options?.customOptions), ...jsonBodyAjvOptions },
    });
    return (route) => (route.httpPart === 'body' ? forBodies(route) : forText(route));
  };
}

/** An OpenAPI document built by another server of the process (app.swagger() after ready()). */
export type OpenApiDocument = Exclude<ReturnType<FastifyInstance['swagger']>, string>;

/**
 * OPS_ENDPOINTS=ops-port: the ops port serves each HTTP role's document at /<role>/openapi.json
 * and its UI at /<role>/docs. The server serving these is built with `exposeDocs: false`.
 */
export function roleDocumentRoutes(
  documents: { role: string; document: OpenApiDocument }[],
): FastifyPluginAsync {
  return async (app) => {
    for (const { role, document } of documents) {
      await app.register(
        async (scope) => {
          // The UI asks its own /json route, which shows this document instead of the ops server's.
          await scope.register(swaggerUi, {
            routePrefix: '/docs',
            transformSpecification: () => document,
            transformSpecificationClone: false,
          });
          scope.get('/openapi.json', { schema: { hide: true } }, () => document);
        },
        { prefix: `/${role}` },
      );
    }
  };
}
