// A stand-in push service (RFC 8030) over TLS. It mints subscriptions the way a browser does:
// a P-256 key pair and a 16-byte auth secret, kept here, so it can check what a real push
// service checks (VAPID per RFC 8292, TTL, aes128gcm, size) and also DECRYPT each message per
// RFC 8291/8188, recording the plaintext: the strongest proof the encryption is right.
// Unsubscribed endpoints answer 410; any answer can be scripted per subscription.
import { createDecipheriv, createECDH, hkdfSync, randomBytes, randomUUID, type ECDH } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { importJWK, jwtVerify } from 'jose';
import { testCertificate } from '../helpers/tls.js';

export interface PushSubscriptionJson {
  endpoint: string;
  expirationTime: null;
  keys: { p256dh: string; auth: string };
}

export interface WebPushAnswer {
  status: number;
  retryAfter?: string;
  /** Response body, e.g. autopush's {"errno": …}. */
  body?: string;
  /** Never answer (the client must time out). */
  hang?: boolean;
}

export interface ReceivedPush {
  /** The subscription's endpoint. */
  endpoint: string;
  plaintext: string;
  ttl: number;
  urgency: string | null;
  topic: string | null;
  /** The VAPID JWT the request carried. */
  jwt: string;
  location: string;
  at: number;
  /** The W3C traceparent header the request carried, if any. */
  traceparent: string | string[] | undefined;
}

interface Subscriber {
  ecdh: ECDH;
  auth: Buffer;
  /** The applicationServerKey the browser subscribed with (base64url). */
  applicationServerKey: string;
  active: boolean;
}

const urgencies = new Set(['very-low', 'low', 'normal', 'high']);

export class WebPushStandIn {
  readonly received: ReceivedPush[] = [];
  /** Why requests were refused (VAPID, headers, decryption), for tests to read. */
  readonly refusals: string[] = [];
  requests = 0;
  private readonly subscribers = new Map<string, Subscriber>();
  private readonly scripted = new Map<string, WebPushAnswer[]>();
  private readonly now: () => number;
  private server: Server | undefined;
  private messageCount = 0;
  url = '';

  /** `applicationServerKey`: the VAPID public key subscriptions are made with, unless subscribe() names another. */
  constructor(private readonly options: { applicationServerKey: string; now?: () => number }) {
    this.now = options.now ?? Date.now;
  }

  /** The CA a client must trust to reach this stand-in. */
  get ca(): string {
    return testCertificate().ca;
  }

  /** A new subscription, as the browser's PushSubscription.toJSON() gives it. */
  subscribe(applicationServerKey = this.options.applicationServerKey): PushSubscriptionJson {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    const id = randomUUID();
    this.subscribers.set(id, { ecdh, auth, applicationServerKey, active: true });
    return {
      endpoint: `${this.url}/push/${id}`,
      expirationTime: null,
      keys: { p256dh: ecdh.getPublicKey('base64url', 'uncompressed'), auth: auth.toString('base64url') },
    };
  }

  /** The user revoked permission: the endpoint answers 410 from now on. */
  unsubscribe(subscription: PushSubscriptionJson): void {
    const subscriber = this.subscribers.get(idOf(subscription.endpoint));
    if (subscriber !== undefined) subscriber.active = false;
  }

  /** Answers the next pushes to this subscription with these, in order, before any check. */
  script(subscription: PushSubscriptionJson, answers: WebPushAnswer[]): void {
    this.scripted.set(idOf(subscription.endpoint), [...answers]);
  }

