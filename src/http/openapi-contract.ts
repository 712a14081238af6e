// The parts of Herald's OpenAPI documents every route shares: the problem+json error schema,
// the document's header (servers, license, contact), and how a route declares its answers.
// Every route states its success answers with `answers(...)`: the schemas serialize the
// answers, document them, and (RESPONSE_VALIDATION=on) check them as they leave.
import { Type, type TSchema } from 'typebox';
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { problems, type ProblemCode } from '../domain/problems.js';
import { problemContentType } from './problem-handler.js';

const problemCodes = Object.keys(problems) as ProblemCode[];

/** One of these strings (a `type: string` enum, so generated clients and readers see text). */
export function Enum<T extends string>(values: readonly T[], options: { description?: string } = {}) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

/** RFC 9457 problem details, as problem-handler.ts renders every error. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'urn:herald:problem:<code>' }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    code: Enum(problemCodes, {
      description: 'Stable machine-readable code; the title may be reworded, the code never is.',
    }),
    detail: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(Type.Object({ field: Type.String(), message: Type.String() }), {
        description: 'Which inputs are wrong (validation_failed and the like).',
      }),
    ),
    request_id: Type.Optional(
      Type.String({ description: 'The X-Request-Id of the answer: quote it when asking for help.' }),
    ),
  },
  {
    $id: 'Problem',
    title: 'Problem',
    // A few codes carry more fields (e.g. the limit that was hit); clients may ignore them.
    additionalProperties: true,
  },
);

const problemAnswer = {
  description: 'A problem (RFC 9457); `code` says which.',
  content: { [problemContentType]: { schema: Type.Ref('Problem') } },
};

const statusNames: Record<string, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted' };

/** An answer without a body (204): documented without content, sent with reply.send(). */
const NoBody = Type.Unsafe<undefined>({ type: 'null', description: 'No body.' });

/**
 * A route's answers: its success statuses with their JSON bodies (`null` for an empty body),
 * and the problem+json answers any route may give (4xx for the request, 5xx for Herald).
 */
export function answers<S extends Record<number, TSchema | null>>(
  success: S,
): { [K in keyof S]: S[K] extends TSchema ? S[K] : typeof NoBody } & {
  '4xx': typeof problemAnswer;
  '5xx': typeof problemAnswer;
} {
  const documented: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(success)) {
    // The document shows a schema's description as the answer's; without one, the status's name.
    documented[status] =
      schema === null
        ? NoBody
        : {
            ...schema,
            description: (schema as { description?: string }).description ?? statusNames[status] ?? 'Success',
          };
  }
  return { ...documented, '4xx': problemAnswer, '5xx': problemAnswer } as never;
}

/** Schemas every server registers (app.addSchema): they appear under components.schemas. */
export const sharedSchemas: TSchema[] = [ProblemSchema];

/** The document's header: what a generated client or a linter reads besides the paths. */
export function documentInfo(
  title: string,
  description: string,
  serverUrl: string | undefined,
): FastifyDynamicSwaggerOptions['openapi'] {
  return {
    openapi: '3.1.0',
    info: {
      title,
      description,
      version: '0.1.0',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      contact: { name: 'Herald maintainers' },
    },
    servers: [
      serverUrl === undefined
        ? { url: '/', description: 'The server this document was read from' }
        : { url: serverUrl },
    ],
    components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
    security: [{ apiKey: [] }],
  };
}

/** `T` or null (OpenAPI 3.1: JSON Schema's own null type). */
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** An ISO 8601 instant, as Date.toISOString() writes it. */
export const Timestamp = (description?: string) =>
  Type.String({ format: 'date-time', ...(description === undefined ? {} : { description }) });

/** A JSON object whose keys the caller chose (data, params): any values. */
export const FreeForm = (description?: string) =>
  Type.Record(Type.String(), Type.Unknown(), description === undefined ? {} : { description });

/** A response object: every field listed, no other field (the serializer would drop it). */
export const Answer = <P extends Parameters<typeof Type.Object>[0]>(properties: P, description?: string) =>
  Type.Object(properties, {
    additionalProperties: false,
    ...(description === undefined ? {} : { description }),
  });
