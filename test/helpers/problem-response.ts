// Asserts the shape every Herald error shares: application/problem+json with a registered code
// whose status is the response's status.
import assert from 'node:assert/strict';
import { problems, type ProblemCode } from '../../src/domain/problems.js';

export interface RawResponse {
  status: number;
  contentType: string;
  text: string;
}

export async function readResponse(response: Response): Promise<RawResponse> {
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    text: await response.text(),
  };
}

/** Returns the problem body; `context` names the request in failure messages. */
export function assertProblem(
  response: RawResponse,
  context: string,
  expected?: { status: number; code: ProblemCode },
): { code: ProblemCode; detail?: string; errors?: { field?: string; message: string }[] } {
  const head = `${context} → ${String(response.status)} ${response.text.slice(0, 300)}`;
  assert.match(response.contentType, /^application\/problem\+json/, `content type of ${head}`);
  let body: unknown;
  assert.doesNotThrow(() => (body = JSON.parse(response.text)), `problem body is JSON: ${head}`);
  assert.ok(typeof body === 'object' && body !== null, `problem body is an object: ${head}`);
  const { code, status } = body as { code?: unknown; status?: unknown };
  assert.ok(typeof code === 'string' && Object.hasOwn(problems, code), `registered code: ${head}`);
  const registered = problems[code as ProblemCode];
  assert.equal(registered.status, response.status, `status of code ${code}: ${head}`);
  assert.equal(status, response.status, `body.status: ${head}`);
  if (expected !== undefined) {
    assert.equal(response.status, expected.status, head);
    assert.equal(code, expected.code, head);
  }
  return body as { code: ProblemCode };
}