  async start(): Promise<void> {
    const { cert, key } = testCertificate();
    const server = createServer({ cert, key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.push(req, Buffer.concat(chunks), res).catch(() => {
          if (!res.headersSent) res.writeHead(500).end();
        });
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async push(req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
    this.requests += 1;
    const id = /^\/push\/([\w-]+)$/.exec(req.url ?? '')?.[1];
    const subscriber = id === undefined ? undefined : this.subscribers.get(id);
    const refuse = (status: number, why: string, errno?: number) => {
      this.refusals.push(why);
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(JSON.stringify({ code: status, errno: errno ?? 999, error: why }));
    };
    if (req.method !== 'POST' || id === undefined || subscriber === undefined) {
      refuse(404, 'no such subscription', 102);
      return;
    }
    const next = this.scripted.get(id)?.shift();
    if (next !== undefined) {
      if (next.hang === true) return;
      res
        .writeHead(next.status, next.retryAfter === undefined ? {} : { 'retry-after': next.retryAfter })
        .end(next.body ?? '');
      return;
    }
    if (!subscriber.active) {
      refuse(410, 'subscription expired or unsubscribed', 106);
      return;
    }
    const vapid = await this.checkVapid(req.headers.authorization, subscriber);
    if (!vapid.ok) {
      refuse(vapid.status, vapid.why, 109);
      return;
    }
    const ttlHeader = req.headers.ttl;
    if (typeof ttlHeader !== 'string' || !/^\d+$/.test(ttlHeader)) {
      refuse(400, 'missing or invalid TTL', 111);
      return;
    }
    const urgency = req.headers.urgency;
    if (urgency !== undefined && (typeof urgency !== 'string' || !urgencies.has(urgency))) {
      refuse(400, 'invalid Urgency', 110);
      return;
    }
    const topic = req.headers.topic;
    if (topic !== undefined && (typeof topic !== 'string' || !/^[A-Za-z0-9_-]{1,32}$/.test(topic))) {
      refuse(400, 'invalid Topic', 110);
      return;
    }
    if (req.headers['content-encoding'] !== 'aes128gcm') {
      refuse(400, 'Content-Encoding must be aes128gcm', 110);
      return;
    }
    if (body.length > 4096) {
      refuse(413, 'payload too large', 104);
      return;
    }
    let plaintext: string;
    try {
      plaintext = decrypt(body, subscriber);
    } catch (error) {
      refuse(400, `cannot decrypt: ${error instanceof Error ? error.message : 'unknown'}`, 110);
      return;
    }
    this.messageCount += 1;
    const location = `${this.url}/message/${String(this.messageCount)}`;
    this.received.push({
      endpoint: `${this.url}/push/${id}`,
      plaintext,
      ttl: Number(ttlHeader),
      urgency: urgency ?? null,
      topic: topic ?? null,
      jwt: vapid.jwt,
      location,
      at: this.now(),
      traceparent: req.headers.traceparent,
    });
    res.writeHead(201, { location, ttl: ttlHeader }).end();
  }

  /** RFC 8292: `vapid t=<ES256 JWT>, k=<public key>`, aud = this origin, exp ≤ 24 h ahead, sub set. */
  private async checkVapid(
    header: string | undefined,
    subscriber: Subscriber,
  ): Promise<{ ok: true; jwt: string } | { ok: false; status: 401 | 403; why: string }> {
    const match = /^vapid t=([\w.-]+),\s*k=([\w-]+)$/.exec(header ?? '');
    const [, jwt, k] = match ?? [];
    if (jwt === undefined || k === undefined)
      return { ok: false, status: 401, why: 'missing vapid authorization' };
    const point = Buffer.from(k, 'base64url');
    if (point.length !== 65 || point[0] !== 4)
      return { ok: false, status: 401, why: 'k is not a P-256 point' };
    try {
      const key = await importJWK(
        {
          kty: 'EC',
          crv: 'P-256',
          x: point.subarray(1, 33).toString('base64url'),
          y: point.subarray(33).toString('base64url'),
        },
        'ES256',
      );
      const { payload } = await jwtVerify(jwt, key, {
        algorithms: ['ES256'],
        audience: this.url,
        requiredClaims: ['exp', 'sub'],
        currentDate: new Date(this.now()),
      });
      if (Number(payload.exp) > this.now() / 1000 + 24 * 3600)
        return { ok: false, status: 401, why: 'exp more than 24 hours ahead' };
      if (typeof payload.sub !== 'string' || !/^(mailto:|https:)/.test(payload.sub))
        return { ok: false, status: 401, why: 'sub is not a mailto: or https: URL' };
    } catch (error) {
      return {
        ok: false,
        status: 401,
        why: `invalid vapid JWT: ${error instanceof Error ? error.message : ''}`,
      };
    }
    if (k !== subscriber.applicationServerKey)
      return { ok: false, status: 403, why: 'k is not the applicationServerKey of this subscription' };
    return { ok: true, jwt };
  }
}

function idOf(endpoint: string): string {
  return endpoint.slice(endpoint.lastIndexOf('/') + 1);
}

/**
 * RFC 8188 aes128gcm with RFC 8291 keys: body = salt(16) ‖ rs(4) ‖ idlen(1) ‖ as_pub(idlen) ‖
 * one record; the record's plaintext ends with the 0x02 last-record delimiter, then zero padding.
 */
function decrypt(body: Buffer, subscriber: Subscriber): string {
  if (body.length < 21) throw new Error('body shorter than the header');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body.readUInt8(20);
  if (idlen !== 65) throw new Error('keyid is not a 65-byte P-256 point');
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  if (record.length > rs || record.length < 17) throw new Error('not exactly one record');
  const uaPublic = subscriber.ecdh.getPublicKey();
  const shared = subscriber.ecdh.computeSecret(asPublic);
  const info = (text: string, ...rest: Buffer[]) => Buffer.concat([Buffer.from(text, 'latin1'), ...rest]);
  const ikm = Buffer.from(
    hkdfSync('sha256', shared, subscriber.auth, info('WebPush: info\0', uaPublic, asPublic), 32),
  );
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, info('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, info('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  if (end < 0 || padded[end] !== 2) throw new Error('no last-record delimiter');
  return padded.subarray(0, end).toString('utf8');
}
