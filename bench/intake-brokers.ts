// The brokers bench:intake publishes to, each on its real client: declare the service's
// queue, publish confirmed messages with their own ids, remove what the run made.
import { CreateQueueCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { connect, type ChannelModel } from 'amqplib';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats, type NatsConnection } from '@nats-io/transport-node';
import { natsNames, natsStreamConfig } from '../src/intake/nats-source.js';
import { declareRabbitMqQueues, rabbitMqQueues } from '../src/intake/rabbitmq-source.js';
import { sqsQueues } from '../src/intake/sqs-source.js';
import { SqsStandIn } from '../test/stand-ins/sqs-stand-in.js';

export interface BenchBroker {
  name: string;
  /** How it is set up, printed beside its figures. */
  configuration: string;
  /** The settings `herald intake` needs to consume it. */
  env: Record<string, string>;
  prepare(service: string): Promise<void>;
  /** Publishes `count` copies of `body`, message ids `<prefix>-<n>`, and waits for every confirm. */
  publish(service: string, body: string, count: number, prefix: string): Promise<void>;
  cleanup(service: string): Promise<void>;
  close(): Promise<void>;
}

const rabbitUrl = process.env['RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';

function rabbitMq(): BenchBroker {
  let model: ChannelModel | undefined;
  const channel = async () => {
    model ??= await connect(rabbitUrl);
    return model.createConfirmChannel();
  };
  return {
    name: 'RabbitMQ',
    configuration: `quorum queue, prefetch ${process.env['INTAKE_PREFETCH'] ?? '500'}, manual ack`,
    env: { INTAKE_RABBITMQ_URL: rabbitUrl },
    async prepare(service) {
      const ch = await channel();
      await declareRabbitMqQueues(ch, service);
      await ch.purgeQueue(rabbitMqQueues.intake(service));
      await ch.close();
    },
    async publish(service, body, count, prefix) {
      const ch = await channel();
      const content = Buffer.from(body);
      for (let i = 0; i < count; i += 1) {
        ch.sendToQueue(rabbitMqQueues.intake(service), content, {
          persistent: true,
          messageId: `${prefix}-${String(i)}`,
        });
        if (i % 1000 === 999) await ch.waitForConfirms();
      }
      await ch.waitForConfirms();
      await ch.close();
    },
    async cleanup(service) {
      const ch = await channel();
      await ch.deleteQueue(rabbitMqQueues.intake(service));
      await ch.deleteQueue(rabbitMqQueues.dead(service));
      await ch.close();
    },
    async close() {
      await model?.close();
    },
  };
}

const natsUrl = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';

function nats(): BenchBroker {
  let nc: NatsConnection | undefined;
  const connected = async () => (nc ??= await connectNats({ servers: natsUrl }));
  return {
    name: 'NATS JetStream',
    configuration: 'R1 file stream per service, durable pull consumer, fetch = prefetch',
    env: { INTAKE_NATS_URL: natsUrl },
    async prepare(service) {
      const jsm = await jetstreamManager(await connected());
      await jsm.streams.delete(natsNames.stream(service)).catch(() => undefined);
      await jsm.streams.add(natsStreamConfig(service));
    },
    async publish(service, body, count, prefix) {
      const js = jetstream(await connected());
      const data = new TextEncoder().encode(body);
      // 200 publishes in flight, each awaited for its PubAck.
      let next = 0;
      await Promise.all(
        Array.from({ length: 200 }, async () => {
          while (next < count) {
            const i = next++;
            await js.publish(natsNames.intake(service), data, { msgID: `${prefix}-${String(i)}` });
          }
        }),
      );
    },
    async cleanup(service) {
      const jsm = await jetstreamManager(await connected());
      await jsm.streams.delete(natsNames.stream(service)).catch(() => undefined);
    },
    async close() {
      await nc?.close();
    },
  };
}

/** SQS is the stand-in (test/stand-ins), served from the bench process: no AWS is reached. */
function sqs(): BenchBroker {
  const standIn = new SqsStandIn();
  let client: SQSClient | undefined;
  const started = async () => {
    if (client !== undefined) return client;
    await standIn.start();
    client = new SQSClient({
      endpoint: standIn.endpoint,
      region: standIn.region,
      credentials: standIn.credentials,
    });
    return client;
  };
  const broker: BenchBroker = {
    name: 'SQS (stand-in)',
    configuration: 'the JSON-protocol stand-in in the bench process, long polling, batch deletes',
    env: {},
    async prepare(service) {
      const sqsClient = await started();
      Object.assign(broker.env, {
        INTAKE_SQS_ENDPOINT: standIn.endpoint,
        INTAKE_SQS_REGION: standIn.region,
        AWS_ACCESS_KEY_ID: standIn.credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: standIn.credentials.secretAccessKey,
      });
      await sqsClient.send(new CreateQueueCommand({ QueueName: sqsQueues.intake(service) }));
    },
    async publish(service, body, count, prefix) {
      const sqsClient = await started();
      const { QueueUrl } = await sqsClient.send(
        new CreateQueueCommand({ QueueName: sqsQueues.intake(service) }),
      );
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < count) {
            const first = next;
            next = Math.min(count, next + 10);
            const entries = Array.from({ length: next - first }, (_, i) => ({
              Id: String(i),
              MessageBody: body,
              MessageAttributes: {
                'Idempotency-Key': { DataType: 'String', StringValue: `${prefix}-${String(first + i)}` },
              },
            }));
            await sqsClient.send(new SendMessageBatchCommand({ QueueUrl, Entries: entries }));
          }
        }),
      );
    },
    async cleanup() {
      // The stand-in's queues end with it (close).
    },
    async close() {
      client?.destroy();
      await standIn.stop();
    },
  };
  return broker;
}

export function benchBrokers(): BenchBroker[] {
  return [rabbitMq(), nats(), sqs()];
}
