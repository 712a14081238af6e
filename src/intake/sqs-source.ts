// Amazon SQS intake: one standard queue per service (`herald-intake-<service>`), read with long
// polls by a few concurrent receive loops that together hold at most INTAKE_PREFETCH messages,
// so a slow database slows receiving. A message is deleted after its commit; a refused one is
// sent to `herald-intake-<service>-dead` with its problem in message attributes, then deleted.
// While the database is unreachable the message's visibility timeout is extended, so a long
// outage does not count against the redrive policy. A message whose delete was lost (or which
// was redelivered for any reason) keeps its MessageId, the idempotency key when the publisher
// set none, so it is accepted once.
//
// Queues that do not exist are created (the dead queue first, then the intake queue with a
// redrive policy to it); queues that exist are used as they are, with their own attributes.
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueDoesNotExist,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import type { IntakeMessage } from './intake-processor.js';
import {
  countOf,
  problemHeaders,
  reconnectDelayMs,
  type IntakeSource,
  type SourceOptions,
  sleep,
  waitBrieflyFor,
} from './intake-source.js';

export const sqsQueues = {
  intake: (service: string) => `herald-intake-${service}`,
  dead: (service: string) => `herald-intake-${service}-dead`,
};

/**
 * How many times a message may be received without being deleted before SQS moves it to the
 * dead queue (without a problem attached): the guard against a message that crashes the
 * process every time. Set on queues Herald creates.
 */
export const sqsMaxReceiveCount = 50;

/** Seconds a received message stays hidden from other receivers; extended while it waits. */
export const sqsVisibilityTimeoutSeconds = 60;

/** Longest long poll SQS allows. */
const waitTimeSeconds = 20;
/** Most messages one ReceiveMessage (and one DeleteMessageBatch) handles. */
const batchSize = 10;
/** SQS carries at most 10 message attributes. */
const maxAttributes = 10;

interface Queues {
  intakeUrl: string;
  deadUrl: string;
}

interface Held {
  service: string;
  queues: Queues;
  message: Message;
}

export class SqsSource implements IntakeSource {
  readonly broker = 'sqs' as const;
  private readonly client: SQSClient;
  private readonly stopping = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** Messages received and not yet settled, plus those a pending receive may bring. */
  private held = 0;
  private readonly creditWaiters: (() => void)[] = [];
  private readonly loopsPerService: number;

