// Push channel for iOS: Apple's HTTP/2 provider API with token (JWT) auth. One HTTP/2 session
// per provider carries every send as its own stream; it is reopened lazily after GOAWAY, close
// or error. The answer table (classifyApnsAnswer) follows Apple's reason list
// (docs/providers/apns.md).
import { createPrivateKey, type KeyObject } from 'node:crypto';
import {
  connect,
  constants as http2,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { rootCertificates } from 'node:tls';
import { SignJWT } from 'jose';
import type { ChannelContent } from '../../domain/notification.js';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';
import type { Logger } from '../../observability/logger.js';
import type { ChannelProvider, RenderedMessage } from '../channel-provider.js';
import { ProviderConfigError, type ProviderContext } from '../provider-settings.js';
import { apnsRequest, payloadProblem } from './apns-payload.js';
import { apnsProductionUrl, type ApnsSettings } from './apns-settings.js';

const minute = 60_000;
/** Apple: refresh the provider token "no more than once every 20 minutes and no less than once every 60". */
const tokenRefreshAfterMs = 50 * minute;
const tokenMinAgeForRenewalMs = 20 * minute;
/** Enough of an error body to read its reason; the rest is drained, not kept. */
const maxBodyBytes = 8192;

/** What APNs answered on one stream. */
export interface ApnsAnswer {
  status: number;
  /** The `reason` of an error body; null for 200 or an unreadable body. */
  reason: string | null;
  apnsId: string | null;
  retryAfter: string | null;
}

/** Reasons meaning this device token is no good for this app: stop using it. */
const targetInvalidReasons = new Set([
  'BadDeviceToken', // malformed, or from the other environment (sandbox vs production)
  'DeviceTokenNotForTopic',
  'Unregistered',
  'ExpiredToken',
]);

/**
 * The answer → outcome table. 403s are our credentials (InvalidProviderToken, Forbidden,
 * BadEnvironmentKeyIdInToken, …; ExpiredProviderToken reaches here only after one re-sign
 * failed to cure it): only an operator can fix them. 429 is either per device token
 * (TooManyRequests) or TooManyProviderTokenUpdates, where the cached token is kept and the
 * connection backs off. Other 400s, 404, 405 and 413 mean Herald built a bad request.
 */
export function classifyApnsAnswer(answer: ApnsAnswer, nowMs: number): DeliveryOutcome {
  const reason = `apns ${String(answer.status)}${answer.reason === null ? '' : ` ${answer.reason}`}`;
  if (answer.status === 200) return { kind: 'sent', providerMessageId: answer.apnsId };
  if (answer.status === 410 || (answer.reason !== null && targetInvalidReasons.has(answer.reason)))
    return { kind: 'target_invalid', reason };
  if (answer.status === 403) return { kind: 'config_error', reason };
  if (answer.status === 429 || answer.status >= 500) {
    const retryAfterMs = parseRetryAfter(answer.retryAfter, nowMs);
    return { kind: 'retry', reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  }
  return { kind: 'failed', reason };
}

/**
 * The cached ES256 provider token. Signing is single-flight, so a burst of sends (or of
 * ExpiredProviderToken answers) mints one token, not one per stream.
 */
class ProviderToken {
  private cached: { jwt: string; mintedAtMs: number } | undefined;
  private minting: Promise<string> | undefined;

  constructor(
    private readonly key: KeyObject,
    private readonly teamId: string,
    private readonly keyId: string,
    private readonly now: () => number,
  ) {}

  /** The token to send: the cached one until it is 50 minutes old. */
  current(): Promise<string> {
    if (this.cached !== undefined && this.now() - this.cached.mintedAtMs < tokenRefreshAfterMs)
      return Promise.resolve(this.cached.jwt);
    return this.mint();
  }

  /**
   * After APNs called `rejected` expired: the token to retry with, or null when ours is under
   * 20 minutes old, so a new one would not help (our clock is off) and would risk
   * TooManyProviderTokenUpdates.
   */
  renewAfterExpiry(rejected: string): Promise<string | null> {
    if (this.cached !== undefined && this.cached.jwt !== rejected) return Promise.resolve(this.cached.jwt);
    if (this.cached !== undefined && this.now() - this.cached.mintedAtMs < tokenMinAgeForRenewalMs)
      return Promise.resolve(null);
    return this.mint();
  }

  private mint(): Promise<string> {
    this.minting ??= (async () => {
      const mintedAtMs = this.now();
      const jwt = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: this.keyId })
        .setIssuer(this.teamId)
        .setIssuedAt(Math.floor(mintedAtMs / 1000))
        .sign(this.key);
      this.cached = { jwt, mintedAtMs };
      return jwt;
    })().finally(() => {
      this.minting = undefined;
    });
    return this.minting;
  }
}

