// Rejects input PostgreSQL cannot store or that costs more than it is worth to walk (NUL
// characters, unpaired UTF-16 surrogates, deep nesting: domain/unsafe-input.ts), before schema
// validation, in a request's params, query string and body.
import type { FastifyRequest } from 'fastify';
import { ProblemError } from '../domain/problems.js';
import { findUnsafeInput } from '../domain/unsafe-input.js';

export async function guardInput(request: FastifyRequest): Promise<void> {
  for (const [part, value] of [
    ['params', request.params],
    ['querystring', request.query],
    ['body', request.body],
  ] as const) {
    const problem = findUnsafeInput(value, part);
    if (problem !== undefined) {
      throw new ProblemError('validation_failed', `${problem[0]} ${problem[1]}.`, [
        { field: problem[0], message: problem[1] },
      ]);
    }
  }
}