  constructor(
    endpoint: string,
    region: string,
    private readonly options: SourceOptions,
    /** Extend a waiting message's visibility at most this often (a test shortens it). */
    private readonly heartbeatEveryMs = 15_000,
  ) {
    const services = options.services.length;
    this.loopsPerService = Math.min(8, Math.max(1, Math.ceil(options.prefetch / batchSize / services)));
    const sockets = this.loopsPerService * services + 16;
    this.client = new SQSClient({
      endpoint,
      region,
      // Long polls last 20 s; a request that has not answered in 30 s is given up and retried.
      requestHandler: {
        connectionTimeout: 5000,
        requestTimeout: (waitTimeSeconds + 10) * 1000,
        httpAgent: { keepAlive: true, maxSockets: sockets },
        httpsAgent: { keepAlive: true, maxSockets: sockets },
      },
      // The SDK's standard retries (3 attempts, throttling aware) for every call; a receive loop
      // that still fails backs off on its own and polls again.
    });
  }

  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (const service of this.options.services) {
      let resolveReady!: () => void;
      ready.push(new Promise<void>((resolve) => (resolveReady = resolve)));
      this.loops.push(this.runService(service, resolveReady));
    }
    await waitBrieflyFor(Promise.all(ready), this.options.logger, 'SQS');
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const wake of this.creditWaiters.splice(0)) wake();
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.inFlight]);
    this.client.destroy();
  }

  private isStopping(): boolean {
    return this.stopping.signal.aborted;
  }

  /** Resolves (or creates) the service's queues, then runs its receive loops until stop. */
  private async runService(service: string, ready: () => void): Promise<void> {
    const signal = this.stopping.signal;
    for (let attempt = 0; !signal.aborted; attempt += 1) {
      try {
        const queues = await this.resolveQueues(service);
        ready();
        const loops = Array.from({ length: this.loopsPerService }, () => this.receiveLoop(service, queues));
        const ended = await Promise.all(loops);
        // A loop ends early only when the queue disappeared: resolve (create) it again.
        if (ended.every((reason) => reason === 'stopped')) return;
        attempt = -1;
      } catch (error) {
        if (this.isStopping()) return;
        this.options.logger.warn({ err: error, service }, 'intake: SQS queues not reachable, retrying');
        await sleep(reconnectDelayMs(attempt), signal);
      }
    }
  }

  private async resolveQueues(service: string): Promise<Queues> {
    const deadUrl = await this.queueUrl(sqsQueues.dead(service), () => ({}));
    const intakeUrl = await this.queueUrl(sqsQueues.intake(service), async () => {
      const { Attributes } = await this.client.send(
        new GetQueueAttributesCommand({ QueueUrl: deadUrl, AttributeNames: ['QueueArn'] }),
        { abortSignal: this.stopping.signal },
      );
      const arn = Attributes?.QueueArn;
      if (arn === undefined) throw new Error(`SQS did not tell the ARN of ${deadUrl}`);
      return {
        VisibilityTimeout: String(sqsVisibilityTimeoutSeconds),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: sqsMaxReceiveCount }),
      };
    });
    return { intakeUrl, deadUrl };
  }

  /** The queue's URL; creates the queue with `attributes` when it does not exist. */
  private async queueUrl(
    name: string,
    attributes: () => Record<string, string> | Promise<Record<string, string>>,
  ): Promise<string> {
    const abortSignal = this.stopping.signal;
    try {
      const { QueueUrl } = await this.client.send(new GetQueueUrlCommand({ QueueName: name }), {
        abortSignal,
      });
      if (QueueUrl !== undefined) return QueueUrl;
    } catch (error) {
      if (!(error instanceof QueueDoesNotExist)) throw error;
    }
    const { QueueUrl } = await this.client.send(
      new CreateQueueCommand({ QueueName: name, Attributes: await attributes() }),
      { abortSignal },
    );
    if (QueueUrl === undefined) throw new Error(`SQS created ${name} without telling its URL`);
    this.options.logger.info({ queue: name }, 'intake: created SQS queue');
    return QueueUrl;
  }

  /** Receives while credit lasts; returns why it ended. */
  private async receiveLoop(service: string, queues: Queues): Promise<'stopped' | 'queue gone'> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      const want = await this.takeCredit();
      if (want === 0) break;
      let messages: Message[];
      try {
        const answer = await this.client.send(
          new ReceiveMessageCommand({
            QueueUrl: queues.intakeUrl,
            MaxNumberOfMessages: want,
            WaitTimeSeconds: waitTimeSeconds,
            VisibilityTimeout: sqsVisibilityTimeoutSeconds,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
          }),
          { abortSignal: signal },
        );
        messages = answer.Messages ?? [];
        failures = 0;
      } catch (error) {
        this.releaseCredit(want);
        if (this.isStopping()) break;
        if (error instanceof QueueDoesNotExist) return 'queue gone';
        this.options.logger.warn({ err: error, service }, 'intake: SQS receive failed, backing off');
        await sleep(reconnectDelayMs(failures), signal);
        failures += 1;
        continue;
      }
      this.releaseCredit(want - messages.length);
      for (const message of messages) {
        const work = this.handle({ service, queues, message });
        this.inFlight.add(work);
        void work.finally(() => this.inFlight.delete(work));
      }
    }
    return 'stopped';
  }

  /** Waits until some of the prefetch is free and reserves up to one batch of it (0: stopping). */
  private async takeCredit(): Promise<number> {
    while (!this.stopping.signal.aborted) {
      const free = this.options.prefetch - this.held;
      if (free > 0) {
        const want = Math.min(batchSize, free);
        this.held += want;
        return want;
      }
      await new Promise<void>((resolve) => this.creditWaiters.push(resolve));
    }
    return 0;
  }

  private releaseCredit(count: number): void {
    if (count <= 0) return;
    this.held -= count;
    for (const wake of this.creditWaiters.splice(0)) wake();
  }

  private async handle(held: Held): Promise<void> {
    const { service, message } = held;
    try {
      const attributes = message.MessageAttributes ?? {};
      const intake: IntakeMessage = {
        service,
        body: Buffer.from(message.Body ?? '', 'utf8'),
        idempotencyKey: attributeText(attributes, 'idempotency-key'),
        brokerMessageId: message.MessageId,
        traceparent: attributeText(attributes, 'traceparent'),
      };
      const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
      if (receiveCount > 1) {
        this.options.logger.debug(
          { service, messageId: message.MessageId, receiveCount },
          'intake: SQS redelivery',
        );
      }
      let lastBeat = Date.now();
      const heartbeat = (): void => {
        if (Date.now() - lastBeat < this.heartbeatEveryMs) return;
        lastBeat = Date.now();
        void this.setVisibility(held, sqsVisibilityTimeoutSeconds);
      };
      const outcome = await this.options.processor.process(intake, this.stopping.signal, heartbeat);
      if (outcome.kind === 'retry') {
        // Stopping while the database is down: hand it back now rather than after the timeout.
        await this.setVisibility(held, 0);
      } else {
        if (outcome.kind === 'invalid') await this.deadLetter(held, problemHeaders(outcome.problem));
        await this.delete(held);
      }
      this.options.count(service, countOf(outcome));
    } catch (error) {
      // SQS went away: the message becomes visible again after its timeout; its key dedups it.
      this.options.logger.warn({ err: error, service }, 'intake: could not settle an SQS message');
    } finally {
      this.releaseCredit(1);
    }
  }

  private async setVisibility(held: Held, seconds: number): Promise<void> {
    try {
      await this.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: held.queues.intakeUrl,
          ReceiptHandle: held.message.ReceiptHandle,
          VisibilityTimeout: seconds,
        }),
      );
    } catch (error) {
      this.options.logger.warn(
        { err: error, service: held.service },
        'intake: could not change SQS visibility',
      );
    }
  }

  private readonly pendingDeletes = new Map<string, { held: Held; done: (error?: unknown) => void }[]>();

  /** Deletes after the commit, batched with the other messages of the queue settled meanwhile. */
  private delete(held: Held): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const url = held.queues.intakeUrl;
      let pending = this.pendingDeletes.get(url);
      if (pending === undefined) {
        pending = [];
        this.pendingDeletes.set(url, pending);
        setImmediate(() => void this.flushDeletes(url));
      }
      pending.push({ held, done: (error) => (error === undefined ? resolve() : reject(toError(error))) });
    });
  }

  private async flushDeletes(url: string): Promise<void> {
    const pending = this.pendingDeletes.get(url) ?? [];
    this.pendingDeletes.delete(url);
    for (let start = 0; start < pending.length; start += batchSize) {
      const chunk = pending.slice(start, start + batchSize);
      try {
        const answer = await this.client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: url,
            Entries: chunk.map((p, i) => ({ Id: String(i), ReceiptHandle: p.held.message.ReceiptHandle })),
          }),
        );
        const failed = new Map((answer.Failed ?? []).map((f) => [f.Id, f]));
        chunk.forEach((p, i) => {
          const failure = failed.get(String(i));
          p.done(failure === undefined ? undefined : new Error(`delete failed: ${failure.Code ?? '?'}`));
        });
      } catch (error) {
        for (const p of chunk) p.done(error);
      }
    }
  }

  /** Sends the message to the dead queue with its problem (and what attributes fit) attached. */
  private async deadLetter(held: Held, problem: Record<string, string>): Promise<void> {
    const attributes: Record<string, MessageAttributeValue> = {};
    for (const [name, value] of Object.entries(problem)) {
      if (value !== '') attributes[name] = { DataType: 'String', StringValue: value };
    }
    if (held.message.MessageId !== undefined) {
      attributes['herald-message-id'] = { DataType: 'String', StringValue: held.message.MessageId };
    }
    for (const [name, value] of Object.entries(held.message.MessageAttributes ?? {})) {
      if (Object.keys(attributes).length >= maxAttributes) break;
      attributes[name] ??= value;
    }
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: held.queues.deadUrl,
        MessageBody: held.message.Body === undefined || held.message.Body === '' ? ' ' : held.message.Body,
        MessageAttributes: attributes,
      }),
    );
  }
}

/** A String attribute's value, its name matched without regard to case. */
function attributeText(attributes: Record<string, MessageAttributeValue>, name: string): string | undefined {
  for (const [key, value] of Object.entries(attributes)) {
    if (key.toLowerCase() === name && typeof value.StringValue === 'string') return value.StringValue;
  }
  return undefined;
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
