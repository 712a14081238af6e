// Renders every error as application/problem+json (RFC 9457) with a stable `code` from
// domain/problems.ts. A 500 reveals only the request id; the cause goes to the log.
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProblemError, problems, type ProblemCode, type ProblemDetail } from '../domain/problems.js';
import { schemaMismatch } from './body-validator.js';

export const problemContentType = 'application/problem+json';

export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  code: ProblemCode,
  detail?: string,
  errors?: ProblemDetail[],
  extra?: Record<string, unknown>,
): FastifyReply {
  const { status, title } = problems[code];
  return reply
    .code(status)
    .type(problemContentType)
    .send({
      type: `urn:herald:problem:${code}`,
      title,
      status,
      code,
      ...(detail === undefined ? {} : { detail }),
      ...(errors === undefined ? {} : { errors }),
      ...extra,
      request_id: request.id,
    });
}

/** Fastify's own client errors, by their stable codes. */
const fastifyCodes: Record<string, ProblemCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_BAD_URL: 'route_not_found',
  FST_ERR_ASYNC_CONSTRAINT: 'validation_failed',
  // @fastify/multipart (the console's file uploads): a file, or the parts, over their limits.
  FST_REQ_FILE_TOO_LARGE: 'payload_too_large',
  FST_PARTS_LIMIT: 'payload_too_large',
  FST_FILES_LIMIT: 'payload_too_large',
  FST_FIELDS_LIMIT: 'payload_too_large',
};

/** @fastify/response-validation's errors: an answer off its schema, or an undocumented status. */
const responseValidationCodes: Record<string, true> = {
  FST_RESPONSE_VALIDATION_FAILED_VALIDATION: true,
  FST_RESPONSE_VALIDATION_SCHEMA_NOT_DEFINED: true,
};

/** What Node's HTTP layer reports on a connection (clientError), as Herald answers it. */
const rawProblems: Record<string, { status: number; reason: string; code: ProblemCode }> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'headers_too_large' },
  // The headers or the whole request did not arrive within HTTP_HEADERS_TIMEOUT_MS /
  // HTTP_REQUEST_TIMEOUT_MS (Node's connection check, see build-server.ts).
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', code: 'request_timeout' },
};
const malformed = { status: 400, reason: 'Bad Request', code: 'malformed_request' } as const;

/**
 * For requests Node's HTTP layer rejects before Fastify answers them (a parse error, headers
 * too large, a request not received in time): a problem+json answer written to the socket,
 * then the connection is closed, both ways (a client still sending is not read any further).
 */
export function writeRawProblem(error: Error & { code?: string }, socket: Duplex): void {
  // A reset connection has nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // A response already begun on this connection (a realtime stream whose request body never
  // finished) cannot be followed by another: close it.
  if (!socket.writable || responseStarted(socket)) {
    socket.destroy();
    return;
  }
  const { status, reason, code } =
    (error.code === undefined ? undefined : rawProblems[error.code]) ?? malformed;
  const body = JSON.stringify({
    type: `urn:herald:problem:${code}`,
    title: problems[code].title,
    status,
    code,
  });
  socket.end(
    `HTTP/1.1 ${String(status)} ${reason}\r\n` +
      `content-type: ${problemContentType}\r\ncontent-length: ${String(Buffer.byteLength(body))}\r\nconnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/** Node links a connection to the response being written on it (`_httpMessage`, unexported). */
function responseStarted(socket: Duplex): boolean {
  const response: unknown = (socket as Duplex & { _httpMessage?: unknown })._httpMessage;
  return (
    typeof response === 'object' &&
    response !== null &&
    (response as { headersSent?: unknown }).headersSent === true
  );
}

/**
 * `isUnavailable` tells an error that means the database cannot be reached (503 with
 * Retry-After: the caller should retry) from a bug (500); the composition root passes the
 * database's own test.
 */
export function registerProblemHandler(
  app: FastifyInstance,
  isUnavailable: (error: unknown) => boolean = () => false,
): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ProblemError) {
      void reply.headers(error.headers);
      if (error.code === 'unauthenticated') void reply.header('www-authenticate', 'Bearer');
      return sendProblem(request, reply, error.code, error.detail, error.errors);
    }
    if (error.code in responseValidationCodes) {
      // RESPONSE_VALIDATION: the answer is not what the OpenAPI document promises (a bug here).
      // The setting is for development and tests, so the answer says what is off (schema paths only).
      request.log.error({ err: error }, 'answer does not match its OpenAPI description');
      return sendProblem(
        request,
        reply,
        'internal_error',
        `Answer off its OpenAPI description: ${error.message}`,
      );
    }
    if (error.validation !== undefined) {
      const problem = schemaMismatch(error.validation, error.validationContext ?? 'body');
      return sendProblem(request, reply, problem.code, problem.detail, problem.errors);
    }
    const mapped = fastifyCodes[error.code];
    if (mapped !== undefined) return sendProblem(request, reply, mapped);
    if (error instanceof SyntaxError && error.statusCode === 400)
      return sendProblem(request, reply, 'invalid_json');
    if (isUnavailable(error)) {
      request.log.warn({ err: error }, 'database unavailable');
      void reply.header('retry-after', '1');
      return sendProblem(request, reply, 'service_unavailable');
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      request.log.info({ err: error }, 'unmapped client error');
      return sendProblem(
        request,
        reply,
        error.statusCode === 405 ? 'method_not_allowed' : 'validation_failed',
        error.message,
      );
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(request, reply, 'internal_error', `Reference: ${request.id}`);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(request, reply, 'route_not_found'));
}
