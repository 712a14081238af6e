// A stand-in for APNs' HTTP/2 provider API with token auth. It checks what APNs checks (method,
// path and device token, the ES256 provider token and its age and update rate, the apns-*
// headers, the payload) and answers as APNs does (docs/providers/apns.md). Tests can script any
// answer per device token, or make it hang, send GOAWAY or drop the connection mid-request.
import { randomUUID, type KeyObject } from 'node:crypto';
import {
  constants as http2,
  createSecureServer,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type Http2Session,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { testCertificate } from '../helpers/tls.js';

export type ApnsScriptedAction =
  | { kind: 'answer'; status: number; reason: string; retryAfter?: string }
  /** Never answer (until the client cancels or the stand-in stops). */
  | { kind: 'hang' }
  /** GOAWAY naming the previous stream as the last processed: this one gets no answer. */
  | { kind: 'goaway' }
  /** Destroy the connection with this request in flight. */
  | { kind: 'destroy' };

export interface ApnsPush {
  token: string;
  topic: string;
  headers: Record<string, string>;
  payload: Record<string, unknown>;
  jwt: string;
  /** The W3C traceparent header the request carried, if any. */
  traceparent: string | undefined;
}

export interface ApnsStandInOptions {
  teamId: string;
  keyId: string;
  /** The public half of the signing key the provider uses. */
  publicKey: KeyObject;
  /** Bundle ids the key's team may push to. */
  topics: string[];
  /** SETTINGS_MAX_CONCURRENT_STREAMS announced to every connection (APNs: ~500–1500). */
  maxConcurrentStreams?: number;
  /** Real-time delay before each answer, so concurrent streams overlap. */
  answerDelayMs?: number;
}

const pushTypes = new Set([
  'alert',
  'background',
  'location',
  'voip',
  'complication',
  'fileprovider',
  'mdm',
  'liveactivity',
  'pushtotalk',
]);
const canonicalUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const minute = 60_000;

/** The error answer APNs would give; thrown by the checks. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(`${String(status)} ${reason}`);
  }
}

export class ApnsStandIn {
  /** Pushes APNs would deliver, in order of acceptance. */
  readonly accepted: ApnsPush[] = [];
  /** Every non-200 answer given, scripted or not. */
  readonly refused: { token: string; status: number; reason: string }[] = [];
  /** Distinct provider tokens seen, valid or not. */
  readonly jwtsSeen = new Set<string>();
  connectionsOpened = 0;
  /** The most streams ever open at once, across connections. */
  maxStreamsInFlight = 0;
  /** The stand-in's clock for token age and the 20-minute update rule; tests move it. */
  now: () => number = Date.now;
  url = '';
  private openStreams = 0;
  private readonly scripts = new Map<string, ApnsScriptedAction[]>();
  private readonly unregistered = new Map<string, number>();
  /** Per connection: the provider token in use and when it was first seen. */
  private readonly tokenInUse = new WeakMap<Http2Session, { jwt: string; since: number }>();
  private readonly sessions = new Set<ServerHttp2Session>();
  private server: Http2SecureServer | undefined;

  constructor(private readonly options: ApnsStandInOptions) {}

  /** Streams open right now (a hung one stays open until the client cancels it). */
  get streamsInFlight(): number {
    return this.openStreams;
  }

  get maxConcurrentStreams(): number {
    return this.options.maxConcurrentStreams ?? 1000;
  }

  /**
   * Announces a new SETTINGS_MAX_CONCURRENT_STREAMS on every open connection (APNs drops it to 1
   * after a rejected push and restores it after a success); resolves once clients acknowledged.
   */
  async limitStreams(maxConcurrentStreams: number): Promise<void> {
    await Promise.all(
      [...this.sessions].map(
        (session) =>
          new Promise<void>((resolve) => {
            session.settings({ maxConcurrentStreams }, () => resolve());
          }),
      ),
    );
  }

  /** Answers the next requests for `token` with these actions, in order, then normally. */
  /** While set, every request without a script of its own gets this (a provider outage). */
  outage: ApnsScriptedAction | undefined;

  script(token: string, actions: ApnsScriptedAction[]): void {
    this.scripts.set(token, [...actions]);
  }

  /** APNs answers 410 Unregistered for `token` from now on, with this timestamp. */
  unregister(token: string, atMs: number = this.now()): void {
    this.unregistered.set(token, atMs);
  }

  async start(): Promise<void> {
    const { cert, key } = testCertificate();
    const server = createSecureServer({
      cert,
      key,
      settings: { maxConcurrentStreams: this.maxConcurrentStreams },
    });
    server.on('session', (session) => {
      this.connectionsOpened += 1;
      this.sessions.add(session);
      session.on('close', () => this.sessions.delete(session));
      session.on('error', () => undefined);
    });
    server.on('stream', (stream, headers) => {
      this.openStreams += 1;
      this.maxStreamsInFlight = Math.max(this.maxStreamsInFlight, this.openStreams);
      stream.on('close', () => (this.openStreams -= 1));
      stream.on('error', () => undefined);
      this.handle(stream, headers).catch(() => {
        if (!stream.destroyed && !stream.headersSent) this.refuse(stream, '', 500, 'InternalServerError');
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `https://localhost:${String((server.address() as AddressInfo).port)}`;
  }

  async stop(): Promise<void> {
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((resolve) =>
      this.server === undefined ? resolve() : this.server.close(() => resolve()),
    );
  }

  private async handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of stream) chunks.push(chunk as Buffer);
    } catch {
      return; // the client cancelled
    }
    const body = Buffer.concat(chunks);
    const path = headers[':path'] ?? '';
    const token = /^\/3\/device\/([^/]*)$/.exec(path)?.[1] ?? '';
    const authorization = single(headers.authorization);
    const jwt = /^bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    if (jwt !== undefined) this.jwtsSeen.add(jwt);

    const action = this.scripts.get(token)?.shift() ?? this.outage;
    if (action !== undefined && action.kind !== 'answer') {
      this.misbehave(stream, action);
      return;
    }
    if (this.options.answerDelayMs !== undefined)
      await new Promise((resolve) => setTimeout(resolve, this.options.answerDelayMs));
    if (stream.destroyed) return;
    if (action !== undefined) {
      this.refuse(stream, token, action.status, action.reason, action.retryAfter);
      return;
    }
    try {
      const push = await this.check(stream.session, headers, token, jwt, body);
      this.accepted.push(push);
      const apnsId = push.headers['apns-id'] ?? randomUUID();
      stream.respond({ ':status': 200, 'apns-id': apnsId }, { endStream: true });
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      this.refuse(stream, token, error.status, error.reason);
    }
  }

  /** What APNs verifies, in about the order it does; throws the Refusal it would answer. */
  private async check(
    session: Http2Session | undefined,
    headers: IncomingHttpHeaders,
    token: string,
    jwt: string | undefined,
    body: Buffer,
  ): Promise<ApnsPush> {
    if (headers[':method'] !== 'POST') throw new Refusal(405, 'MethodNotAllowed');
    const path = headers[':path'] ?? '';
    if (!path.startsWith('/3/device/')) throw new Refusal(404, 'BadPath');
    if (token === '') throw new Refusal(400, 'MissingDeviceToken');
    if (!/^[0-9a-f]{64}$/i.test(token)) throw new Refusal(400, 'BadDeviceToken');

    if (jwt === undefined) throw new Refusal(403, 'MissingProviderToken');
    await this.checkProviderToken(session, jwt);

    const value = (name: string): string | undefined => {
      const raw = headers[name];
      if (Array.isArray(raw)) throw new Refusal(400, 'DuplicateHeaders');
      return raw;
    };
    const topic = value('apns-topic');
    if (topic === undefined) throw new Refusal(400, 'MissingTopic');
    if (!this.options.topics.includes(topic)) throw new Refusal(400, 'TopicDisallowed');
    const pushType = value('apns-push-type');
    if (pushType !== undefined && !pushTypes.has(pushType)) throw new Refusal(400, 'InvalidPushType');
    const priority = value('apns-priority');
    if (priority !== undefined && !['1', '5', '10'].includes(priority)) throw new Refusal(400, 'BadPriority');
    if (pushType === 'background' && priority !== '5') throw new Refusal(400, 'BadPriority');
    const expiration = value('apns-expiration');
    if (expiration !== undefined && !/^\d+$/.test(expiration)) throw new Refusal(400, 'BadExpirationDate');
    const collapseId = value('apns-collapse-id');
    if (collapseId !== undefined && Buffer.byteLength(collapseId) > 64)
      throw new Refusal(400, 'BadCollapseId');
    const apnsId = value('apns-id');
    if (apnsId !== undefined && !canonicalUuid.test(apnsId)) throw new Refusal(400, 'BadMessageId');

    if (body.length > 4096) throw new Refusal(413, 'PayloadTooLarge');
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      throw new Refusal(400, 'PayloadEmpty');
    }
    if (
      typeof payload !== 'object' ||
      payload === null ||
      !('aps' in payload) ||
      typeof payload.aps !== 'object'
    )
      throw new Refusal(400, 'PayloadEmpty');
    if (this.unregistered.has(token.toLowerCase())) throw new Refusal(410, 'Unregistered');

    const apnsHeaders: Record<string, string> = {};
    for (const [name, raw] of Object.entries(headers))
      if (name.startsWith('apns-') && typeof raw === 'string') apnsHeaders[name] = raw;
    const traceparent = typeof headers.traceparent === 'string' ? headers.traceparent : undefined;
    return { token, topic, headers: apnsHeaders, payload, jwt, traceparent };
  }

  private async checkProviderToken(session: Http2Session | undefined, jwt: string): Promise<void> {
    let claims: { iss?: unknown; iat?: unknown };
    try {
      if (decodeProtectedHeader(jwt).kid !== this.options.keyId) throw new Error('unknown key id');
      ({ payload: claims } = await jwtVerify(jwt, this.options.publicKey, {
        algorithms: ['ES256'],
        currentDate: new Date(this.now()),
      }));
    } catch {
      throw new Refusal(403, 'InvalidProviderToken');
    }
    if (claims.iss !== this.options.teamId || typeof claims.iat !== 'number')
      throw new Refusal(403, 'InvalidProviderToken');
    if (this.now() / 1000 - claims.iat > 3600) throw new Refusal(403, 'ExpiredProviderToken');
    if (session === undefined) return;
    // Apple: refresh "no more than once every 20 minutes"; a faster change is throttled.
    const inUse = this.tokenInUse.get(session);
    if (inUse !== undefined && inUse.jwt !== jwt) {
      if (this.now() - inUse.since < 20 * minute) throw new Refusal(429, 'TooManyProviderTokenUpdates');
    }
    if (inUse?.jwt !== jwt) this.tokenInUse.set(session, { jwt, since: this.now() });
  }

  private refuse(
    stream: ServerHttp2Stream,
    token: string,
    status: number,
    reason: string,
    retryAfter?: string,
  ) {
    this.refused.push({ token, status, reason });
    const timestamp = status === 410 ? (this.unregistered.get(token.toLowerCase()) ?? this.now()) : undefined;
    stream.respond({
      ':status': status,
      'content-type': 'application/json',
      ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
    });
    stream.end(JSON.stringify(timestamp === undefined ? { reason } : { reason, timestamp }));
  }

  private misbehave(stream: ServerHttp2Stream, action: { kind: 'hang' | 'goaway' | 'destroy' }): void {
    const session = stream.session;
    switch (action.kind) {
      case 'hang':
        return;
      case 'goaway':
        session?.goaway(
          http2.NGHTTP2_NO_ERROR,
          Math.max(0, (stream.id ?? 1) - 2),
          Buffer.from(JSON.stringify({ reason: 'Shutdown' })),
        );
        stream.close(http2.NGHTTP2_REFUSED_STREAM);
        session?.close();
        return;
      case 'destroy':
        session?.destroy();
        return;
    }
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
