// Builds a Fastify instance with Herald's plugins and the given route plugins. Never listens:
// tests use inject(), main listens (Fastify testing guide).
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import swagger from '@fastify/swagger';
import AjvCompiler from '@fastify/ajv-compiler';
import swaggerUi from '@fastify/swagger-ui';
import { randomUUID } from 'node:crypto';
import { registerProblemHandler, sendProblem, writeRawProblem } from './problem-handler.js';
import { guardInput } from './input-guard.js';

export interface ServerOptions {
  logger: FastifyBaseLogger;
  bodyLimit: number;
  title: string;
  description: string;
}

export async function buildServer(
  options: ServerOptions,
  routes: FastifyPluginAsync[],
): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    genReqId: () => randomUUID(),
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
    // Requests Node's HTTP parser refuses (headers or URL too large, bad syntax).
    clientErrorHandler: (error, socket) => writeRawProblem(error, socket),
    requestIdHeader: false,
    // One log line per request costs more than ingest itself at high rates; failures are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    schemaController: { compilersFactory: { buildValidator: jsonBodiesUncoerced() } },
  });
  registerProblemHandler(app);
  app.addHook('preValidation', guardInput);
  // Herald's routes take JSON only; without this, text bodies would reach the schema check.
  app.removeContentTypeParser('text/plain');
  await app.register(swagger, {
    openapi: {
      info: { title: options.title, description: options.description, version: '0.1.0' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  app.addHook('onResponse', (request, reply, done) => {
    if (reply.statusCode >= 500)
      // Without the query: a realtime stream may carry its token there (EventSource).
      request.log.warn({ url: request.url.split('?')[0], status: reply.statusCode }, 'request failed');
    done();
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
      customOptions: { ...(options?.mode === 'JTD' ? {} : options?.customOptions), coerceTypes: false },
    });
    return (route) => (route.httpPart === 'body' ? forBodies(route) : forText(route));
  };
}
