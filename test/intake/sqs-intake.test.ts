// SQS intake against the SQS stand-in (test/stand-ins/sqs-stand-in.ts, SQS's JSON protocol with
// SigV4 checked), the AWS SDK publishing and Herald consuming: published requests become
// notifications and are delivered; a message received again after its delete was lost (same
// MessageId) is accepted once; every bad request is dead-lettered with the problem code HTTP
// answers the same body with; an SQS outage ends and intake resumes by itself.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  DeleteMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
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
import { sqsMaxReceiveCount, sqsQueues } from '../../src/intake/sqs-source.js';
import { md5OfMessageAttributes, SqsStandIn } from '../stand-ins/sqs-stand-in.js';

const service = uniqueService('sqs');
const sqs = new SqsStandIn();
let db: TestDatabase;
let h: TestHerald;
let client: SQSClient;
let intakeUrl: string;
let deadUrl: string;
const savedEnv = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };

before(async () => {
  await sqs.start();
  // Herald reads credentials from the SDK's default chain: here, the environment.
  process.env['AWS_ACCESS_KEY_ID'] = sqs.credentials.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = sqs.credentials.secretAccessKey;
  db = await createTestDatabase();
  client = new SQSClient({ endpoint: sqs.endpoint, region: sqs.region, credentials: sqs.credentials });
  h = await startTestHerald(db, {
    service,
    roles: ['api', 'worker', 'intake'],
    env: {
      INTAKE_SERVICES: service,
      INTAKE_SQS_ENDPOINT: sqs.endpoint,
      INTAKE_SQS_REGION: sqs.region,
      INTAKE_PREFETCH: '50',
    },
  });
  intakeUrl =
    (await client.send(new GetQueueUrlCommand({ QueueName: sqsQueues.intake(service) }))).QueueUrl ?? '';
  deadUrl =
    (await client.send(new GetQueueUrlCommand({ QueueName: sqsQueues.dead(service) }))).QueueUrl ?? '';
});
after(async () => {
  await h.stop();
  client.destroy();
  await sqs.stop();
  await db.drop();
  if (savedEnv.id === undefined) delete process.env['AWS_ACCESS_KEY_ID'];
  else process.env['AWS_ACCESS_KEY_ID'] = savedEnv.id;
  if (savedEnv.secret === undefined) delete process.env['AWS_SECRET_ACCESS_KEY'];
  else process.env['AWS_SECRET_ACCESS_KEY'] = savedEnv.secret;
});

async function publish(body: string, attributes: Record<string, string> = {}): Promise<string> {
  const answer = await client.send(
    new SendMessageCommand({
      QueueUrl: intakeUrl,
      MessageBody: body,
      MessageAttributes: Object.fromEntries(
        Object.entries(attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
      ),
    }),
  );
  return answer.MessageId ?? '';
}

/** Reads (and deletes) what the dead queue holds now. */
async function drainDead(): Promise<Message[]> {
  const { Messages = [] } = await client.send(
    new ReceiveMessageCommand({
      QueueUrl: deadUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      MessageAttributeNames: ['All'],
    }),
  );
  for (const m of Messages) {
    await client.send(new DeleteMessageCommand({ QueueUrl: deadUrl, ReceiptHandle: m.ReceiptHandle }));
  }
  return Messages;
}

async function metric(outcome: string): Promise<number> {
  const text = await (await fetch(`${h.herald.apiUrl ?? ''}/metrics`)).text();
  const line = new RegExp(
    `herald_intake_messages_total\\{broker="sqs",service="${service}",outcome="${outcome}"\\} (\\d+)`,
  ).exec(text);
  return Number(line?.[1] ?? 0);
}

test('Herald created the intake queue with a redrive policy to the dead queue', async () => {
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: intakeUrl, AttributeNames: ['All'] }),
  );
  const dead = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: deadUrl, AttributeNames: ['QueueArn'] }),
  );
  const policy = JSON.parse(Attributes?.RedrivePolicy ?? '{}') as Record<string, unknown>;
  assert.equal(policy['deadLetterTargetArn'], dead.Attributes?.QueueArn);
  assert.equal(Number(policy['maxReceiveCount']), sqsMaxReceiveCount);
});

