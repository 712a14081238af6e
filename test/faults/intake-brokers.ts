// The brokers the intake fault scenarios run on: for each, how to get a broker for a scenario
// that leaves it up (kill, PostgreSQL restart) and one the suite owns and can restart.
import { PrivateRabbitMq, RabbitMqIntakeBroker, type IntakeBroker } from './intake-broker.js';
import { NatsIntakeBroker, PrivateNats } from './intake-broker-nats.js';
import { SqsIntakeBroker } from './intake-broker-sqs.js';

const machineRabbitUrl = process.env['RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
const machineNatsUrl = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';

export interface IntakeBrokerKind {
  /** Appended to the scenario names: '' for RabbitMQ (the original names), '-nats', '-sqs'. */
  readonly suffix: string;
  /** How the broker-restart scenario describes its broker. */
  readonly privateName: string;
  /** A broker for a scenario that does not restart it (the machine's, or a stand-in of its own). */
  open(service: string): Promise<IntakeBroker>;
  /**
   * A broker the suite owns, not yet running (its address is known): `start` runs it, while
   * Herald starts, so the intake finds no broker at first.
   */
  own(service: string): Promise<{ broker: IntakeBroker; start: () => Promise<void> }>;
}

export const rabbitMqKind: IntakeBrokerKind = {
  suffix: '',
  privateName: 'private RabbitMQ',
  open: (service) => Promise.resolve(new RabbitMqIntakeBroker(machineRabbitUrl, service)),
  async own(service) {
    const node = new PrivateRabbitMq();
    await node.allocate();
    return { broker: new RabbitMqIntakeBroker(node.url, service, node), start: () => node.start() };
  },
};

export const natsKind: IntakeBrokerKind = {
  suffix: '-nats',
  privateName: 'private nats-server',
  open: (service) => Promise.resolve(new NatsIntakeBroker(machineNatsUrl, service)),
  async own(service) {
    const server = new PrivateNats();
    await server.allocate();
    return { broker: new NatsIntakeBroker(server.url, service, server), start: () => server.start() };
  },
};

export const sqsKind: IntakeBrokerKind = {
  suffix: '-sqs',
  privateName: 'SQS stand-in',
  open: (service) => SqsIntakeBroker.create(service),
  // The stand-in listens at once (in this process): nothing left to start.
  async own(service) {
    return { broker: await SqsIntakeBroker.create(service), start: () => Promise.resolve() };
  },
};

export const intakeBrokerKinds = [rabbitMqKind, natsKind, sqsKind];