/** Why a stream ended without an answer; every one of these is retried. */
class ApnsStreamError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApnsStreamError';
  }
}

function errorCode(error: unknown): string {
  if (error instanceof ApnsStreamError) return error.message;
  if (error instanceof Error && 'code' in error && typeof error.code === 'string') return error.code;
  return error instanceof Error ? error.name : 'error';
}

export interface ApnsProviderOptions {
  name: string;
  url: string;
  teamId: string;
  keyId: string;
  /** The P-256 signing key (.p8). */
  signingKey: KeyObject;
  apps?: readonly string[];
  /** Extra trusted CA PEM (a relay, the stand-in). */
  ca?: string;
  expirationSeconds: number;
  timeoutMs: number;
  logger: Logger;
  /** The clock for tokens, apns-expiration and Retry-After; tests move it. */
  now?: () => number;
}

interface Connection {
  session: ClientHttp2Session;
  /** Settles once the server's first SETTINGS (max concurrent streams) has arrived. */
  ready: Promise<void>;
  isReady: boolean;
  isPinging: boolean;
}

export class ApnsProvider implements ChannelProvider {
  readonly name: string;
  readonly channel = 'push' as const;
  readonly serves: { platform: 'ios'; appIds?: readonly string[] };
  private readonly now: () => number;
  private readonly token: ProviderToken;
  private connection: Connection | undefined;
  private isClosed = false;

  constructor(private readonly options: ApnsProviderOptions) {
    this.name = options.name;
    this.now = options.now ?? Date.now;
    this.serves =
      options.apps === undefined ? { platform: 'ios' } : { platform: 'ios', appIds: options.apps };
    this.token = new ProviderToken(options.signingKey, options.teamId, options.keyId, this.now);
  }

  checkContent(content: ChannelContent, data: Record<string, unknown> | null): string | null {
    return payloadProblem(content, data);
  }

  async send(message: RenderedMessage, signal: AbortSignal): Promise<DeliveryOutcome> {
    const device = message.device;
    if (device === null) return { kind: 'failed', reason: 'device no longer registered' };
    if (this.isClosed) return { kind: 'retry', reason: 'apns provider closed' };
    const request = apnsRequest(message, device, {
      nowMs: this.now(),
      expirationSeconds: this.options.expirationSeconds,
    });
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const cancel = AbortSignal.any([signal, timeout]);
    const post = (jwt: string) =>
      this.exchange(
        {
          ':method': 'POST',
          ':path': `/3/device/${encodeURIComponent(device.token)}`,
          authorization: `bearer ${jwt}`,
          ...request.headers,
        },
        request.body,
        cancel,
      );
    try {
      const jwt = await this.token.current();
      let answer = await post(jwt);
      if (answer.status === 403 && answer.reason === 'ExpiredProviderToken') {
        const renewed = await this.token.renewAfterExpiry(jwt);
        if (renewed === null)
          return {
            kind: 'config_error',
            reason: 'apns 403 ExpiredProviderToken for a token under 20 minutes old (is the clock right?)',
          };
        answer = await post(renewed);
      }
      return classifyApnsAnswer(answer, this.now());
    } catch (error) {
      if (timeout.aborted) {
        this.checkAlive();
        return { kind: 'retry', reason: `apns timeout after ${String(this.options.timeoutMs)} ms` };
      }
      if (signal.aborted) return { kind: 'retry', reason: 'apns request aborted' };
      // No answer: the session died, was refused, or never connected. APNs may or may not have
      // delivered it; a retry may duplicate (at-least-once).
      return { kind: 'retry', reason: `apns no answer (${errorCode(error)})` };
    }
  }

