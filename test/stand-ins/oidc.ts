// A stand-in OpenID Connect provider on loopback (plain http, as a local provider would be),
// speaking the authorization code flow with PKCE as OpenID Connect Core 1.0 §3.1 and RFC 7636
// describe it: a discovery document, /authorize that checks the request and, approving `user`
// at once, sends the browser back to the registered redirect URI with a code and the state;
// /token that checks the client's HTTP Basic credentials, the code (one use, bound to the client
// and redirect URI) and the code_verifier against the S256 challenge, and answers an RS256 ID
// token signed with jose (iss, sub, aud, exp, iat, nonce, email, email_verified); /jwks with the
// public key. Its refusals carry an error_description with `secretMarker`, so tests can check
// that provider text reaches neither pages nor logs.
import { createHash, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';
import { bodyServer, closeServer } from '../helpers/loopback-server.js';

export interface OidcUser {
  sub: string;
  email?: string;
  email_verified?: unknown;
}

interface IssuedCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string;
  user: OidcUser;
}

/** Text the provider puts in its error descriptions, which must never be shown or logged. */
export const secretMarker = 'stand-in-provider-text-7f3a';

const keyId = 'stand-in-1';

export class OidcStandIn {
  /** Whom /authorize approves. */
  user: OidcUser = { sub: 'user-1', email: 'admin@example.com', email_verified: true };
  /** Sign ID tokens with a key that is not in /jwks (but under the published key's kid). */
  signWithUnpublishedKey = false;
  tokenRequests = 0;
  /** Why the token endpoint refused, in order. */
  readonly tokenRefusals: string[] = [];
  /** Every code, ID token and access token issued, for tests to look for where they must not be. */
  readonly issued: string[] = [];
  url = '';
  private readonly published: { privateKey: KeyObject; publicKey: KeyObject };
  private readonly unpublished: { privateKey: KeyObject; publicKey: KeyObject };
  private readonly codes = new Map<string, IssuedCode>();
  private server: Server | undefined;

  constructor(readonly client: { id: string; secret: string; redirectUri: string }) {
    this.published = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.unpublished = generateKeyPairSync('rsa', { modulusLength: 2048 });
  }

  get issuer(): string {
    return this.url;
  }

  /** Listens on 127.0.0.1 (at `port`, or a free one). */
  async start(port = 0): Promise<void> {
    const server = bodyServer((req, res, body) => {
      this.handle(req, res, body.toString('utf8')).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  }

  stop(): Promise<void> {
    return closeServer(this.server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    switch (`${req.method ?? ''} ${url.pathname}`) {
      case 'GET /.well-known/openid-configuration':
        json(res, 200, {
          issuer: this.issuer,
          authorization_endpoint: `${this.url}/authorize`,
          token_endpoint: `${this.url}/token`,
          jwks_uri: `${this.url}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic'],
          code_challenge_methods_supported: ['S256'],
          scopes_supported: ['openid', 'email'],
          claims_supported: ['sub', 'email', 'email_verified'],
        });
        return;
      case 'GET /jwks':
        json(res, 200, {
          keys: [{ ...(await exportJWK(this.published.publicKey)), kid: keyId, alg: 'RS256', use: 'sig' }],
        });
        return;
      case 'GET /authorize':
        this.authorize(url.searchParams, res);
        return;
      case 'POST /token':
        await this.token(req, new URLSearchParams(body), res);
        return;
      default:
        json(res, 404, { error: 'not_found' });
    }
  }

  /** OpenID Connect Core §3.1.2.1: a request this client may make, approved for `user` at once. */
  private authorize(query: URLSearchParams, res: ServerResponse): void {
    const problem = (() => {
      if (query.get('client_id') !== this.client.id) return 'unknown client_id';
      if (query.get('redirect_uri') !== this.client.redirectUri) return 'redirect_uri not registered';
      if (query.get('response_type') !== 'code') return 'response_type must be code';
      if (!(query.get('scope') ?? '').split(' ').includes('openid')) return 'scope lacks openid';
      if (query.get('code_challenge_method') !== 'S256') return 'PKCE with S256 is required';
      if (!/^[A-Za-z0-9_-]{43}$/.test(query.get('code_challenge') ?? '')) return 'bad code_challenge';
      if ((query.get('nonce') ?? '') === '') return 'nonce is required';
      return undefined;
    })();
    // A request that cannot be trusted is not sent back to its redirect URI (§3.1.2.6).
    if (problem !== undefined) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(problem);
      return;
    }
    const code = randomBytes(24).toString('base64url');
    this.issued.push(code);
    this.codes.set(code, {
      clientId: this.client.id,
      redirectUri: this.client.redirectUri,
      challenge: query.get('code_challenge') ?? '',
      nonce: query.get('nonce') ?? '',
      user: { ...this.user },
    });
    const back = new URL(this.client.redirectUri);
    back.searchParams.set('code', code);
    const state = query.get('state');
    if (state !== null) back.searchParams.set('state', state);
    res.writeHead(303, { location: back.href }).end();
  }

  /** RFC 6749 §4.1.3 with RFC 7636 §4.6 and OpenID Connect Core §3.1.3. */
  private async token(req: IncomingMessage, form: URLSearchParams, res: ServerResponse): Promise<void> {
    this.tokenRequests += 1;
    const refuse = (status: number, error: string, why: string) => {
      this.tokenRefusals.push(why);
      json(res, status, { error, error_description: `${why} (${secretMarker})` });
    };
    if (!this.authenticates(req.headers.authorization)) {
      refuse(401, 'invalid_client', 'client authentication failed');
      return;
    }
    if (form.get('grant_type') !== 'authorization_code') {
      refuse(400, 'unsupported_grant_type', 'grant_type must be authorization_code');
      return;
    }
    const code = form.get('code') ?? '';
    const issued = this.codes.get(code);
    // One use: a code is gone once presented, whatever the outcome (RFC 6749 §4.1.2).
    this.codes.delete(code);
    if (issued === undefined) {
      refuse(400, 'invalid_grant', 'unknown or used code');
      return;
    }
    if (issued.clientId !== this.client.id || form.get('redirect_uri') !== issued.redirectUri) {
      refuse(400, 'invalid_grant', 'code issued for another client or redirect_uri');
      return;
    }
    const verifier = form.get('code_verifier') ?? '';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || challenge !== issued.challenge) {
      refuse(400, 'invalid_grant', 'code_verifier does not match the code_challenge');
      return;
    }
    const key = this.signWithUnpublishedKey ? this.unpublished.privateKey : this.published.privateKey;
    const { sub, ...claims } = issued.user;
    const idToken = await new SignJWT({ ...claims, nonce: issued.nonce })
      .setProtectedHeader({ alg: 'RS256', kid: keyId, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(sub)
      .setAudience(this.client.id)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key);
    const accessToken = randomBytes(24).toString('base64url');
    this.issued.push(idToken, accessToken);
    res.setHeader('cache-control', 'no-store');
    json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 300, id_token: idToken });
  }

  /** client_secret_basic: both parts form-urlencoded, then Base64 (RFC 6749 §2.3.1). */
  private authenticates(header: string | undefined): boolean {
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '');
    if (match?.[1] === undefined) return false;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const at = decoded.indexOf(':');
    const id = decodeURIComponent(decoded.slice(0, at).replace(/\+/g, ' '));
    const secret = decodeURIComponent(decoded.slice(at + 1).replace(/\+/g, ' '));
    return at !== -1 && id === this.client.id && secret === this.client.secret;
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
