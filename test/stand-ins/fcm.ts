// A stand-in for FCM's HTTP v1 API and Google's OAuth2 token endpoint, over TLS (testCertificate).
// It mints a service account whose RS256 assertions it verifies (signature, iss, scope, aud =
// its own token URL, lifetime ≤ 1 h), issues short random access tokens, and accepts
// POST /v1/projects/<id>/messages:send only with a live token it issued, a well-formed message
// (exactly one target, string data values, ≤ 4096 bytes) and a registered device token.
// Errors are google.rpc.Status bodies as FCM sends them; any answer can be scripted per token.
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import { testCertificate } from '../helpers/tls.js';

export interface FcmAnswer {
  /** HTTP status. */
  status: number;
  /** google.rpc.Status `status`; derived from the HTTP status when absent. */
  rpcStatus?: string;
  /** FcmError `errorCode` in `details`. */
  errorCode?: string;
  /** google.rpc.BadRequest violations in `details`. */
  fieldViolations?: { field: string; description: string }[];
  retryAfter?: string;
  /** Never answer (the client must time out). */
  hang?: boolean;
}

export interface AcceptedFcmMessage {
  token: string;
  message: Record<string, unknown>;
  name: string;
  at: number;
  /** The W3C traceparent header the request carried, if any. */
  traceparent: string | string[] | undefined;
}

const scope = 'https://www.googleapis.com/auth/firebase.messaging';
const grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const fcmErrorType = 'type.googleapis.com/google.firebase.fcm.v1.FcmError';
const badRequestType = 'type.googleapis.com/google.rpc.BadRequest';
const payloadLimitBytes = 4096;
const rpcStatusOf: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

export class FcmStandIn {
  readonly projectId: string;
  readonly clientEmail: string;
  /** expires_in of the access tokens it issues. */
  tokenExpiresIn = 3599;
  /** When set, the token endpoint answers 400 invalid_grant. */
  refuseAssertions = false;
  tokenRequests = 0;
  /** Why the token endpoint refused assertions, for tests to read. */
  readonly tokenRefusals: string[] = [];
  sendRequests = 0;
  readonly accepted: AcceptedFcmMessage[] = [];
  private readonly privateKeyPem: string;
  private readonly publicKey: KeyObject;
  private readonly issued = new Map<string, number>();
  private readonly registered = new Set<string>();
  private readonly scripted = new Map<string, FcmAnswer[]>();
  private readonly now: () => number;
  private server: Server | undefined;
  private messageCount = 0;
  url = '';

  constructor(options: { projectId?: string; now?: () => number } = {}) {
    this.projectId = options.projectId ?? 'herald-test';
    this.clientEmail = `herald@${this.projectId}.iam.gserviceaccount.com`;
    this.now = options.now ?? Date.now;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.publicKey = publicKey;
  }

  get tokenUrl(): string {
    return `${this.url}/token`;
  }

  /** The CA a client must trust to reach this stand-in. */
  get ca(): string {
    return testCertificate().ca;
  }

  /** A service-account JSON document for this stand-in, as Google's console downloads it. */
  serviceAccount(overrides: Record<string, string> = {}): string {
    return JSON.stringify({
      type: 'service_account',
      project_id: this.projectId,
      private_key_id: 'stand-in',
      private_key: this.privateKeyPem,
      client_email: this.clientEmail,
      token_uri: this.tokenUrl,
      ...overrides,
    });
  }

  register(...tokens: string[]): void {
    for (const token of tokens) this.registered.add(token);
  }

  unregister(token: string): void {
    this.registered.delete(token);
  }

  /** Answers the next sends to `token` with these, in order, before the normal checks. */
  script(token: string, answers: FcmAnswer[]): void {
    this.scripted.set(token, [...answers]);
  }

  /** Every access token issued so far stops working (as if revoked). */
  revokeAccessTokens(): void {
    this.issued.clear();
  }