  async close(): Promise<void> {
    this.isClosed = true;
    const connection = this.connection;
    this.connection = undefined;
    if (connection === undefined || connection.session.destroyed) return;
    // Streams in flight may finish; none outlives its own timeout, and neither does close().
    const { session } = connection;
    const deadline = setTimeout(() => session.destroy(), this.options.timeoutMs);
    await new Promise<void>((resolve) => session.close(resolve));
    clearTimeout(deadline);
  }

  /** The live session, opened on first use and after the last one went away. */
  private connect(): Connection {
    const current = this.connection;
    if (current !== undefined && !current.session.closed && !current.session.destroyed) return current;
    // `ca` replaces Node's trust store, so the extra CA is added to the public roots.
    const session = connect(
      this.options.url,
      this.options.ca === undefined ? {} : { ca: [...rootCertificates, this.options.ca] },
    );
    const forget = () => {
      if (this.connection?.session === session) this.connection = undefined;
    };
    // A server that never completes the handshake is dropped, so the next send tries anew.
    const connectTimer = setTimeout(
      () => session.destroy(new ApnsStreamError('connect timeout')),
      this.options.timeoutMs,
    );
    connectTimer.unref();
    const ready = new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('close', () => reject(new ApnsStreamError('connection closed before SETTINGS')));
      session.once('error', (error: Error) => reject(error));
    });
    const connection: Connection = { session, ready, isReady: false, isPinging: false };
    ready.then(
      () => {
        connection.isReady = true;
        clearTimeout(connectTimer);
      },
      // Every send awaits `ready`; this also keeps a rejection nobody awaits from crashing.
      () => clearTimeout(connectTimer),
    );
    session.on('error', (error) => {
      forget();
      this.options.logger.warn({ provider: this.name, code: errorCode(error) }, 'apns connection error');
    });
    // After GOAWAY Node lets the streams the server accepted finish and refuses new ones, so
    // new sends go to a new session at once.
    session.on('goaway', (code: number, _lastStreamId: number, data?: Buffer) => {
      forget();
      this.options.logger.info(
        { provider: this.name, errorCode: code, debug: data?.toString('utf8').slice(0, 200) },
        'apns connection going away',
      );
    });
    session.on('close', forget);
    this.connection = connection;
    return connection;
  }

  /**
   * After a timeout: PING the session. A peer that does not answer within the timeout is gone
   * (half-open TCP, a stuck relay), so the session is dropped and the next send reconnects;
   * otherwise only that stream was slow and the session stays.
   */
  private checkAlive(): void {
    const connection = this.connection;
    if (connection === undefined || !connection.isReady || connection.isPinging) return;
    const { session } = connection;
    const deadline = setTimeout(() => session.destroy(), this.options.timeoutMs);
    deadline.unref();
    const settle = () => {
      clearTimeout(deadline);
      connection.isPinging = false;
    };
    connection.isPinging = true;
    try {
      if (
        !session.ping((error) => {
          settle();
          if (error !== null) session.destroy();
        })
      )
        settle();
    } catch {
      settle(); // the session is already closing
    }
  }

  /**
   * One request on its own stream. Resolves with APNs' answer, always reading the body (a
   * stream whose body is not read never closes); rejects when no answer came.
   */
  private async exchange(
    headers: OutgoingHttpHeaders,
    body: string,
    cancel: AbortSignal,
  ): Promise<ApnsAnswer> {
    const connection = this.connect();
    // Wait for the server's SETTINGS so a burst never opens more streams than it allows (Node
    // queues what exceeds SETTINGS_MAX_CONCURRENT_STREAMS, but only once it knows the limit).
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(new ApnsStreamError('aborted'));
      if (cancel.aborted) onAbort();
      cancel.addEventListener('abort', onAbort, { once: true });
      connection.ready.then(resolve, reject).finally(() => cancel.removeEventListener('abort', onAbort));
    });
    return new Promise<ApnsAnswer>((resolve, reject) => {
      if (cancel.aborted) {
        reject(new ApnsStreamError('aborted'));
        return;
      }
      let stream: ClientHttp2Stream;
      try {
        stream = connection.session.request(headers);
      } catch (error) {
        reject(error instanceof Error ? error : new ApnsStreamError('request refused'));
        return;
      }
      let response: Omit<ApnsAnswer, 'reason'> | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      const onAbort = () => {
        stream.close(http2.NGHTTP2_CANCEL);
        reject(new ApnsStreamError('aborted'));
      };
      cancel.addEventListener('abort', onAbort, { once: true });
      stream.on('response', (h) => {
        const text = (name: string) => {
          const value = h[name];
          return typeof value === 'string' ? value : null;
        };
        response = { status: h[':status'] ?? 0, apnsId: text('apns-id'), retryAfter: text('retry-after') };
      });
      stream.on('data', (chunk: Buffer) => {
        if (size < maxBodyBytes) chunks.push(chunk);
        size += chunk.length;
      });
      stream.on('end', () => {
        if (response !== undefined)
          resolve({ ...response, reason: readReason(Buffer.concat(chunks).toString('utf8')) });
      });
      // An error here is followed by 'close'; it is what 'close' reports.
      let streamError: Error | undefined;
      stream.on('error', (error: Error) => {
        streamError = error;
      });
      stream.on('close', () => {
        cancel.removeEventListener('abort', onAbort);
        // A 200 has an empty body: its headers are the whole answer.
        if (response?.status === 200) resolve({ ...response, reason: null });
        reject(
          streamError ??
            new ApnsStreamError(`stream closed without an answer (code ${String(stream.rstCode)})`),
        );
      });
      stream.end(body);
    });
  }
}

