// The SQS source's lease while the database is unreachable, against the SQS stand-in with a
// processor that plays the outage: each heartbeat extends the message's visibility (so a long
// outage does not count towards the redrive policy), and a message released on stop is made
// visible again at once instead of after its timeout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { GetQueueUrlCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { SqsSource, sqsQueues, sqsVisibilityTimeoutSeconds } from '../../src/intake/sqs-source.js';
import type { IntakeOutcome, IntakeProcessor } from '../../src/intake/intake-processor.js';
import type { IntakeCount } from '../../src/intake/intake-source.js';
import { createLogger } from '../../src/observability/logger.js';
import { waitFor } from '../helpers/wait-for.js';
import { SqsStandIn } from '../stand-ins/sqs-stand-in.js';

const sqs = new SqsStandIn();
const saved = { id: process.env['AWS_ACCESS_KEY_ID'], secret: process.env['AWS_SECRET_ACCESS_KEY'] };
let client: SQSClient;

before(async () => {
  await sqs.start();
  process.env['AWS_ACCESS_KEY_ID'] = sqs.credentials.accessKeyId;
  process.env['AWS_SECRET_ACCESS_KEY'] = sqs.credentials.secretAccessKey;
  client = new SQSClient({ endpoint: sqs.endpoint, region: sqs.region, credentials: sqs.credentials });
});
after(async () => {
  client.destroy();
  await sqs.stop();
  restore('AWS_ACCESS_KEY_ID', saved.id);
  restore('AWS_SECRET_ACCESS_KEY', saved.secret);
});

function restore(name: 'AWS_ACCESS_KEY_ID' | 'AWS_SECRET_ACCESS_KEY', value: string | undefined): void {
  if (value === undefined) Reflect.deleteProperty(process.env, name);
  else process.env[name] = value;
}

/** A processor that sees the database down: it beats every 100 ms until stopped. */
function outageProcessor(beats: { at: number }[]): IntakeProcessor {
  return {
    async process(_message: unknown, signal: AbortSignal, heartbeat?: () => void): Promise<IntakeOutcome> {
      while (!signal.aborted) {
        heartbeat?.();
        beats.push({ at: Date.now() });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return { kind: 'retry' };
    },
  } as unknown as IntakeProcessor;
}

test('while the database is down the lease is extended; on stop the message is released at once', async () => {
  const beats: { at: number }[] = [];
  const counted: IntakeCount[] = [];
  const source = new SqsSource(
    sqs.endpoint,
    sqs.region,
    {
      services: ['lease'],
      prefetch: 10,
      processor: outageProcessor(beats),
      logger: createLogger('silent'),
      count: (_service, outcome) => counted.push(outcome),
    },
    200,
  );
  await source.start();
  const queue = sqsQueues.intake('lease');
  const url = (await client.send(new GetQueueUrlCommand({ QueueName: queue }))).QueueUrl ?? '';
  await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{}' }));
  const message = await waitFor('received', () => sqs.messages(queue).find((m) => m.receiveCount === 1));
  const firstLease = message.visibleAt;
  await waitFor('the lease extended', () => {
    const extensions = sqs.calls.filter((c) => c.action === 'ChangeMessageVisibility' && c.status === 200);
    return extensions.length >= 2 && message.visibleAt > firstLease;
  });
  assert.ok(message.visibleAt > Date.now() + (sqsVisibilityTimeoutSeconds - 5) * 1000);

  await source.stop();
  assert.deepEqual(counted, ['released']);
  assert.equal(sqs.messages(queue).length, 1, 'still in the queue');
  assert.ok(message.visibleAt <= Date.now(), 'visible again now, not after the timeout');
  assert.equal(message.receiveCount, 1);
});
