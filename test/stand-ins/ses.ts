// A stand-in for Amazon SES v2 SendEmail (POST /v2/email/outbound-emails) on loopback. Like
// AWS it checks SigV4: it recomputes the signature with @smithy/signature-v4 from the request it
// received and the secret key it knows (403 otherwise). It validates the JSON body, parses the
// raw MIME message with mailparser, answers 200 {MessageId}, and can be told to answer any
// documented SendEmail error in AWS's restJson1 error shape, or to hang. It also posts SES event
// notifications (Delivery, Bounce, Complaint) wrapped in SNS envelopes to a callback URL.
import { bodyServer, closeServer, listenOnLoopback } from '../helpers/loopback-server.js';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { checkSigV4 } from './sigv4.js';
import { simpleParser, type ParsedMail } from 'mailparser';

/** The SendEmail errors AWS documents, with the status each comes with. */
export const sesErrors = {
  MessageRejected: 400,
  BadRequestException: 400,
  MailFromDomainNotVerifiedException: 400,
  AccountSuspendedException: 400,
  SendingPausedException: 400,
  LimitExceededException: 400,
  NotFoundException: 404,
  TooManyRequestsException: 429,
  InternalServiceErrorException: 500,
} as const;
export type SesErrorName = keyof typeof sesErrors;

export type SesScripted =
  | {
      error: SesErrorName | (string & {});
      status?: number;
      message?: string;
      headers?: Record<string, string>;
    }
  | 'hang';

export interface SesAccepted {
  messageId: string;
  /** The JSON body as sent. */
  body: Record<string, unknown>;
  raw: Buffer;
  parsed: ParsedMail;
  recipients: string[];
  at: number;
}

export interface SesEvent {
  type: 'Delivery' | 'Bounce' | 'Complaint' | 'Reject' | 'DeliveryDelay';
  messageId: string;
  recipient: string;
  bounceType?: 'Permanent' | 'Transient' | 'Undetermined';
  bounceSubType?: string;
}

export class SesStandIn {
  readonly accepted: SesAccepted[] = [];
  /** Every answer given, in order (status and error name), including signature refusals. */
  readonly answered: { status: number; error: string | null; at: number }[] = [];
  readonly region = 'eu-west-1';
  private readonly scripted = new Map<string, SesScripted[]>();
  private readonly hung = new Set<ServerResponse>();
  private server: Server | undefined;
  endpoint = '';

  constructor(
    private readonly credentials: { accessKeyId: string; secretAccessKey: string } = {
      accessKeyId: 'AKIDHERALDTEST',
      secretAccessKey: 'herald-test-secret-key',
    },
  ) {}

  /** Answers the next sends to `address` with these, in order (then 200). */
  script(address: string, answers: SesScripted[]): void {
    this.scripted.set(address.toLowerCase(), [...answers]);
  }

  async start(): Promise<void> {
    const server = bodyServer((req, res, body) => {
      void this.handle(req, body, res).catch((error: unknown) => {
        this.fail(res, 500, 'InternalFailure', String(error));
      });
    });
    this.server = server;
    this.endpoint = await listenOnLoopback(server);
  }

  async stop(): Promise<void> {
    for (const res of this.hung) res.destroy();
    await closeServer(this.server);
  }

  /** AWS restJson1 errors: status, x-amzn-ErrorType (what the SDK names the exception by), {message}. */
  private fail(
    res: ServerResponse,
    status: number,
    error: string,
    message: string,
    headers: Record<string, string> = {},
  ): void {
    this.answered.push({ status, error, at: Date.now() });
    res
      .writeHead(status, {
        'content-type': 'application/json',
        'x-amzn-requestid': randomUUID(),
        'x-amzn-errortype': `${error}:http://internal.amazon.com/coral/com.amazonaws.sesv2/`,
        ...headers,
      })
      .end(JSON.stringify({ message }));
  }

