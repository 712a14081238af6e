// A stand-in for Amazon SQS on loopback, speaking the JSON protocol the AWS SDK v3 uses (AWS
// JSON 1.0: POST /, X-Amz-Target: AmazonSQS.<Action>, JSON bodies, errors as
// {"__type":"com.amazonaws.sqs#<Code>","message"} with 400 and x-amzn-query-error). Like AWS it
// checks SigV4: it recomputes the signature with @smithy/signature-v4 from the request it
// received and the secret key it knows (403 otherwise).
//
// It keeps standard queues in memory: CreateQueue, GetQueueUrl, GetQueueAttributes,
// SendMessage(Batch), ReceiveMessage with long polls (held until a message is visible or
// WaitTimeSeconds pass), visibility timeouts, ApproximateReceiveCount, MD5OfBody and
// MD5OfMessageAttributes as SQS computes them, DeleteMessage(Batch), ChangeMessageVisibility,
// PurgeQueue, and the redrive to a dead-letter queue after maxReceiveCount receives. State
// survives stop() and start(port) on the same port: an SQS outage and its end.
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkSigV4 } from './sigv4.js';
import { closeServer } from '../helpers/loopback-server.js';

export interface SqsAttributeValue {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string; // base64 in the JSON protocol
}

export interface SqsStoredMessage {
  messageId: string;
  body: string;
  attributes: Record<string, SqsAttributeValue>;
  sentAt: number;
  receiveCount: number;
  firstReceivedAt?: number;
  /** When it is next visible (0: now). */
  visibleAt: number;
  receiptHandles: Set<string>;
  currentHandle?: string;
}

interface Queue {
  name: string;
  url: string;
  arn: string;
  attributes: Record<string, string>;
  createdAt: number;
  messages: SqsStoredMessage[];
}

class SqsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly queryError = `${code};Sender`,
  ) {
    super(message);
  }
}

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');

/**
 * MD5OfMessageAttributes as SQS computes it: the attributes sorted by name, each as its name,
 * its data type (both length-prefixed, 4 bytes big-endian), a transport byte (1 string or
 * number, 2 binary) and its value (length-prefixed).
 */
export function md5OfMessageAttributes(attributes: Record<string, SqsAttributeValue>): string {
  const parts: Buffer[] = [];
  const prefixed = (value: Buffer): void => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(value.length);
    parts.push(length, value);
  };
  for (const name of Object.keys(attributes).sort()) {
    const value = attributes[name] as SqsAttributeValue;
    prefixed(Buffer.from(name, 'utf8'));
    prefixed(Buffer.from(value.DataType, 'utf8'));
    if (value.BinaryValue !== undefined) {
      parts.push(Buffer.from([2]));
      prefixed(Buffer.from(value.BinaryValue, 'base64'));
    } else {
      parts.push(Buffer.from([1]));
      prefixed(Buffer.from(value.StringValue ?? '', 'utf8'));
    }
  }
  return md5(Buffer.concat(parts));
}

export class SqsStandIn {
  readonly region = 'us-east-1';
  readonly accountId = '000000000000';
  /** Every action asked for, in order, with the status answered. */
  readonly calls: { action: string; status: number }[] = [];
  private readonly queues = new Map<string, Queue>();
  private readonly polls = new Set<{ wake: () => void; res: ServerResponse }>();
  private failingDeletes = 0;
  private server: Server | undefined;
  private tick: NodeJS.Timeout | undefined;
  endpoint = '';
  port = 0;

  constructor(
    readonly credentials: { accessKeyId: string; secretAccessKey: string } = {
      accessKeyId: 'AKIDHERALDSQSTEST',
      secretAccessKey: 'herald-sqs-test-secret-key',
    },
  ) {}

