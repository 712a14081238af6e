// Rejects input PostgreSQL cannot store or that costs more than it is worth to walk, before
// schema validation: NUL characters (text and jsonb refuse them), unpaired UTF-16 surrogates
// (jsonb refuses them; text would store U+FFFD, merging distinct ids), and JSON nested deeper
// than any Herald schema needs. The walk is iterative, so hostile depth cannot overflow it.
import type { FastifyRequest } from 'fastify';
import { ProblemError } from '../domain/problems.js';

export const maxInputDepth = 32;
const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const isUnsafeText = (text: string): boolean => text.includes('\u0000') || loneSurrogate.test(text);

/** The first problem in `value`, as [field, message], or undefined when it is acceptable. */
export function findUnsafeInput(value: unknown, root: string): [string, string] | undefined {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: root, depth: 0 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { value: v, path, depth } = item;
    if (typeof v === 'string') {
      if (isUnsafeText(v)) return [path, 'contains a NUL character or an unpaired UTF-16 surrogate'];
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxInputDepth) return [path, `is nested deeper than ${String(maxInputDepth)} levels`];
    for (const [key, child] of Object.entries(v)) {
      if (isUnsafeText(key))
        return [`${path}/${key}`, 'has a key with a NUL character or an unpaired UTF-16 surrogate'];
      stack.push({ value: child, path: `${path}/${key}`, depth: depth + 1 });
    }
  }
  return undefined;
}

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
