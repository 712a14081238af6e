// Renders every error as application/problem+json (RFC 9457) with a stable `code` from
// domain/problems.ts. A 500 reveals only the request id; the cause goes to the log.
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ProblemError, problems, type ProblemCode, type ProblemDetail } from '../domain/problems.js';
import { isConnectionError } from '../db/pg-errors.js';

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
};

/**
 * For requests Node's HTTP parser rejects before Fastify sees them (e.g. 431, headers too
 * large): a problem+json answer written to the socket, then the connection closes.
 */
export function writeRawProblem(error: Error & { code?: string }, socket: Duplex): void {
  const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
  const status = tooLarge ? 431 : 400;
  const code = tooLarge ? 'headers_too_large' : 'malformed_request';
  const body = JSON.stringify({
    type: `urn:herald:problem:${code}`,
    title: problems[code].title,
    status,
    code,
  });
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${String(status)} ${tooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
        `content-type: ${problemContentType}\r\ncontent-length: ${String(Buffer.byteLength(body))}\r\nconnection: close\r\n\r\n${body}`,
    );
  } else {
    socket.destroy();
  }
}

export function registerProblemHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ProblemError) {
      void reply.headers(error.headers);
      if (error.code === 'unauthenticated') void reply.header('www-authenticate', 'Bearer');
      return sendProblem(request, reply, error.code, error.detail, error.errors);
    }
    if (error.validation !== undefined) {
      const errors = error.validation.map((v) => ({
        field: `${error.validationContext ?? 'body'}${v.instancePath}`,
        message: v.message ?? 'is invalid',
      }));
      return sendProblem(
        request,
        reply,
        'validation_failed',
        'The request does not match the schema.',
        errors,
      );
    }
    const mapped = fastifyCodes[error.code];
    if (mapped !== undefined) return sendProblem(request, reply, mapped);
    if (error instanceof SyntaxError && error.statusCode === 400)
      return sendProblem(request, reply, 'invalid_json');
    if (isConnectionError(error)) {
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
