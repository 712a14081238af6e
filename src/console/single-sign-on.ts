// Single sign-on to the console with an OpenID Connect identity provider (docs/console.md): the
// authorization code flow with PKCE (S256), a state and a nonce, done by openid-client, which
// also checks the ID token's signature (against the provider's JWKS), issuer, audience, expiry
// and nonce. This module only says who the provider vouches for; which account that opens is
// the sign-in routes' decision. The provider's metadata is discovered once; while the provider
// has not answered, a sign-in tries again (at most every `rediscoverAfterMs`), so a provider that
// is down at start never stops the console, and password sign-in works throughout.
import * as oidc from 'openid-client';
import { isLoopbackHostname } from '../domain/ip-address.js';
import type { Logger } from '../observability/logger.js';

export interface SingleSignOnSettings {
  issuer: URL;
  clientId: string;
  clientSecret: string;
  /** The console's callback as registered at the provider (…/login/oidc/callback). */
  redirectUrl: URL;
  /** What the sign-in page calls the provider. */
  name: string;
}

/** What the browser keeps between leaving for the provider and coming back (in a cookie). */
export interface SignInFlow {
  state: string;
  nonce: string;
  verifier: string;
  /** Where to go once signed in (a path of the console). */
  next: string;
}

/** Why the provider's answer names nobody. Safe to show in the audit log: no provider text. */
export type SingleSignOnRefusal =
  'provider_unreachable' | 'provider_refused' | 'answer_invalid' | 'email_missing' | 'email_unverified';

export type SingleSignOnOutcome =
  | { kind: 'verified'; email: string }
  | {
      kind: 'refused';
      reason: SingleSignOnRefusal;
      /** For the operator's log: the library's error code or the OAuth error code, never a message or body. */
      code?: string;
    };

const rediscoverAfterMs = 10_000;
const requestTimeoutSeconds = 10;

/** A code from outside worth logging: an identifier (`invalid_grant`, `OAUTH_…`), not free text. */
function loggableCode(code: unknown): string | undefined {
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : undefined;
}

/** Sorts what openid-client threw: the provider said no, its answer failed a check, or it was not reached. */
function refusalOf(error: unknown): SingleSignOnOutcome & { kind: 'refused' } {
  if (error instanceof oidc.WWWAuthenticateChallengeError)
    return { kind: 'refused', reason: 'provider_refused', code: error.code };
  if (error instanceof oidc.AuthorizationResponseError || error instanceof oidc.ResponseBodyError) {
    const code = loggableCode(error.error);
    return { kind: 'refused', reason: 'provider_refused', ...(code === undefined ? {} : { code }) };
  }
  if (error instanceof oidc.ClientError) {
    const code = loggableCode(error.code);
    return { kind: 'refused', reason: 'answer_invalid', ...(code === undefined ? {} : { code }) };
  }
  return { kind: 'refused', reason: 'provider_unreachable' };
}

export class SingleSignOn {
  private configuration: oidc.Configuration | undefined;
  private discovering: Promise<oidc.Configuration | undefined> | undefined;
  private failedAtMs = Number.NEGATIVE_INFINITY;
  /** Aborts requests still waiting for the provider when the console stops. */
  private readonly closing = new AbortController();

  constructor(
    private readonly settings: SingleSignOnSettings,
    private readonly logger: Logger,
    private readonly now: () => Date,
  ) {}

  get name(): string {
    return this.settings.name;
  }

  /** The provider's configuration; undefined while it cannot be discovered. Never rejects. */
  discover(): Promise<oidc.Configuration | undefined> {
    if (this.configuration !== undefined) return Promise.resolve(this.configuration);
    if (this.discovering !== undefined) return this.discovering;
    if (this.now().getTime() - this.failedAtMs < rediscoverAfterMs || this.closing.signal.aborted)
      return Promise.resolve(undefined);
    const { issuer, clientId, clientSecret } = this.settings;
    // http is allowed only towards a loopback issuer (loadConfig refuses it elsewhere): a local
    // provider in development and the tests' stand-in.
    const insecure = issuer.protocol === 'http:' && isLoopbackHostname(issuer.hostname);
    this.discovering = oidc
      .discovery(issuer, clientId, { client_secret: clientSecret }, oidc.ClientSecretBasic(clientSecret), {
        [oidc.customFetch]: (url, options) =>
          fetch(url, {
            ...options,
            signal:
              options.signal === undefined
                ? this.closing.signal
                : AbortSignal.any([options.signal, this.closing.signal]),
          }),
        timeout: requestTimeoutSeconds,
        execute: [
          // The ID token comes straight from the token endpoint, which the library trusts by
          // default for TLS alone; the console checks its signature against the JWKS as well.
          oidc.enableNonRepudiationChecks,
          // eslint-disable-next-line @typescript-eslint/no-deprecated -- deprecated only to stand out; used for loopback issuers alone
          ...(insecure ? [oidc.allowInsecureRequests] : []),
        ],
      })
      .then(
        (configuration) => {
          this.configuration = configuration;
          this.logger.info({ issuer: issuer.href }, 'console single sign-on: identity provider discovered');
          return configuration;
        },
        (error: unknown) => {
          this.failedAtMs = this.now().getTime();
          const { code } = refusalOf(error);
          this.logger.warn(
            { issuer: issuer.href, ...(code === undefined ? {} : { code }) },
            'console single sign-on: the identity provider cannot be discovered; password sign-in still works',
          );
          return undefined;
        },
      )
      .finally(() => {
        this.discovering = undefined;
      });
    return this.discovering;
  }

  /** Where to send the browser, and what it must bring back; undefined while the provider is unreachable. */
  async startSignIn(next: string): Promise<{ url: URL; flow: SignInFlow } | undefined> {
    const configuration = await this.discover();
    if (configuration === undefined) return undefined;
    const flow = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      verifier: oidc.randomPKCECodeVerifier(),
      next,
    };
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.settings.redirectUrl.href,
      scope: 'openid email',
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: 'S256',
    });
    return { url, flow };
  }

  /**
   * Completes the code grant for the provider's answer (`search`: the callback's query string,
   * read against the registered redirect URL, never the request's Host) and returns the email
   * the ID token vouches for. Refused unless the provider marks it verified: an unverified email
   * is only what someone typed at the provider.
   */
  async finishSignIn(search: string, flow: SignInFlow): Promise<SingleSignOnOutcome> {
    const configuration = await this.discover();
    if (configuration === undefined) return { kind: 'refused', reason: 'provider_unreachable' };
    const answer = new URL(this.settings.redirectUrl);
    answer.search = search;
    let claims: oidc.IDToken | undefined;
    try {
      const tokens = await oidc.authorizationCodeGrant(configuration, answer, {
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        pkceCodeVerifier: flow.verifier,
        idTokenExpected: true,
      });
      claims = tokens.claims();
    } catch (error) {
      return refusalOf(error);
    }
    const email = claims?.['email'];
    if (typeof email !== 'string' || email === '') return { kind: 'refused', reason: 'email_missing' };
    if (claims?.['email_verified'] !== true) return { kind: 'refused', reason: 'email_unverified' };
    return { kind: 'verified', email };
  }

  close(): Promise<void> {
    this.closing.abort();
    return Promise.resolve();
  }
}
