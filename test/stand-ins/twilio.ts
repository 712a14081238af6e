// A stand-in for Twilio Programmable Messaging: POST /2010-04-01/Accounts/{sid}/Messages.json
// with HTTP Basic auth and a form body. It checks what Twilio checks (credentials, an E.164
// 'To', a sender, a Body of at most 1600 characters), counts segments itself (its own GSM-7 /
// UCS-2 count, so tests compare two implementations), answers 201 with the Message resource or
// errors in Twilio's shape, can be scripted per 'To' number, and posts signed status callbacks.
import { bodyServer, closeServer, listenOnLoopback } from '../helpers/loopback-server.js';
import { createHmac, randomBytes } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, type Server } from 'node:http';

export interface TwilioScriptedAnswer {
  status: number;
  /** Twilio error code for the body; omitted → a body without a code. */
  code?: number;
  message?: string;
  headers?: Record<string, string>;
  /** Never answer (the client's timeout fires). */
  hang?: boolean;
}

export interface TwilioStandInMessage {
  sid: string;
  to: string;
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  numSegments: number;
  encoding: 'GSM-7' | 'UCS-2';
  statusCallback: string | null;
  at: number;
  /** The W3C traceparent header the request carried, if any. */
  traceparent: string | string[] | undefined;
}

export interface StatusCallbackOptions {
  errorCode?: string;
  /** Sign with this token instead of the account's (a forger who guessed wrong). */
  signWithToken?: string;
  /** Change the form after signing (an attacker altering a genuine callback). */
  alter?: (form: URLSearchParams) => void;
  /** Send no X-Twilio-Signature at all. */
  unsigned?: boolean;
}

// GSM 03.38 default alphabet and the characters reached through its extension table (2 septets).
const gsmDefault =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
const gsmExtended = '^{}\\[~]|€\f';

/** Twilio's segment count, written apart from src/domain/sms-segments.ts on purpose. */
export function standInSegments(body: string): { numSegments: number; encoding: 'GSM-7' | 'UCS-2' } {
  let septets = 0;
  let gsm = true;
  for (const ch of body) {
    if (gsmDefault.includes(ch)) septets += 1;
    else if (gsmExtended.includes(ch)) septets += 2;
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) {
    if (septets <= 160) return { numSegments: septets === 0 ? 0 : 1, encoding: 'GSM-7' };
    // Concatenated: 153 septets per part, an escape + character pair is never split.
    let parts = 1;
    let room = 153;
    for (const ch of body) {
      const need = gsmExtended.includes(ch) ? 2 : 1;
      if (need > room) {
        parts += 1;
        room = 153;
      }
      room -= need;
    }
    return { numSegments: parts, encoding: 'GSM-7' };
  }
  // UCS-2 over UTF-16 code units: 70 in one SMS, 67 per part, a surrogate pair stays together.
  if (body.length <= 70) return { numSegments: 1, encoding: 'UCS-2' };
  let parts = 1;
  let room = 67;
  for (let i = 0; i < body.length; i += 1) {
    const unit = body.charCodeAt(i);
    const pair = unit >= 0xd800 && unit <= 0xdbff && i + 1 < body.length;
    const need = pair ? 2 : 1;
    if (need > room) {
      parts += 1;
      room = 67;
    }
    room -= need;
    if (pair) i += 1;
  }
  return { numSegments: parts, encoding: 'UCS-2' };
}

