// One contract for every broker: a message's body is a POST /v1/notifications body, checked by
// the same schema and accepted by the same operation (ingest/accept-notifications.ts), so a bad
// request gets the same problem code over HTTP and over each broker. A message is settled only
// after its commit: the source acknowledges `accepted`, moves `invalid` to its dead-letter queue
// with the problem attached, and leaves `retry` in the broker.
//
// Which service sent a message is never read from the message: each service has its own queue
// (or subject), bound to the service by INTAKE_SERVICES, and the broker's own permissions decide
// who may publish there.
import type { Caller } from '../domain/caller.js';
import { ProblemError, problems, type ProblemCode, type ProblemDetail } from '../domain/problems.js';
import { parseTraceparent } from '../domain/trace-context.js';
import { findUnsafeInput } from '../domain/unsafe-input.js';
import { compileBodyValidator } from '../http/body-validator.js';
import { acceptNotifications, type AcceptDeps } from '../ingest/accept-notifications.js';
import { NotificationRequestSchema, type NotificationRequestBody } from '../ingest/notification-request.js';
import type { Logger } from '../observability/logger.js';
import { sleep } from './intake-source.js';

export type Broker = 'rabbitmq' | 'nats' | 'sqs';

export interface IntakeMessage {
  /** The service the message's queue or subject is bound to. */
  service: string;
  body: Uint8Array;
  /** The message's Idempotency-Key header, as a caller would send it over HTTP. */
  idempotencyKey?: string | undefined;
  /**
   * The broker's own id of this message, the same on every redelivery (AMQP message-id, the
   * stream sequence, SQS MessageId): the idempotency key when the caller set none, so a message
   * redelivered after its commit (the process died before its ack) is not accepted twice.
   */
  brokerMessageId?: string | undefined;
  traceparent?: string | undefined;
}

export interface IntakeProblem {
  code: ProblemCode;
  status: number;
  detail: string;
  errors?: ProblemDetail[] | undefined;
}

export type IntakeOutcome =
  | { kind: 'accepted'; id: string; replayed: boolean }
  | { kind: 'invalid'; problem: IntakeProblem }
  /** Not settled (the process is stopping while the database is unreachable): leave it in the broker. */
  | { kind: 'retry' };

export interface IntakeProcessorDeps {
  accept: AcceptDeps;
  /** Services bound to intake queues, by name. */
  services: ReadonlyMap<string, number>;
  maxBytes: number;
  /** Whether an error means the database cannot be reached (then: wait and try again). */
  isUnavailable: (error: unknown) => boolean;
  logger: Logger;
  /** Waits between attempts while the database is unreachable (default 250 ms, doubling, ≤ 5 s). */
  retryDelayMs?: { first: number; max: number };
}

/** Idempotency keys are visible ASCII, as over HTTP; broker ids that are not are hashed by their source. */
const keyPattern = /^[\x21-\x7e]{1,255}$/;

export class IntakeProcessor {
  private readonly validate = compileBodyValidator(NotificationRequestSchema);
  private readonly callers = new Map<string, Caller>();

  constructor(private readonly deps: IntakeProcessorDeps) {
    for (const [name, id] of deps.services) {
      this.callers.set(name, {
        keyId: 0,
        keyPrefix: 'intake',
        serviceId: id,
        serviceName: name,
        permissions: ['send'],
      });
    }
  }

  /**
   * Accepts one message, committed with whatever else is being accepted at the same time (the
   * group commit). While the database is unreachable it waits and tries again; `heartbeat`
   * is called before each wait (a source extends the message's lease there), and `signal`
   * ends the waiting with `retry`.
   */
  async process(message: IntakeMessage, signal: AbortSignal, heartbeat?: () => void): Promise<IntakeOutcome> {
    let request: NotificationRequestBody;
    let caller: Caller;
    let key: string | undefined;
    try {
      caller = this.callerFor(message.service);
      request = this.decode(message.body);
      key = idempotencyKeyOf(message, request);
    } catch (error) {
      return this.invalid(error);
    }
    const trace = parseTraceparent(message.traceparent);
    const delays = this.deps.retryDelayMs ?? { first: 250, max: 5000 };
    for (let delay = delays.first; ; delay = Math.min(delay * 2, delays.max)) {
      try {
        const result = await acceptNotifications(this.deps.accept, caller, request, key, trace);
        return { kind: 'accepted', id: result.id, replayed: result.replayed };
      } catch (error) {
        if (!this.deps.isUnavailable(error)) return this.invalid(error);
        this.deps.logger.warn(
          { err: error, service: message.service },
          'intake: database unavailable, will retry',
        );
      }
      if (signal.aborted) return { kind: 'retry' };
      heartbeat?.();
      await sleep(delay, signal);
    }
  }

  private callerFor(service: string): Caller {
    const caller = this.callers.get(service);
    // A source only consumes bound queues; a message from another is a configuration bug.
    if (caller === undefined) throw new Error(`intake: no service "${service}" is bound`);
    return caller;
  }

  private decode(body: Uint8Array): NotificationRequestBody {
    if (body.byteLength > this.deps.maxBytes) throw new ProblemError('payload_too_large');
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    } catch {
      throw new ProblemError('invalid_json');
    }
    const unsafe = findUnsafeInput(value, 'body');
    if (unsafe !== undefined) {
      throw new ProblemError('validation_failed', `${unsafe[0]} ${unsafe[1]}.`, [
        { field: unsafe[0], message: unsafe[1] },
      ]);
    }
    return this.validate(value);
  }

  private invalid(error: unknown): IntakeOutcome {
    if (error instanceof ProblemError) {
      return {
        kind: 'invalid',
        problem: { code: error.code, status: error.status, detail: error.message, errors: error.errors },
      };
    }
    // A bug, not the message's fault; still settled, so it cannot block the messages behind it.
    this.deps.logger.error({ err: error }, 'intake: unexpected error accepting a message');
    return {
      kind: 'invalid',
      problem: { code: 'internal_error', status: 500, detail: problems.internal_error.title },
    };
  }
}

/**
 * The caller's Idempotency-Key, else the broker's id of the message. A message with neither
 * (and no `id` in its body, which is a key of its own) could become two notifications when
 * it is redelivered after its commit, so it is refused.
 */
function idempotencyKeyOf(message: IntakeMessage, request: NotificationRequestBody): string | undefined {
  const key = message.idempotencyKey ?? message.brokerMessageId;
  if (key === undefined) {
    if (request.id !== undefined) return undefined;
    throw new ProblemError(
      'validation_failed',
      'A message needs an idempotency key: the Idempotency-Key header, the broker message id or an id in the body.',
      [{ field: 'headers/idempotency-key', message: 'required for intake' }],
    );
  }
  if (!keyPattern.test(key)) {
    throw new ProblemError('validation_failed', 'The request does not match the schema.', [
      { field: 'headers/idempotency-key', message: 'must be 1–255 visible ASCII characters' },
    ]);
  }
  return key;
}
