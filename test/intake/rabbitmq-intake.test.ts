// RabbitMQ intake against the machine's RabbitMQ: published requests become notifications and
// are delivered; a redelivered message (same message id) is accepted once; every bad request is
// dead-lettered with the problem code HTTP answers the same body with, and does not block the
// messages behind it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';
import {
  badBodies,
  httpProblemCode,
  expectDelivered,
  titlesOf,
  uniqueService,
  validRequest,
} from '../helpers/intake-cases.js';
import { rabbitMqQueueArguments, rabbitMqQueues } from '../../src/intake/rabbitmq-source.js';

const rabbitUrl = process.env['RABBITMQ_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
const service = uniqueService('rmq');
let db: TestDatabase;
let h: TestHerald;
let broker: ChannelModel;
let channel: ConfirmChannel;

before(async () => {
  db = await createTestDatabase();
  broker = await connect(rabbitUrl);
  channel = await broker.createConfirmChannel();
  h = await startTestHerald(db, {
    service,
    roles: ['api', 'worker', 'intake'],
    env: { INTAKE_SERVICES: service, INTAKE_RABBITMQ_URL: rabbitUrl, INTAKE_PREFETCH: '50' },
  });
});
after(async () => {
  await h.stop();
  await channel.deleteQueue(rabbitMqQueues.intake(service));
  await channel.deleteQueue(rabbitMqQueues.dead(service));
  await broker.close();
  await db.drop();
});

async function publish(
  body: string,
  options: { messageId?: string; headers?: Record<string, string> },
): Promise<void> {
  channel.sendToQueue(rabbitMqQueues.intake(service), Buffer.from(body), { persistent: true, ...options });
  await channel.waitForConfirms();
}

test('the queues Herald declared are quorum queues dead-lettering to the service dead queue', async () => {
  // Declaring with the same arguments succeeds only if they match what Herald declared.
  const reply = await channel.assertQueue(rabbitMqQueues.intake(service), {
    durable: true,
    arguments: rabbitMqQueueArguments(service),
  });
  assert.equal(reply.queue, rabbitMqQueues.intake(service));
});

test('published requests are accepted once each and delivered; bad ones are dead-lettered with the HTTP problem code', async () => {
  const expected = new Map<string, string>();
  for (const bad of badBodies) expected.set(bad.name, await httpProblemCode(h, bad.body));
  // Bad messages between good ones: the good ones behind them are not held up.
  for (let i = 0; i < 6; i += 1) {
    await publish(JSON.stringify(validRequest(`user-${String(i)}`, `good ${String(i)}`)), {
      messageId: `m-${String(i)}`,
    });
    const bad = badBodies[i];
    if (bad !== undefined)
      await publish(bad.body, { messageId: `bad-${String(i)}`, headers: { 'x-case': bad.name } });
  }
  // The same message id again (a publisher's retry, or a redelivery after a crash): one notification.
  await publish(JSON.stringify(validRequest('user-0', 'good 0')), { messageId: 'm-0' });
  // An explicit Idempotency-Key header wins over the message id.
  await publish(JSON.stringify(validRequest('user-9', 'keyed')), {
    messageId: 'k-1',
    headers: { 'idempotency-key': 'order-9' },
  });
  await publish(JSON.stringify(validRequest('user-9', 'keyed')), {
    messageId: 'k-2',
    headers: { 'idempotency-key': 'order-9' },
  });

  await expectDelivered(h, service, ['good 0', 'good 1', 'good 2', 'good 3', 'good 4', 'good 5', 'keyed']);

  const dead = new Map<string, { code: string; status: string; detail: string }>();
  await waitFor('every bad message dead-lettered', async () => {
    const message = await channel.get(rabbitMqQueues.dead(service), { noAck: false });
    if (message !== false) {
      const headers = message.properties.headers as Record<string, unknown>;
      dead.set(String(headers['x-case']), {
        code: String(headers['herald-problem-code']),
        status: String(headers['herald-problem-status']),
        detail: String(headers['herald-problem-detail']),
      });
      channel.ack(message);
    }
    return dead.size === badBodies.length;
  });
  for (const bad of badBodies) {
    assert.equal(dead.get(bad.name)?.code, expected.get(bad.name), `${bad.name}: same code as over HTTP`);
    assert.match(dead.get(bad.name)?.status ?? '', /^4\d\d$/);
  }
  const metrics = await (await fetch(`${h.herald.apiUrl ?? ''}/metrics`)).text();
  assert.match(
    metrics,
    new RegExp(
      `herald_intake_messages_total\\{broker="rabbitmq",service="${service}",outcome="dead_lettered"\\} ${String(badBodies.length)}`,
    ),
  );
});

test('a message with no key at all is refused, not accepted unprotected', async () => {
  await publish(JSON.stringify(validRequest('user-x', 'unkeyed')), {});
  const message = await waitFor('the unkeyed message dead-lettered', async () => {
    const m = await channel.get(rabbitMqQueues.dead(service), { noAck: false });
    return m === false ? undefined : m;
  });
  channel.ack(message);
  const headers = message.properties.headers as Record<string, unknown>;
  assert.equal(headers['herald-problem-code'], 'validation_failed');
  assert.ok(!(await titlesOf(h, service)).includes('unkeyed'));
});