  /** Listens on loopback: a free port the first time, `port` (the same one again) after a stop. */
  async start(port = this.port): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void this.handle(req, Buffer.concat(chunks), res);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.endpoint = `http://127.0.0.1:${String(this.port)}`;
    // Long polls also wake when a message's visibility timeout or delay ends.
    this.tick = setInterval(() => this.wakePolls(), 100);
  }

  /** Stops answering: held long polls and open connections are cut, the queues are kept. */
  async stop(): Promise<void> {
    clearInterval(this.tick);
    for (const poll of this.polls) poll.res.destroy();
    this.polls.clear();
    await closeServer(this.server);
    this.server = undefined;
  }

  /** The messages of a queue, visible or not. */
  messages(name: string): SqsStoredMessage[] {
    return this.queues.get(name)?.messages ?? [];
  }

  queueAttributes(name: string): Record<string, string> | undefined {
    return this.queues.get(name)?.attributes;
  }

  /** Makes every in-flight message of a queue visible at once, as if its timeout had expired. */
  expireVisibility(name: string): number {
    let n = 0;
    for (const m of this.messages(name)) {
      if (m.visibleAt > Date.now()) {
        m.visibleAt = 0;
        n += 1;
      }
    }
    this.wakePolls();
    return n;
  }

  /** The next `count` delete entries fail (InternalError): the consumer's delete is lost. */
  failDeletes(count: number): void {
    this.failingDeletes = count;
  }

  private wakePolls(): void {
    for (const poll of this.polls) poll.wake();
  }

  private async handle(req: IncomingMessage, raw: Buffer, res: ServerResponse): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '');
    const action = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : '';
    try {
      if (req.method !== 'POST' || (req.url ?? '/') !== '/') {
        throw new SqsError('InvalidAction', 'The JSON protocol is POST /.');
      }
      if (!(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.0')) {
        throw new SqsError('UnsupportedOperation', 'Content-Type must be application/x-amz-json-1.0.');
      }
      await this.checkSignature(req, raw);
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        throw new SqsError('SerializationException', 'The body is not JSON.');
      }
      const output = await this.dispatch(action, input, res);
      if (output === undefined) return; // the client went away during a long poll
      this.answer(res, action, 200, output);
    } catch (error) {
      const e =
        error instanceof SqsError
          ? error
          : new SqsError('InternalError', String(error), 500, 'InternalError;Receiver');
      this.answer(
        res,
        action,
        e.status,
        { __type: `com.amazonaws.sqs#${e.code}`, message: e.message },
        {
          'x-amzn-query-error': e.queryError,
        },
      );
    }
  }

  private answer(
    res: ServerResponse,
    action: string,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    this.calls.push({ action, status });
    if (res.destroyed) return;
    res
      .writeHead(status, {
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-requestid': randomUUID(),
        ...headers,
      })
      .end(JSON.stringify(body));
  }

  /** Recomputes the SigV4 signature of what arrived; throws the refusal AWS would answer. */
  private async checkSignature(req: IncomingMessage, body: Buffer): Promise<void> {
    const refusal = await checkSigV4(req, body, {
      credentials: this.credentials,
      region: this.region,
      service: 'sqs',
    });
    if (refusal === 'malformed')
      throw new SqsError('MissingAuthenticationToken', 'Authorization header is missing or malformed.', 403);
    if (refusal === 'unknown_key')
      throw new SqsError(
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
        403,
      );
    if (refusal === 'mismatch')
      throw new SqsError(
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided.',
        403,
      );
  }

  private dispatch(action: string, input: Record<string, unknown>, res: ServerResponse): unknown {
    switch (action) {
      case 'CreateQueue':
        return this.createQueue(input);
      case 'GetQueueUrl': {
        const queue = this.queues.get(text(input['QueueName']));
        if (queue === undefined) throw nonExistent();
        return { QueueUrl: queue.url };
      }
      case 'GetQueueAttributes':
        return { Attributes: this.attributesOf(this.queueOf(input)) };
      case 'SendMessage':
        return this.send(this.queueOf(input), input);
      case 'SendMessageBatch':
        return this.sendBatch(this.queueOf(input), input);
      case 'ReceiveMessage':
        return this.receive(this.queueOf(input), input, res);
      case 'DeleteMessage':
        this.deleteOne(this.queueOf(input), text(input['ReceiptHandle']));
        return {};
      case 'DeleteMessageBatch':
        return this.deleteBatch(this.queueOf(input), input);
      case 'ChangeMessageVisibility':
        this.changeVisibility(this.queueOf(input), input);
        return {};
      case 'PurgeQueue':
        this.queueOf(input).messages.length = 0;
        return {};
      default:
        throw new SqsError('InvalidAction', `The action ${action} is not valid for this endpoint.`);
    }
  }

  private createQueue(input: Record<string, unknown>): unknown {
    const name = text(input['QueueName']);
    if (!/^[A-Za-z0-9_-]{1,80}$/.test(name)) {
      throw new SqsError(
        'InvalidParameterValue',
        'Can only include alphanumeric characters, hyphens, or underscores.',
      );
    }
    const attributes: Record<string, string> = {
      VisibilityTimeout: '30',
      MessageRetentionPeriod: '345600',
      ...(input['Attributes'] as Record<string, string> | undefined),
    };
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      const differs = Object.entries(attributes).some(([k, v]) => existing.attributes[k] !== v);
      if (differs)
        throw new SqsError(
          'QueueAlreadyExists',
          `A queue already exists with the same name and a different value for attribute(s).`,
          400,
          'QueueAlreadyExists;Sender',
        );
      return { QueueUrl: existing.url };
    }
    if (attributes.RedrivePolicy !== undefined) {
      const policy = JSON.parse(attributes.RedrivePolicy) as {
        deadLetterTargetArn?: string;
        maxReceiveCount?: unknown;
      };
      const target = [...this.queues.values()].find((q) => q.arn === policy.deadLetterTargetArn);
      if (target === undefined || !(Number(policy.maxReceiveCount) >= 1)) {
        throw new SqsError('InvalidParameterValue', 'Value for parameter RedrivePolicy is invalid.');
      }
    }
    const queue: Queue = {
      name,
      url: `${this.endpoint}/${this.accountId}/${name}`,
      arn: `arn:aws:sqs:${this.region}:${this.accountId}:${name}`,
      attributes,
      createdAt: Date.now(),
      messages: [],
    };
    this.queues.set(name, queue);
    return { QueueUrl: queue.url };
  }

  private queueOf(input: Record<string, unknown>): Queue {
    const url = text(input['QueueUrl']);
    const queue = this.queues.get(url.slice(url.lastIndexOf('/') + 1));
    if (queue === undefined) throw nonExistent();
    return queue;
  }

  private attributesOf(queue: Queue): Record<string, string> {
    const now = Date.now();
    return {
      ...queue.attributes,
      QueueArn: queue.arn,
      ApproximateNumberOfMessages: String(queue.messages.filter((m) => m.visibleAt <= now).length),
      ApproximateNumberOfMessagesNotVisible: String(queue.messages.filter((m) => m.visibleAt > now).length),
      CreatedTimestamp: String(Math.floor(queue.createdAt / 1000)),
    };
  }

  private enqueue(queue: Queue, entry: Record<string, unknown>): Record<string, string> {
    const body = entry['MessageBody'];
    if (typeof body !== 'string' || body === '') {
      throw new SqsError('MissingParameter', 'The request must contain the parameter MessageBody.');
    }
    const attributes = (entry['MessageAttributes'] ?? {}) as Record<string, SqsAttributeValue>;
    if (Object.keys(attributes).length > 10) {
      throw new SqsError('InvalidParameterValue', 'Number of message attributes exceeds the limit of 10.');
    }
    const message: SqsStoredMessage = {
      messageId: randomUUID(),
      body,
      attributes,
      sentAt: Date.now(),
      receiveCount: 0,
      visibleAt: Date.now() + Number(entry['DelaySeconds'] ?? 0) * 1000,
      receiptHandles: new Set(),
    };
    queue.messages.push(message);
    this.wakePolls();
    return {
      MessageId: message.messageId,
      MD5OfMessageBody: md5(body),
      ...(Object.keys(attributes).length === 0
        ? {}
        : { MD5OfMessageAttributes: md5OfMessageAttributes(attributes) }),
    };
  }

  private send(queue: Queue, input: Record<string, unknown>): unknown {
    return this.enqueue(queue, input);
  }

  private sendBatch(queue: Queue, input: Record<string, unknown>): unknown {
    const entries = (input['Entries'] ?? []) as Record<string, unknown>[];
    const successful: Record<string, string>[] = [];
    const failed: Record<string, unknown>[] = [];
    for (const entry of entries) {
      try {
        successful.push({ Id: String(entry['Id']), ...this.enqueue(queue, entry) });
      } catch (error) {
        const e = error as SqsError;
        failed.push({ Id: String(entry['Id']), SenderFault: true, Code: e.code, Message: e.message });
      }
    }
    return { Successful: successful, Failed: failed };
  }

  /** Takes up to `max` visible messages, moving those received too often to the dead queue. */
  private take(queue: Queue, max: number, visibility: number): SqsStoredMessage[] {
    const now = Date.now();
    const policy =
      queue.attributes.RedrivePolicy === undefined
        ? undefined
        : (JSON.parse(queue.attributes.RedrivePolicy) as {
            deadLetterTargetArn: string;
            maxReceiveCount: unknown;
          });
    const taken: SqsStoredMessage[] = [];
    for (const message of [...queue.messages]) {
      if (taken.length >= max) break;
      if (message.visibleAt > now) continue;
      const dead = [...this.queues.values()].find((q) => q.arn === policy?.deadLetterTargetArn);
      if (
        policy !== undefined &&
        dead !== undefined &&
        message.receiveCount >= Number(policy.maxReceiveCount)
      ) {
        queue.messages.splice(queue.messages.indexOf(message), 1);
        dead.messages.push({ ...message, visibleAt: 0, receiptHandles: new Set() });
        continue;
      }
      message.receiveCount += 1;
      message.firstReceivedAt ??= now;
      message.visibleAt = now + visibility * 1000;
      message.currentHandle = `${message.messageId}#${randomUUID()}`;
      message.receiptHandles.add(message.currentHandle);
      taken.push(message);
    }
    return taken;
  }

  private async receive(queue: Queue, input: Record<string, unknown>, res: ServerResponse): Promise<unknown> {
    const max = Number(input['MaxNumberOfMessages'] ?? 1);
    if (!(max >= 1 && max <= 10)) {
      throw new SqsError('InvalidParameterValue', 'Value for parameter MaxNumberOfMessages is invalid.');
    }
    const wait = Number(input['WaitTimeSeconds'] ?? queue.attributes.ReceiveMessageWaitTimeSeconds ?? 0);
    const visibility = Number(input['VisibilityTimeout'] ?? queue.attributes.VisibilityTimeout ?? 30);
    const deadline = Date.now() + wait * 1000;
    let taken = this.take(queue, max, visibility);
    let closed = false;
    res.once('close', () => (closed = true));
    const gone = (): boolean => closed;
    while (taken.length === 0 && Date.now() < deadline && !gone()) {
      await this.nextWake(res, deadline);
      if (gone() || !this.queues.has(queue.name)) return undefined;
      taken = this.take(queue, max, visibility);
    }
    // A poll cut short (the client aborted it, or the stand-in stopped) answers nothing.
    if (gone()) return undefined;
    return { Messages: taken.map((m) => this.wire(m, input)) };
  }

  /** Resolves when a message may have become visible, the deadline passed or the client left. */
  private nextWake(res: ServerResponse, deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const poll = { res, wake: (): void => done() };
      const timer = setTimeout(() => done(), Math.max(0, deadline - Date.now()));
      const done = (): void => {
        clearTimeout(timer);
        this.polls.delete(poll);
        res.off('close', done);
        resolve();
      };
      this.polls.add(poll);
      res.once('close', done);
    });
  }

  private wire(m: SqsStoredMessage, input: Record<string, unknown>): Record<string, unknown> {
    const systemNames = [
      ...((input['MessageSystemAttributeNames'] ?? []) as string[]),
      ...((input['AttributeNames'] ?? []) as string[]),
    ];
    const all = systemNames.includes('All');
    const system: Record<string, string> = {
      ApproximateReceiveCount: String(m.receiveCount),
      SentTimestamp: String(m.sentAt),
      ApproximateFirstReceiveTimestamp: String(m.firstReceivedAt ?? m.sentAt),
      SenderId: this.credentials.accessKeyId,
    };
    const attributes = Object.fromEntries(
      Object.entries(system).filter(([k]) => all || systemNames.includes(k)),
    );
    const wanted = (input['MessageAttributeNames'] ?? []) as string[];
    const messageAttributes = Object.fromEntries(
      Object.entries(m.attributes).filter(
        ([k]) =>
          wanted.includes('All') ||
          wanted.includes('.*') ||
          wanted.includes(k) ||
          wanted.some((w) => w.endsWith('.*') && k.startsWith(w.slice(0, -1))),
      ),
    );
    const hasAttributes = Object.keys(messageAttributes).length > 0;
    return {
      MessageId: m.messageId,
      ReceiptHandle: m.currentHandle,
      MD5OfBody: md5(m.body),
      Body: m.body,
      ...(Object.keys(attributes).length === 0 ? {} : { Attributes: attributes }),
      ...(hasAttributes
        ? {
            MessageAttributes: messageAttributes,
            MD5OfMessageAttributes: md5OfMessageAttributes(messageAttributes),
          }
        : {}),
    };
  }

  private findByHandle(queue: Queue, handle: string): SqsStoredMessage | undefined {
    return queue.messages.find((m) => m.receiptHandles.has(handle));
  }

  private deleteOne(queue: Queue, handle: string): void {
    if (!/^[0-9a-f-]{36}#/.test(handle)) {
      throw new SqsError(
        'ReceiptHandleIsInvalid',
        `The input receipt handle "${handle}" is not a valid receipt handle.`,
      );
    }
    if (this.failingDeletes > 0) {
      this.failingDeletes -= 1;
      throw new SqsError(
        'InternalError',
        'We encountered an internal error. Please try again.',
        500,
        'InternalError;Receiver',
      );
    }
    const message = this.findByHandle(queue, handle);
    // Deleting a message already deleted succeeds, as on SQS.
    if (message !== undefined) queue.messages.splice(queue.messages.indexOf(message), 1);
  }

  private deleteBatch(queue: Queue, input: Record<string, unknown>): unknown {
    const entries = (input['Entries'] ?? []) as { Id: string; ReceiptHandle: string }[];
    if (entries.length === 0 || entries.length > 10) {
      throw new SqsError('AWS.SimpleQueueService.TooManyEntriesInBatchRequest', 'Between 1 and 10 entries.');
    }
    const successful: { Id: string }[] = [];
    const failed: Record<string, unknown>[] = [];
    for (const entry of entries) {
      try {
        this.deleteOne(queue, entry.ReceiptHandle);
        successful.push({ Id: entry.Id });
      } catch (error) {
        const e = error as SqsError;
        failed.push({ Id: entry.Id, SenderFault: e.status < 500, Code: e.code, Message: e.message });
      }
    }
    return { Successful: successful, Failed: failed };
  }

  private changeVisibility(queue: Queue, input: Record<string, unknown>): void {
    const handle = text(input['ReceiptHandle']);
    const message = this.findByHandle(queue, handle);
    if (message === undefined || message.currentHandle !== handle || message.visibleAt <= Date.now()) {
      throw new SqsError(
        'MessageNotInflight',
        'The message referred to is not in flight.',
        400,
        'AWS.SimpleQueueService.MessageNotInflight;Sender',
      );
    }
    message.visibleAt = Date.now() + Number(input['VisibilityTimeout'] ?? 0) * 1000;
    if (message.visibleAt <= Date.now()) this.wakePolls();
  }
}

function nonExistent(): SqsError {
  return new SqsError(
    'QueueDoesNotExist',
    'The specified queue does not exist.',
    400,
    'AWS.SimpleQueueService.NonExistentQueue;Sender',
  );
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
