// SQS behind the intake fault scenarios' IntakeBroker interface, on the SQS stand-in
// (test/stand-ins/sqs-stand-in.ts) running in the scenario's process: every scenario has a
// stand-in of its own, and Herald's intake process is pointed at it (endpoint, region and the
// stand-in's credentials in its environment).
//
// A message is sent with the message attribute Idempotency-Key = its key, which Herald accepts
// it under; a send is counted once SQS answered it. A standard queue has no deduplication: a
// send retried after a failed attempt may have stored the message twice (counted as ambiguous),
// and Herald takes the second copy from its key. Herald's dead letters keep the original's
// attributes, so the key is read back from them. The broker restart stops the stand-in and starts
// it again on the same port with its queues kept, as an SQS endpoint that comes back.
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { sqsMaxReceiveCount, sqsQueues, sqsVisibilityTimeoutSeconds } from '../../src/intake/sqs-source.js';
import { SqsStandIn } from '../stand-ins/sqs-stand-in.js';
import type { DeadLetter, IntakeBroker } from './intake-broker.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SqsIntakeBroker implements IntakeBroker {
  readonly name = 'sqs';
  /** The intake queue's visibility timeout. */
  readonly redeliveryMs = sqsVisibilityTimeoutSeconds * 1000;
  private client: SQSClient | undefined;
  private intakeUrl = '';
  private deadUrl = '';

  constructor(
    readonly sqs: SqsStandIn,
    readonly service: string,
  ) {}

  /** Starts the stand-in (a free port), so its endpoint is known before Herald starts. */
  static async create(service: string): Promise<SqsIntakeBroker> {
    const sqs = new SqsStandIn();
    await sqs.start();
    return new SqsIntakeBroker(sqs, service);
  }

  heraldEnv(): Record<string, string> {
    return {
      INTAKE_SERVICES: this.service,
      INTAKE_SQS_ENDPOINT: this.sqs.endpoint,
      INTAKE_SQS_REGION: this.sqs.region,
      AWS_ACCESS_KEY_ID: this.sqs.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: this.sqs.credentials.secretAccessKey,
    };
  }

  private open(): SQSClient {
    // One attempt per call: the publisher's own loop retries (and counts the retry).
    this.client ??= new SQSClient({
      endpoint: this.sqs.endpoint,
      region: this.sqs.region,
      credentials: this.sqs.credentials,
      maxAttempts: 1,
    });
    return this.client;
  }

  /** Creates the queues as Herald would (the dead queue, then the intake queue redriving to it). */
  async prepare(): Promise<void> {
    const client = this.open();
    this.deadUrl =
      (await client.send(new CreateQueueCommand({ QueueName: sqsQueues.dead(this.service) }))).QueueUrl ?? '';
    const { Attributes } = await client.send(
      new GetQueueAttributesCommand({ QueueUrl: this.deadUrl, AttributeNames: ['QueueArn'] }),
    );
    this.intakeUrl =
      (
        await client.send(
          new CreateQueueCommand({
            QueueName: sqsQueues.intake(this.service),
            Attributes: {
              VisibilityTimeout: String(sqsVisibilityTimeoutSeconds),
              RedrivePolicy: JSON.stringify({
                deadLetterTargetArn: Attributes?.QueueArn,
                maxReceiveCount: sqsMaxReceiveCount,
              }),
            },
          }),
        )
      ).QueueUrl ?? '';
  }

  async publish(key: string, body: string, deadline: number): Promise<boolean> {
    let failedBefore = false;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`message ${key} not sent before the deadline`);
      try {
        await this.open().send(
          new SendMessageCommand({
            QueueUrl: this.intakeUrl,
            MessageBody: body,
            MessageAttributes: { 'Idempotency-Key': { DataType: 'String', StringValue: key } },
          }),
          { abortSignal: AbortSignal.timeout(10_000) },
        );
        return failedBefore;
      } catch {
        failedBefore = true;
        await sleep(200);
      }
    }
  }

  async readDead(): Promise<DeadLetter[]> {
    const client = this.open();
    const letters: DeadLetter[] = [];
    for (;;) {
      const { Messages = [] } = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: this.deadUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          MessageAttributeNames: ['All'],
        }),
      );
      if (Messages.length === 0) return letters;
      for (const m of Messages) {
        const attributes = m.MessageAttributes ?? {};
        letters.push({
          key: attributes['Idempotency-Key']?.StringValue ?? '',
          code: attributes['herald-problem-code']?.StringValue ?? '',
        });
      }
      await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.deadUrl,
          Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
  }

  async ready(): Promise<number> {
    const { Attributes } = await this.open().send(
      new GetQueueAttributesCommand({
        QueueUrl: this.intakeUrl,
        AttributeNames: ['ApproximateNumberOfMessages'],
      }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
  }

  async restartBroker(downMs: number): Promise<{ stopMs: number; startMs: number }> {
    const t0 = Date.now();
    await this.sqs.stop();
    const stopMs = Date.now() - t0;
    await sleep(downMs);
    const t1 = Date.now();
    await this.sqs.start(this.sqs.port);
    return { stopMs, startMs: Date.now() - t1 };
  }

  async close(): Promise<void> {
    this.client?.destroy();
    await this.sqs.stop();
  }
}