test('published requests are accepted once each and delivered; bad ones are dead-lettered with the HTTP problem code', async () => {
  const expected = new Map<string, string>();
  for (const bad of badBodies) expected.set(bad.name, await httpProblemCode(h, bad.body));
  for (let i = 0; i < 6; i += 1) {
    await publish(JSON.stringify(validRequest(`user-${String(i)}`, `good ${String(i)}`)), {
      traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`,
    });
    const bad = badBodies[i];
    if (bad !== undefined) await publish(bad.body, { 'x-case': bad.name });
  }
  // An explicit Idempotency-Key attribute wins over the MessageId: two sends, one notification.
  await publish(JSON.stringify(validRequest('user-9', 'keyed')), { 'Idempotency-Key': 'order-9' });
  await publish(JSON.stringify(validRequest('user-9', 'keyed')), { 'Idempotency-Key': 'order-9' });

  await expectDelivered(h, service, ['good 0', 'good 1', 'good 2', 'good 3', 'good 4', 'good 5', 'keyed']);

  const dead = new Map<string, Record<string, string>>();
  await waitFor('every bad message dead-lettered', async () => {
    for (const m of await drainDead()) {
      const attrs = Object.fromEntries(
        Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? '']),
      );
      dead.set(attrs['x-case'] ?? '?', attrs);
    }
    return dead.size === badBodies.length;
  });
  for (const bad of badBodies) {
    assert.equal(
      dead.get(bad.name)?.['herald-problem-code'],
      expected.get(bad.name),
      `${bad.name}: same code as over HTTP`,
    );
    assert.match(dead.get(bad.name)?.['herald-problem-status'] ?? '', /^4\d\d$/);
  }
  await waitFor('the intake queue empty', () => sqs.messages(sqsQueues.intake(service)).length === 0);
  assert.equal(await metric('dead_lettered'), badBodies.length);
});

test('a message received again after its delete was lost is accepted once', async () => {
  const replayedBefore = await metric('replayed');
  sqs.failDeletes(1);
  const messageId = await publish(JSON.stringify(validRequest('user-r', 'redelivered')));
  await waitFor('accepted', async () => (await titlesOf(h, service)).includes('redelivered'));
  // The delete failed: the message is in flight until its visibility timeout; end it now.
  await waitFor('in flight', () =>
    sqs.messages(sqsQueues.intake(service)).some((m) => m.messageId === messageId),
  );
  await waitFor('its visibility expired', () => sqs.expireVisibility(sqsQueues.intake(service)) > 0);
  await waitFor('received again and deleted', () => sqs.messages(sqsQueues.intake(service)).length === 0);
  assert.equal((await titlesOf(h, service)).filter((t) => t === 'redelivered').length, 1);
  assert.equal(await metric('replayed'), replayedBefore + 1);
});

test('an SQS outage ends and intake resumes by itself', async () => {
  await sqs.stop();
  await new Promise((resolve) => setTimeout(resolve, 1500)); // Herald's polls fail and back off
  await sqs.start(); // the same port, the same queues
  await publish(JSON.stringify(validRequest('user-o', 'after outage')));
  await waitFor('accepted after the outage', async () =>
    (await titlesOf(h, service)).includes('after outage'),
  );
  await waitFor('deleted', () => sqs.messages(sqsQueues.intake(service)).length === 0);
});

test('the stand-in: SigV4 checked, MD5 of attributes as SQS computes it, long polls, redrive', async () => {
  const forged = new SQSClient({
    endpoint: sqs.endpoint,
    region: sqs.region,
    credentials: { accessKeyId: sqs.credentials.accessKeyId, secretAccessKey: 'not-the-secret' },
  });
  await assert.rejects(forged.send(new GetQueueUrlCommand({ QueueName: sqsQueues.intake(service) })), {
    name: 'SignatureDoesNotMatch',
  });
  forged.destroy();
  // Known answers of SQS's attribute digest.
  assert.equal(
    md5OfMessageAttributes({ timestamp: { DataType: 'Number', StringValue: '1493147359900' } }),
    '235c5c510d26fb653d073faed50ae77c',
  );
  assert.equal(
    md5OfMessageAttributes({
      ordinal: { DataType: 'Number', StringValue: '1' },
      category: { DataType: 'String', StringValue: 'test' },
    }),
    'd21ae90c49061e927f57df5f5d72be1f',
  );
  const dlq = (await client.send(new CreateQueueCommand({ QueueName: `${service}-t-dead` }))).QueueUrl ?? '';
  const dlqArn = `arn:aws:sqs:${sqs.region}:${sqs.accountId}:${service}-t-dead`;
  const queue =
    (
      await client.send(
        new CreateQueueCommand({
          QueueName: `${service}-t`,
          Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }) },
        }),
      )
    ).QueueUrl ?? '';
  // A long poll is held until a message arrives.
  const started = Date.now();
  const polled = client.send(
    new ReceiveMessageCommand({ QueueUrl: queue, WaitTimeSeconds: 5, VisibilityTimeout: 0 }),
  );
  setTimeout(() => void client.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'x' })), 300);
  const first = await polled;
  const firstId = first.Messages?.[0]?.MessageId;
  assert.equal(first.Messages?.length, 1);
  assert.ok(Date.now() - started >= 250);
  // Received twice without a delete: the third receive finds it in the dead-letter queue.
  const receive = (url: string) =>
    client.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        VisibilityTimeout: 0,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
  const second = await receive(queue);
  assert.equal(second.Messages?.[0]?.Attributes?.ApproximateReceiveCount, '2');
  assert.equal((await receive(queue)).Messages?.length ?? 0, 0);
  assert.equal((await receive(dlq)).Messages?.[0]?.MessageId, firstId);
});