  async start(): Promise<void> {
    const { cert, key } = testCertificate();
    const server = createServer({ cert, key }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const handle = req.url === '/token' ? this.token(req, body, res) : this.send(req, body, res);
        handle.catch(() => {
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

  private async token(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    this.tokenRequests += 1;
    const refuse = (status: number, error: string, description: string) => {
      this.tokenRefusals.push(description);
      json(res, status, { error, error_description: description });
    };
    if (req.method !== 'POST' || req.headers['content-type'] !== 'application/x-www-form-urlencoded') {
      refuse(400, 'invalid_request', 'expected a form POST');
      return;
    }
    const form = new URLSearchParams(body);
    if (form.get('grant_type') !== grantType) {
      refuse(400, 'unsupported_grant_type', 'Invalid grant_type');
      return;
    }
    let claims: Record<string, unknown>;
    try {
      const verified = await jwtVerify(form.get('assertion') ?? '', this.publicKey, {
        algorithms: ['RS256'],
        typ: 'JWT',
        issuer: this.clientEmail,
        audience: this.tokenUrl,
        requiredClaims: ['iat', 'exp', 'scope'],
        currentDate: new Date(this.now()),
      });
      claims = verified.payload;
    } catch (error) {
      refuse(400, 'invalid_grant', `Invalid JWT: ${error instanceof Error ? error.message : 'unreadable'}`);
      return;
    }
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    if (exp - iat > 3600) {
      refuse(400, 'invalid_grant', 'Invalid JWT: expiration is more than an hour after iat');
      return;
    }
    if (iat > this.now() / 1000 + 300) {
      refuse(
        400,
        'invalid_grant',
        'Invalid JWT: Token must be a short-lived token and in a reasonable timeframe',
      );
      return;
    }
    if (typeof claims.scope !== 'string' || !claims.scope.split(' ').includes(scope)) {
      refuse(400, 'invalid_scope', 'scope lacks firebase.messaging');
      return;
    }
    if (this.refuseAssertions) {
      refuse(400, 'invalid_grant', 'Invalid JWT Signature.');
      return;
    }
    const accessToken = `ya29.${randomBytes(24).toString('base64url')}`;
    this.issued.set(accessToken, this.now() + this.tokenExpiresIn * 1000);
    json(res, 200, { access_token: accessToken, expires_in: this.tokenExpiresIn, token_type: 'Bearer' });
  }

  private async send(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    this.sendRequests += 1;
    const match = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(req.url ?? '');
    if (req.method !== 'POST' || match === null) {
      rpcError(res, { status: 404 }, 'Not found');
      return;
    }
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const expiresAt = bearer === undefined ? undefined : this.issued.get(bearer);
    if (expiresAt === undefined || expiresAt <= this.now()) {
      rpcError(
        res,
        { status: 401 },
        'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.',
      );
      return;
    }
    if (match[1] !== this.projectId) {
      rpcError(res, { status: 403 }, 'Permission denied on the project (or it may not exist).');
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      badRequest(res, '', 'Invalid JSON payload received.');
      return;
    }
    const message = isRecord(parsed) ? parsed.message : undefined;
    if (!isRecord(message)) {
      badRequest(res, 'message', 'message is required');
      return;
    }
    const targets = (['token', 'topic', 'condition'] as const).filter((k) => message[k] !== undefined);
    if (targets.length !== 1) {
      badRequest(res, 'message', 'exactly one of token, topic or condition is required');
      return;
    }
    const token = typeof message.token === 'string' ? message.token : undefined;
    const next = token === undefined ? undefined : this.scripted.get(token)?.shift();
    if (next !== undefined) {
      if (next.hang === true) return;
      rpcError(res, next, `scripted ${String(next.status)}`);
      return;
    }
    const data = message.data;
    if (data !== undefined) {
      if (!isRecord(data)) {
        badRequest(res, 'message.data', 'data must be a map');
        return;
      }
      const nonString = Object.entries(data).find(([, v]) => typeof v !== 'string');
      if (nonString !== undefined) {
        badRequest(res, `message.data[0].value`, `Invalid value at 'message.data[0].value' (TYPE_STRING)`);
        return;
      }
    }
    const android = message.android;
    if (
      isRecord(android) &&
      android.ttl !== undefined &&
      (typeof android.ttl !== 'string' || !/^\d+(\.\d{1,9})?s$/.test(android.ttl))
    ) {
      badRequest(res, 'message.android.ttl', 'Invalid value at message.android.ttl (Duration)');
      return;
    }
    const size = Buffer.byteLength(JSON.stringify({ notification: message.notification, data }));
    if (size > payloadLimitBytes) {
      badRequest(res, 'message', `Message is too big (${String(size)} bytes)`);
      return;
    }
    if (token !== undefined && !this.registered.has(token)) {
      if (!/^[\w:-]+$/.test(token))
        rpcError(
          res,
          { status: 400, errorCode: 'INVALID_ARGUMENT' },
          'The registration token is not a valid FCM registration token',
        );
      else rpcError(res, { status: 404, errorCode: 'UNREGISTERED' }, 'Requested entity was not found.');
      return;
    }
    this.messageCount += 1;
    const name = `projects/${this.projectId}/messages/0:${String(this.messageCount)}%stand-in`;
    this.accepted.push({
      token: token ?? '',
      message,
      name,
      at: this.now(),
      traceparent: req.headers.traceparent,
    });
    json(res, 200, { name });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers })
    .end(JSON.stringify(body));
}

/** A google.rpc.Status error body as FCM sends it. */
function rpcError(res: ServerResponse, answer: FcmAnswer, message: string): void {
  const details: Record<string, unknown>[] = [];
  if (answer.errorCode !== undefined) details.push({ '@type': fcmErrorType, errorCode: answer.errorCode });
  if (answer.fieldViolations !== undefined)
    details.push({ '@type': badRequestType, fieldViolations: answer.fieldViolations });
  json(
    res,
    answer.status,
    {
      error: {
        code: answer.status,
        message,
        status: answer.rpcStatus ?? rpcStatusOf[answer.status] ?? 'UNKNOWN',
        ...(details.length > 0 ? { details } : {}),
      },
    },
    answer.retryAfter === undefined ? {} : { 'retry-after': answer.retryAfter },
  );
}

function badRequest(res: ServerResponse, field: string, description: string): void {
  rpcError(
    res,
    { status: 400, errorCode: 'INVALID_ARGUMENT', fieldViolations: [{ field, description }] },
    description,
  );
}
