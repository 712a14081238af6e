// Herald's errors as the SDK throws them: every problem+json answer becomes a HeraldProblem whose
// `code` is one of the codes the OpenAPI document lists; a request that got no answer in time is
// a HeraldTimeout; no answer at all (after the retries) is the fetch error itself.
import type { components } from './generated/api.js';

export type ProblemBody = components['schemas']['Problem'];
export type ProblemCode = ProblemBody['code'];

export class HeraldProblem extends Error {
  override readonly name = 'HeraldProblem';
  readonly status: number;
  readonly code: ProblemCode;
  readonly title: string;
  readonly detail: string | undefined;
  /** The inputs at fault (validation_failed and the like). */
  readonly errors: { field: string; message: string }[];
  /** Herald's X-Request-Id for this answer: quote it when asking for help. */
  readonly requestId: string | undefined;
  /** Seconds the server asked to wait before retrying (429, 503), when it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(body: ProblemBody, retryAfterSeconds?: number) {
    super(body.detail === undefined ? `${body.code}: ${body.title}` : `${body.code}: ${body.detail}`);
    this.status = body.status;
    this.code = body.code;
    this.title = body.title;
    this.detail = body.detail;
    this.errors = body.errors ?? [];
    this.requestId = body.request_id;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class HeraldTimeout extends Error {
  override readonly name = 'HeraldTimeout';
  constructor(
    readonly method: string,
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(`${method} ${url} got no answer within ${String(timeoutMs)} ms`);
  }
}

/** Anything other than a problem+json body on an error status (a proxy's HTML page, say). */
export class HeraldHttpError extends Error {
  override readonly name = 'HeraldHttpError';
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${String(status)}: ${body.slice(0, 200)}`);
  }
}
