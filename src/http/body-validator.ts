// JSON bodies are checked by one Ajv configuration wherever they arrive: Fastify's body
// validator (build-server.ts) and broker intake, which has no Fastify request. Both answer a
// mismatch with the same problem (validation_failed, one entry per wrong field).
import AjvCompiler from '@fastify/ajv-compiler';
import type { Static, TSchema } from 'typebox';
import { ProblemError } from '../domain/problems.js';

/** Ajv options for JSON bodies: nothing removed, nothing coerced (JSON already carries types). */
export const jsonBodyAjvOptions = { removeAdditional: false, coerceTypes: false, allErrors: false } as const;

interface AjvError {
  instancePath: string;
  message?: string | undefined;
}

/** The problem Herald answers a body that does not match its schema with. */
export function schemaMismatch(errors: readonly AjvError[], part = 'body'): ProblemError {
  return new ProblemError(
    'validation_failed',
    'The request does not match the schema.',
    errors.map((v) => ({ field: `${part}${v.instancePath}`, message: v.message ?? 'is invalid' })),
  );
}

/** A check of `schema` that throws the same problem an HTTP body off its schema gets. */
export function compileBodyValidator<T extends TSchema>(schema: T): (value: unknown) => Static<T> {
  const compile = AjvCompiler()({}, { customOptions: jsonBodyAjvOptions });
  const validate = compile({ schema, method: 'POST', url: '/', httpPart: 'body' });
  return (value) => {
    const result = validate(value);
    if (result === true) return value as Static<T>;
    const errors = (validate as { errors?: AjvError[] | null }).errors ?? [];
    throw schemaMismatch(errors);
  };
}