/** X-Twilio-Signature over a URL and form, computed the way Twilio's docs describe it. */
export function standInSignature(authToken: string, url: string, form: URLSearchParams): string {
  const names = [...new Set(form.keys())].sort();
  let data = url;
  for (const name of names) for (const value of form.getAll(name).sort()) data += name + value;
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

const e164 = /^\+[1-9]\d{1,14}$/;

export class TwilioStandIn {
  readonly accepted: TwilioStandInMessage[] = [];
  /** Every Messages.json request, answered or not. */
  readonly requests: {
    to: string | null;
    status: number | 'hung';
    at: number;
    traceparent: string | string[] | undefined;
  }[] = [];
  private readonly scripted = new Map<string, TwilioScriptedAnswer[]>();
  private server: Server | undefined;
  base = '';

  constructor(
    readonly accountSid = `AC${randomBytes(16).toString('hex')}`,
    readonly authToken = randomBytes(16).toString('hex'),
  ) {}

  /** Answers the next requests to this 'To' number with these, in order (then normally). */
  script(to: string, answers: TwilioScriptedAnswer[]): void {
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

  /** Posts a status callback for an accepted message to the StatusCallback it was sent with. */
  async sendStatus(
    sid: string,
    status: 'queued' | 'sending' | 'sent' | 'delivered' | 'undelivered' | 'failed',
    options: StatusCallbackOptions = {},
  ): Promise<{ status: number; body: string }> {
    const message = this.accepted.find((m) => m.sid === sid);
    if (message?.statusCallback == null) throw new Error(`no StatusCallback for ${sid}`);
    const form = new URLSearchParams({
      AccountSid: this.accountSid,
      ApiVersion: '2010-04-01',
      MessageSid: sid,
      MessageStatus: status,
      SmsSid: sid,
      SmsStatus: status,
      To: message.to,
    });
    if (message.from !== null) form.set('From', message.from);
    if (message.messagingServiceSid !== null) form.set('MessagingServiceSid', message.messagingServiceSid);
    if (options.errorCode !== undefined) form.set('ErrorCode', options.errorCode);
    const signature = standInSignature(options.signWithToken ?? this.authToken, message.statusCallback, form);
    options.alter?.(form);
    const response = await fetch(message.statusCallback, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(options.unsigned === true ? {} : { 'x-twilio-signature': signature }),
      },
      body: form.toString(),
    });
    return { status: response.status, body: await response.text() };
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const path = /^\/2010-04-01\/Accounts\/(AC\w+)\/Messages\.json$/.exec(req.url ?? '');
    const form = new URLSearchParams(raw);
    const to = form.get('To');
    const error = (status: number, code: number | undefined, message: string, headers = {}) => {
      this.requests.push({ to, status, at: Date.now(), traceparent: req.headers.traceparent });
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(
        JSON.stringify({
          ...(code === undefined
            ? {}
            : { code, more_info: `https://www.twilio.com/docs/errors/${String(code)}` }),
          message,
          status,
        }),
      );
    };
    if (req.method !== 'POST' || path === null) {
      error(404, 20404, `The requested resource ${req.url ?? ''} was not found`);
      return;
    }
    const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString('base64')}`;
    if (req.headers.authorization !== expected || path[1] !== this.accountSid) {
      error(401, 20003, 'Authenticate', { 'www-authenticate': 'Basic realm="Twilio API"' });
      return;
    }
    const next = to === null ? undefined : this.scripted.get(to)?.shift();
    if (next?.hang === true) {
      this.requests.push({ to, status: 'hung', at: Date.now(), traceparent: req.headers.traceparent });
      return;
    }
    if (next !== undefined) {
      error(next.status, next.code, next.message ?? 'Scripted error', next.headers);
      return;
    }
    if (req.headers['content-type']?.startsWith('application/x-www-form-urlencoded') !== true) {
      error(400, 21602, 'Message body is required.');
      return;
    }
    const from = form.get('From');
    const service = form.get('MessagingServiceSid');
    const body = form.get('Body') ?? '';
    const invalid: [number, string] | null =
      to === null
        ? [21604, "A 'To' phone number is required."]
        : !e164.test(to)
          ? [21211, `The 'To' number ${to} is not a valid phone number.`]
          : from === null && service === null
            ? [21603, "A 'From' phone number is required."]
            : body === ''
              ? [21602, 'Message body is required.']
              : Array.from(body).length > 1600
                ? [21617, 'The concatenated message body exceeds the 1600 character limit.']
                : null;
    if (invalid !== null || to === null) {
      error(400, invalid?.[0], invalid?.[1] ?? '');
      return;
    }
    const sid = `SM${randomBytes(16).toString('hex')}`;
    const { numSegments, encoding } = standInSegments(body);
    this.accepted.push({
      sid,
      to,
      from,
      messagingServiceSid: service,
      body,
      numSegments,
      encoding,
      statusCallback: form.get('StatusCallback'),
      at: Date.now(),
      traceparent: req.headers.traceparent,
    });
    this.requests.push({ to, status: 201, at: Date.now(), traceparent: req.headers.traceparent });
    const now = new Date().toUTCString().replace('GMT', '+0000');
    // With a Messaging Service Twilio answers 'accepted' and fills From and num_segments later.
    const viaService = from === null;
    res.writeHead(201, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        account_sid: this.accountSid,
        api_version: '2010-04-01',
        body,
        date_created: now,
        date_sent: null,
        date_updated: now,
        direction: 'outbound-api',
        error_code: null,
        error_message: null,
        from,
        messaging_service_sid: service,
        num_media: '0',
        num_segments: viaService ? '0' : String(numSegments),
        price: null,
        price_unit: 'USD',
        sid,
        status: viaService ? 'accepted' : 'queued',
        subresource_uris: { media: `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}/Media.json` },
        to,
        uri: `/2010-04-01/Accounts/${this.accountSid}/Messages/${sid}.json`,
      }),
    );
  }
}
