// RabbitMQ intake: one quorum queue per service (`herald.intake.<service>`), consumed with
// manual acks and a prefetch, so at most INTAKE_PREFETCH messages are held at once and a slow
// database slows consumption. A message is acked after its commit; a refused one is published
// to `herald.intake.<service>.dead` with its problem in headers (on a confirm channel, acked
// only once the broker confirmed it). amqplib's recovery reconnects after a broker restart and
// runs `setup` again; what was unacked on the lost connection is redelivered by the broker and
// deduplicated by its idempotency key.
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import type { IntakeMessage } from './intake-processor.js';
import {
  countOf,
  problemHeaders,
  reconnectDelayMs,
  type IntakeSource,
  type SourceOptions,
  waitBrieflyFor,
} from './intake-source.js';

export const rabbitMqQueues = {
  intake: (service: string) => `herald.intake.${service}`,
  dead: (service: string) => `herald.intake.${service}.dead`,
};

/**
 * The intake queue's arguments. A publisher that declares the queue itself must use the same
 * (RabbitMQ refuses a declaration that differs). The delivery limit dead-letters (without a
 * problem) a message that was handed out this often without being settled: one that crashes
 * the process every time.
 */
export function rabbitMqQueueArguments(service: string): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': rabbitMqQueues.dead(service),
    'x-delivery-limit': 50,
  };
}

/** Declares a service's intake queue and its dead-letter queue, as Herald uses them. */
export async function declareRabbitMqQueues(channel: Channel, service: string): Promise<void> {
  await channel.assertQueue(rabbitMqQueues.dead(service), {
    durable: true,
    arguments: { 'x-queue-type': 'quorum' },
  });
  await channel.assertQueue(rabbitMqQueues.intake(service), {
    durable: true,
    arguments: rabbitMqQueueArguments(service),
  });
}

function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}

export class RabbitMqSource implements IntakeSource {
  readonly broker = 'rabbitmq' as const;
  private model: Awaited<ReturnType<typeof connectRecovering>> | undefined;
  private readonly stopping = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly url: string,
    private readonly options: SourceOptions,
  ) {}

  async start(): Promise<void> {
    this.model = await connectRecovering(this.url, (model) => this.setup(model));
    this.model.on('disconnect', (error: Error) =>
      this.options.logger.warn({ err: error }, 'intake: RabbitMQ connection lost, reconnecting'),
    );
    this.model.on('error', (error: Error) =>
      this.options.logger.warn({ err: error }, 'intake: RabbitMQ error'),
    );
    await waitBrieflyFor(this.model.waitForConnect(), this.options.logger, 'RabbitMQ');
  }

  private async setup(model: ChannelModel): Promise<void> {
    const channel = await model.createChannel();
    const confirm = await model.createConfirmChannel();
    // Quorum queues apply the prefetch per consumer: share it out over the services' queues.
    await channel.prefetch(Math.max(1, Math.floor(this.options.prefetch / this.options.services.length)));
    for (const service of this.options.services) await declareRabbitMqQueues(channel, service);
    if (this.stopping.signal.aborted) return;
    for (const service of this.options.services) {
      await channel.consume(rabbitMqQueues.intake(service), (delivery) => {
        if (delivery === null) return; // the queue was deleted; the channel closes and recovery re-declares
        const work = this.handle(service, delivery, channel, confirm);
        this.inFlight.add(work);
        void work.finally(() => this.inFlight.delete(work));
      });
    }
  }

  private async handle(
    service: string,
    delivery: ConsumeMessage,
    channel: Channel,
    confirm: ConfirmChannel,
  ): Promise<void> {
    const headers = (delivery.properties.headers ?? {}) as Record<string, unknown>;
    const message: IntakeMessage = {
      service,
      body: delivery.content,
      idempotencyKey: headerText(headers['idempotency-key']),
      brokerMessageId: headerText(delivery.properties.messageId),
      traceparent: headerText(headers['traceparent']),
    };
    const outcome = await this.options.processor.process(message, this.stopping.signal);
    try {
      if (outcome.kind === 'invalid') {
        await publishConfirmed(
          confirm,
          rabbitMqQueues.dead(service),
          delivery,
          problemHeaders(outcome.problem),
        );
      }
      if (outcome.kind === 'retry') channel.nack(delivery, false, true);
      else channel.ack(delivery);
      this.options.count(service, countOf(outcome));
    } catch (error) {
      // The connection went away: the broker hands the message out again, its key dedups it.
      this.options.logger.warn({ err: error, service }, 'intake: could not settle a RabbitMQ message');
    }
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.inFlight]);
    await this.model?.close().catch(() => undefined);
  }
}

function connectRecovering(url: string, setup: (model: ChannelModel) => Promise<void>) {
  return connect(url, {
    recovery: { setup, waitForConnect: false, calculateDelay: (attempt) => reconnectDelayMs(attempt - 1) },
  });
}

function publishConfirmed(
  confirm: ConfirmChannel,
  queue: string,
  delivery: ConsumeMessage,
  problem: Record<string, string>,
): Promise<void> {
  const properties = delivery.properties;
  return new Promise((resolve, reject) => {
    confirm.sendToQueue(
      queue,
      delivery.content,
      {
        persistent: true,
        contentType: properties.contentType as string | undefined,
        messageId: properties.messageId as string | undefined,
        headers: { ...(properties.headers ?? {}), ...problem },
      },
      (error: unknown) =>
        error === null || error === undefined
          ? resolve()
          : reject(new Error('dead letter not confirmed', { cause: error })),
    );
  });
}