  /** Recomputes the SigV4 signature of what arrived; returns the refusal, or null when it matches. */
  private async checkSignature(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ error: string; message: string } | null> {
    const refusal = await checkSigV4(req, body, {
      credentials: this.credentials,
      region: this.region,
      service: 'ses',
    });
    if (refusal === null) return null;
    return {
      malformed: {
        error: 'IncompleteSignatureException',
        message: 'Authorization header is missing or malformed.',
      },
      unknown_key: {
        error: 'UnrecognizedClientException',
        message: 'The security token included in the request is invalid.',
      },
      mismatch: {
        error: 'SignatureDoesNotMatch',
        message:
          'The request signature we calculated does not match the signature you provided. ' +
          'Check your AWS Secret Access Key and signing method.',
      },
    }[refusal];
  }

  private async handle(req: IncomingMessage, raw: Buffer, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST' || req.url !== '/v2/email/outbound-emails') {
      this.fail(res, 404, 'UnknownOperationException', 'Unknown operation');
      return;
    }
    const refusal = await this.checkSignature(req, raw);
    if (refusal !== null) {
      this.fail(res, 403, refusal.error, refusal.message);
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      this.fail(res, 400, 'BadRequestException', 'Request body is not JSON.');
      return;
    }
    const content = body.Content as { Raw?: { Data?: unknown } } | undefined;
    const data = content?.Raw?.Data;
    if (typeof data !== 'string' || data === '') {
      this.fail(res, 400, 'BadRequestException', 'Content.Raw.Data is required for this stand-in.');
      return;
    }
    const mime = Buffer.from(data, 'base64');
    const parsed = await simpleParser(mime);
    const destination = body.Destination as { ToAddresses?: string[] } | undefined;
    const headerTo = (
      Array.isArray(parsed.to) ? parsed.to : parsed.to === undefined ? [] : [parsed.to]
    ).flatMap((a) => a.value.map((v) => v.address ?? ''));
    const recipients = destination?.ToAddresses ?? headerTo;
    const from = typeof body.FromEmailAddress === 'string' ? body.FromEmailAddress : parsed.from?.text;
    if (recipients.length === 0 || recipients.some((r) => !r.includes('@'))) {
      this.fail(res, 400, 'BadRequestException', 'Missing or invalid destination.');
      return;
    }
    if (from === undefined || from === '') {
      this.fail(res, 400, 'BadRequestException', 'Missing From.');
      return;
    }
    const next = recipients.map((r) => this.scripted.get(r.toLowerCase())?.shift()).find((s) => s);
    if (next === 'hang') {
      this.hung.add(res);
      return;
    }
    if (next !== undefined) {
      const status = next.status ?? (sesErrors as Record<string, number>)[next.error] ?? 400;
      this.fail(res, status, next.error, next.message ?? `Scripted ${next.error}`, next.headers);
      return;
    }
    const messageId = `0102018f${randomUUID().replaceAll('-', '')}-000000`;
    this.accepted.push({ messageId, body, raw: mime, parsed, recipients, at: Date.now() });
    this.answered.push({ status: 200, error: null, at: Date.now() });
    res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID() });
    res.end(JSON.stringify({ MessageId: messageId }));
  }

  /** The SES event (event publishing format) for a message, as SNS carries it in Message. */
  static sesEvent(event: SesEvent): Record<string, unknown> {
    const timestamp = new Date().toISOString();
    const mail = {
      timestamp,
      source: 'noreply@mail.example.com',
      sendingAccountId: '123456789012',
      messageId: event.messageId,
      destination: [event.recipient],
    };
    switch (event.type) {
      case 'Delivery':
        return {
          eventType: 'Delivery',
          mail,
          delivery: {
            timestamp,
            processingTimeMillis: 512,
            recipients: [event.recipient],
            smtpResponse: '250 2.6.0 Message received',
            reportingMTA: 'a8-50.smtp-out.amazonses.com',
          },
        };
      case 'Bounce': {
        const permanent = (event.bounceType ?? 'Permanent') === 'Permanent';
        return {
          eventType: 'Bounce',
          mail,
          bounce: {
            bounceType: event.bounceType ?? 'Permanent',
            bounceSubType: event.bounceSubType ?? (permanent ? 'General' : 'MailboxFull'),
            bouncedRecipients: [
              {
                emailAddress: event.recipient,
                action: 'failed',
                status: permanent ? '5.1.1' : '4.2.2',
                diagnosticCode: permanent ? 'smtp; 550 5.1.1 user unknown' : 'smtp; 452 4.2.2 mailbox full',
              },
            ],
            timestamp,
            feedbackId: randomUUID(),
            reportingMTA: 'dsn; a8-50.smtp-out.amazonses.com',
          },
        };
      }
      case 'Complaint':
        return {
          eventType: 'Complaint',
          mail,
          complaint: {
            complainedRecipients: [{ emailAddress: event.recipient }],
            timestamp,
            feedbackId: randomUUID(),
            complaintFeedbackType: 'abuse',
          },
        };
      case 'Reject':
        return { eventType: 'Reject', mail, reject: { reason: 'Bad content' } };
      case 'DeliveryDelay':
        return {
          eventType: 'DeliveryDelay',
          mail,
          deliveryDelay: { timestamp, delayType: 'MailboxFull', expirationTime: timestamp },
        };
    }
  }

  /** The SNS HTTP(S) notification (body and headers) carrying an SES event. */
  static snsNotification(event: SesEvent): { body: Buffer; headers: Record<string, string> } {
    const topicArn = 'arn:aws:sns:eu-west-1:123456789012:herald-ses-events';
    const id = randomUUID();
    const envelope = {
      Type: 'Notification',
      MessageId: id,
      TopicArn: topicArn,
      Message: JSON.stringify(SesStandIn.sesEvent(event)),
      Timestamp: new Date().toISOString(),
      SignatureVersion: '1',
      Signature: 'c3RhbmQtaW4=',
      SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem',
      UnsubscribeURL: `https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${topicArn}:${id}`,
    };
    return {
      body: Buffer.from(JSON.stringify(envelope)),
      headers: {
        'content-type': 'text/plain; charset=UTF-8',
        'x-amz-sns-message-type': 'Notification',
        'x-amz-sns-message-id': id,
        'x-amz-sns-topic-arn': topicArn,
        'user-agent': 'Amazon Simple Notification Service Agent',
      },
    };
  }

  /** An SNS SubscriptionConfirmation whose SubscribeURL is `subscribeUrl`. */
  static snsSubscriptionConfirmation(subscribeUrl: string): {
    body: Buffer;
    headers: Record<string, string>;
  } {
    const topicArn = 'arn:aws:sns:eu-west-1:123456789012:herald-ses-events';
    const id = randomUUID();
    return {
      body: Buffer.from(
        JSON.stringify({
          Type: 'SubscriptionConfirmation',
          MessageId: id,
          Token: 'token-1',
          TopicArn: topicArn,
          Message: `You have chosen to subscribe to the topic ${topicArn}.`,
          SubscribeURL: subscribeUrl,
          Timestamp: new Date().toISOString(),
          SignatureVersion: '1',
          Signature: 'c3RhbmQtaW4=',
          SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem',
        }),
      ),
      headers: {
        'content-type': 'text/plain; charset=UTF-8',
        'x-amz-sns-message-type': 'SubscriptionConfirmation',
        'x-amz-sns-message-id': id,
        'x-amz-sns-topic-arn': topicArn,
      },
    };
  }

  /**
   * Posts an SES event the way SNS does to `https://user:password@host/path`: first without
   * credentials, and again with Basic auth once answered 401 with a WWW-Authenticate challenge.
   * Returns the final status.
   */
  static async postEvent(
    callbackUrl: string,
    event: SesEvent,
    credentials: { user: string; password: string },
  ): Promise<number> {
    const { body, headers } = SesStandIn.snsNotification(event);
    const post = (extra: Record<string, string>) =>
      fetch(callbackUrl, { method: 'POST', headers: { ...headers, ...extra }, body });
    let response = await post({});
    if (response.status === 401 && response.headers.get('www-authenticate') !== null) {
      await response.arrayBuffer();
      const basic = Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64');
      response = await post({ authorization: `Basic ${basic}` });
    }
    await response.arrayBuffer();
    return response.status;
  }
}