/** The `reason` of an APNs error body {"reason": "...", "timestamp"?: ms}. */
function readReason(body: string): string | null {
  if (body === '') return null;
  try {
    const parsed: unknown = JSON.parse(body);
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'reason' in parsed &&
      typeof parsed.reason === 'string'
    )
      return parsed.reason.slice(0, 100);
  } catch {
    // Not JSON: classified by status alone.
  }
  return null;
}

/**
 * Builds the provider from its config entry. Reads the signing key and CA now, so a missing or
 * malformed key fails at startup, not at the first send.
 */
export function createApnsProvider(
  settings: ApnsSettings,
  context: ProviderContext,
  options: { now?: () => number } = {},
): ApnsProvider {
  let signingKey: KeyObject;
  try {
    signingKey = createPrivateKey(context.secret(settings.signingKey, 'signingKey'));
  } catch (error) {
    if (error instanceof ProviderConfigError) throw error;
    // The parser's message is dropped: it never carries key material, but there is no need to risk it.
    throw new ProviderConfigError([`provider ${settings.name}: signingKey: not a PKCS#8 PEM private key`]);
  }
  if (signingKey.asymmetricKeyType !== 'ec' || signingKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new ProviderConfigError([`provider ${settings.name}: signingKey: not a P-256 (ES256) key`]);
  return new ApnsProvider({
    name: settings.name,
    url: settings.url ?? apnsProductionUrl,
    teamId: settings.teamId,
    keyId: settings.keyId,
    signingKey,
    ...(settings.apps === undefined ? {} : { apps: settings.apps }),
    ...(settings.caFile === undefined ? {} : { ca: context.file(settings.caFile, 'caFile') }),
    expirationSeconds: settings.expirationSeconds ?? 86_400,
    timeoutMs: settings.timeoutMs ?? context.defaultTimeoutMs,
    logger: context.logger,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
}
