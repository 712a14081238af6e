// A stand-in for a typical vendor SMS gateway (the shape docs/providers/sms-gateway.md
// describes): POST /messages with a bearer token and JSON (or form) {to, from, text, client_ref,
// encoding?}; 202 {data: {id, segments}}; errors {code, message} with stable codes
// (INVALID_NUMBER, OPTED_OUT, INVALID_REQUEST, UNAUTHORIZED); scripted 429/503 with
// Retry-After or hangs per number; delivery receipts signed with Standard Webhooks.
import { bodyServer, closeServer, listenOnLoopback } from '../helpers/loopback-server.js';
import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { standInSegments } from './twilio.js';

export interface GatewayScriptedAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  hang?: boolean;
}

export interface GatewayStandInMessage {
  id: string;
  /** The request as the gateway received it (JSON or form fields). */
  request: Record<string, unknown>;
  contentType: string;
  method: string;
  segments: number;
  at: number;
  /** The W3C traceparent header the request carried, if any. */
  traceparent: string | string[] | undefined;
}

export interface ReceiptOptions {
  /** Sign with another secret (a forger's). */
  secret?: string;
  /** Change the body after signing. */
  alter?: (body: string) => string;
  unsigned?: boolean;
  /** Unix seconds to stamp (an old one is a replay). */
  timestamp?: number;
  errorCode?: string;
}

const e164 = /^\+[1-9]\d{1,14}$/;

export class SmsGatewayStandIn {
  readonly accepted: GatewayStandInMessage[] = [];
  /** Numbers whose owners replied STOP. */
  readonly optedOut = new Set<string>();
  private readonly scripted = new Map<string, GatewayScriptedAnswer[]>();
  private server: Server | undefined;
  base = '';
  /** Where receipts are POSTed (configured in the vendor's dashboard, in real life). */
  receiptUrl = '';

  constructor(
    readonly token = randomBytes(16).toString('hex'),
    readonly receiptSecret = `whsec_${randomBytes(24).toString('base64')}`,
  ) {}

  script(to: string, answers: GatewayScriptedAnswer[]): void {
    this.scripted.set(to, [...answers]);
  }

  async start(): Promise<void> {
    const server = bodyServer((req, res, body) => {
      this.handle(req, res, body.toString('utf8'));
    });
    this.server = server;
    this.base = await listenOnLoopback(server);
  }

  async stop(): Promise<void> {
    await closeServer(this.server);
  }

  /** POSTs a signed delivery receipt {message_id, status, client_ref, error_code?} to receiptUrl. */
  async sendReceipt(
    id: string,
    status: string,
    options: ReceiptOptions = {},
  ): Promise<{ status: number; body: string }> {
    const message = this.accepted.find((m) => m.id === id);
    const body = JSON.stringify({
      message_id: id,
      status,
      client_ref: message?.request['client_ref'] ?? null,
      ...(options.errorCode === undefined ? {} : { error_code: options.errorCode }),
    });
    const webhookId = `msg_${randomBytes(12).toString('hex')}`;
    const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
    const signature = new Webhook(options.secret ?? this.receiptSecret).sign(
      webhookId,
      new Date(timestamp * 1000),
      body,
    );
    const response = await fetch(this.receiptUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(options.unsigned === true
          ? {}
          : {
              'webhook-id': webhookId,
              'webhook-timestamp': String(timestamp),
              'webhook-signature': signature,
            }),
      },
      body: options.alter?.(body) ?? body,
    });
    return { status: response.status, body: await response.text() };
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    if ((req.method !== 'POST' && req.method !== 'PUT') || req.url !== '/messages') {
      answer(404, { code: 'NOT_FOUND', message: 'No such endpoint' });
      return;
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      answer(401, { code: 'UNAUTHORIZED', message: 'Missing or invalid API token' });
      return;
    }
    const contentType = req.headers['content-type'] ?? '';
    let fields: Record<string, unknown>;
    try {
      fields = contentType.startsWith('application/json')
        ? (JSON.parse(raw) as Record<string, unknown>)
        : contentType.startsWith('application/x-www-form-urlencoded')
          ? Object.fromEntries(new URLSearchParams(raw))
          : {};
    } catch {
      answer(400, { code: 'INVALID_REQUEST', message: 'Body is not JSON' });
      return;
    }
    const to = typeof fields['to'] === 'string' ? fields['to'] : '';
    const next = this.scripted.get(to)?.shift();
    if (next?.hang === true) return;
    if (next !== undefined) {
      answer(next.status, next.body ?? { code: 'SCRIPTED', message: 'Scripted answer' }, next.headers);
      return;
    }
    const { from, text } = fields;
    if (typeof text !== 'string' || text === '' || typeof from !== 'string' || from === '') {
      answer(400, { code: 'INVALID_REQUEST', message: 'from and text are required' });
      return;
    }
    if (!e164.test(to)) {
      answer(400, { code: 'INVALID_NUMBER', message: `${to} is not a valid E.164 number` });
      return;
    }
    if (this.optedOut.has(to)) {
      answer(400, { code: 'OPTED_OUT', message: 'The recipient has opted out' });
      return;
    }
    const id = `msg_${randomBytes(10).toString('hex')}`;
    const { numSegments } = standInSegments(text);
    this.accepted.push({
      id,
      request: fields,
      contentType,
      method: req.method,
      segments: numSegments,
      at: Date.now(),
      traceparent: req.headers.traceparent,
    });
    answer(202, { data: { id, segments: numSegments, status: 'accepted' } });
  }
}

/**
 * The HERALD_CONFIG_FILE entry of an sms_gateway provider named acme-sms that sends to this
 * stand-in and takes its signed receipts; its two secrets are written into `dir` (the config
 * file's folder, which relative secret files are read from).
 */
export function acmeSmsProvider(gateway: SmsGatewayStandIn, dir: string): Record<string, unknown> {
  writeFileSync(join(dir, 'gateway-token'), gateway.token);
  writeFileSync(join(dir, 'gateway-receipts'), gateway.receiptSecret);
  return {
    type: 'sms_gateway',
    name: 'acme-sms',
    url: `${gateway.base}/messages`,
    format: 'json',
    secrets: { token: { file: 'gateway-token' } },
    headers: { Authorization: 'Bearer {{secret.token}}' },
    body: { to: '{{to}}', from: '{{from}}', text: '{{text}}', client_ref: '{{reference}}' },
    from: 'SHOP',
    success: { status: [202], idPath: '/data/id' },
    errors: [],
    receipts: {
      secret: { file: 'gateway-receipts' },
      idPath: '/message_id',
      statusPath: '/status',
      delivered: ['DELIVERED'],
      failed: ['FAILED'],
      invalid: ['UNKNOWN_SUBSCRIBER'],
    },
    maxSegments: 3,
  };
}
