// OAuth2 access tokens for FCM from a service account: an RS256 JWT assertion exchanged at the
// account's token_uri (https://developers.google.com/identity/protocols/oauth2/service-account).
// One token is shared by every send until 5 minutes before it expires, and concurrent sends
// that find none share one token request (single flight), so N sends never stampede the endpoint.
import { networkReason } from '../network-reason.js';
import { importPKCS8, SignJWT } from 'jose';
import { Type } from 'typebox';
import { Value } from 'typebox/value';
import { request, type Dispatcher } from 'undici';
import type { DeliveryOutcome } from '../../domain/outcome.js';
import { parseRetryAfter } from '../../domain/retry-policy.js';
import type { FcmServiceAccount } from './fcm-settings.js';

export const fcmScope = 'https://www.googleapis.com/auth/firebase.messaging';
const jwtBearerGrant = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Google accepts assertions valid for at most an hour. */
const assertionLifetimeS = 3600;
/** A token is replaced this long before it expires, so no send carries one that dies in flight. */
const refreshMarginS = 300;

export type AccessTokenResult = { ok: true; token: string } | { ok: false; outcome: DeliveryOutcome };

const TokenAnswer = Type.Object({
  access_token: Type.String({ minLength: 1 }),
  expires_in: Type.Number({ exclusiveMinimum: 0 }),
});
const TokenError = Type.Object({ error: Type.String() });

export interface FcmAccessTokensOptions {
  account: FcmServiceAccount;
  dispatcher: Dispatcher;
  timeoutMs: number;
  now: () => number;
}

export class FcmAccessTokens {
  private cached: { token: string; refreshAtMs: number } | undefined;
  private pending: Promise<AccessTokenResult> | undefined;
  private key: ReturnType<typeof importPKCS8> | undefined;

  constructor(private readonly options: FcmAccessTokensOptions) {}

  /** A valid access token, or the outcome a send should end with when none can be had. */
  async get(signal: AbortSignal): Promise<AccessTokenResult> {
    const cached = this.cached;
    if (cached !== undefined && this.options.now() < cached.refreshAtMs)
      return { ok: true, token: cached.token };
    // The shared request is not tied to any one caller's signal: an aborted send must not fail
    // the others waiting on the same token.
    this.pending ??= this.requestToken().finally(() => {
      this.pending = undefined;
    });
    return abortable(this.pending, signal);
  }

  /** FCM refused `token` (401): forget it unless a newer one already replaced it. */
  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  private async requestToken(): Promise<AccessTokenResult> {
    const { account, dispatcher, timeoutMs, now } = this.options;
    let assertion: string;
    try {
      this.key ??= importPKCS8(account.private_key, 'RS256');
      const iat = Math.floor(now() / 1000);
      assertion = await new SignJWT({ scope: fcmScope })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
        .setIssuer(account.client_email)
        .setAudience(account.token_uri)
        .setIssuedAt(iat)
        .setExpirationTime(iat + assertionLifetimeS)
        .sign(await this.key);
    } catch {
      this.key = undefined;
      return failure('config_error', 'fcm service account private_key is not an RSA PKCS#8 key');
    }
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      const response = await request(account.token_uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: jwtBearerGrant, assertion }).toString(),
        dispatcher,
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = response.statusCode;
      text = await response.body.text();
      const header = response.headers['retry-after'];
      retryAfter = typeof header === 'string' ? header : null;
    } catch (error) {
      return failure('retry', `fcm token endpoint ${networkReason(error)}`);
    }
    if (status === 200) {
      const answer = parseJson(text);
      if (!Value.Check(TokenAnswer, answer)) return failure('retry', 'fcm token endpoint: malformed answer');
      const lifetimeS = answer.expires_in;
      // Short-lived tokens (a stand-in's) are kept for half their life instead.
      const keepS = lifetimeS > 2 * refreshMarginS ? lifetimeS - refreshMarginS : lifetimeS / 2;
      this.cached = { token: answer.access_token, refreshAtMs: now() + keepS * 1000 };
      return { ok: true, token: answer.access_token };
    }
    const body = parseJson(text);
    // Only the OAuth error code is kept: error_description may quote parts of the assertion.
    const code = Value.Check(TokenError, body) ? body.error : 'error';
    const reason = `fcm token endpoint ${String(status)} ${code}`;
    if (status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(retryAfter, now());
      return {
        ok: false,
        outcome: { kind: 'retry', reason, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
      };
    }
    // invalid_grant (bad signature, clock skew, revoked key), invalid_client, 401/403: only an
    // operator can fix the credentials.
    return failure('config_error', reason);
  }
}

function failure(kind: 'retry' | 'config_error', reason: string): AccessTokenResult {
  return { ok: false, outcome: { kind, reason } };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `promise`, or a retry outcome as soon as `signal` aborts. */
async function abortable(
  promise: Promise<AccessTokenResult>,
  signal: AbortSignal,
): Promise<AccessTokenResult> {
  if (signal.aborted) return failure('retry', 'fcm aborted');
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<AccessTokenResult>((resolve) => {
    onAbort = () => resolve(failure('retry', 'fcm aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
