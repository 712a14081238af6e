// Single sign-on to the console through a stand-in OpenID Connect provider on loopback
// (test/stand-ins/oidc.ts): the browser's round trip followed by hand, the accounts it may and
// may not open, the checks on the provider's answer (state, ID token signature, one-use code),
// the audit log, the way back never leaving the console, a provider that is down at start, and
// that no token, secret or provider text reaches a page or the log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/load-config.js';
import { startHerald, type Herald } from '../composition/create-herald.js';
import { createConsoleUser } from '../db/stores/console-user-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';
import { createLogger } from '../observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { ConsoleClient, type ConsoleAnswer } from '../../test/helpers/console-browser.js';
import { freePort } from '../../test/helpers/free-port.js';
import { OidcStandIn, secretMarker } from '../../test/stand-ins/oidc.js';
import { hashPassword } from './passwords.js';

const clientSecret = 'stand-in-client-secret-3b9c1e';
const password = 'correct horse battery staple';

interface Console {
  herald: Herald;
  idp: OidcStandIn;
  /** The provider's port, the issuer's (open once the provider is started). */
  idpPort: number;
  /** Every line the console logged. */
  logs: string[];
  /** Every page the console answered in these tests. */
  pages: string[];
  client(): ConsoleClient;
}

let db: TestDatabase;
let main: Console;

/**
 * The console with single sign-on through a stand-in provider. With `idpDown` the provider is
 * not started (its port stays closed) until the test starts it.
 */
async function startConsole(
  options: { env?: Record<string, string>; now?: () => Date; idpDown?: boolean } = {},
): Promise<Console> {
  const consolePort = await freePort();
  const redirectUri = `http://127.0.0.1:${String(consolePort)}/login/oidc/callback`;
  const idp = new OidcStandIn({ id: 'herald-console', secret: clientSecret, redirectUri });
  const idpPort = await freePort();
  if (options.idpDown !== true) await idp.start(idpPort);
  const logs: string[] = [];
  const pages: string[] = [];
  const herald = await startHerald({
    config: loadConfig({
      DATABASE_URL: db.url,
      CONSOLE_PORT: String(consolePort),
      CONSOLE_OIDC_ISSUER: `http://127.0.0.1:${String(idpPort)}`,
      CONSOLE_OIDC_CLIENT_ID: 'herald-console',
      CONSOLE_OIDC_CLIENT_SECRET: clientSecret,
      CONSOLE_OIDC_REDIRECT_URL: redirectUri,
      CONSOLE_OIDC_NAME: 'Stand-in ID',
      CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE: '1000',
      ...options.env,
    }),
    roles: ['console'],
    logger: createLogger('debug', { write: (line: string) => void logs.push(line) }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  return {
    herald,
    idp,
    idpPort,
    logs,
    pages,
    client() {
      const c = new ConsoleClient(herald.consoleUrl ?? '');
      const request = c.request.bind(c);
      c.request = async (...args) => {
        const answer = await request(...args);
        pages.push(answer.text);
        return answer;
      };
      return c;
    },
  };
}

async function account(email: string, role: ConsoleRole): Promise<number> {
  const user = await createConsoleUser(db.pool, {
    email,
    name: '',
    role,
    passwordHash: await hashPassword(password),
  });
  assert.ok(user !== undefined);
  return user.id;
}

/** To the provider and back, as a browser goes: the callback's answer and the callback's path. */
async function throughProvider(
  c: ConsoleClient,
  next = '/',
): Promise<{ answer: ConsoleAnswer; callback: string }> {
  const start = await c.get(`/login/oidc?next=${encodeURIComponent(next)}`);
  assert.equal(start.status, 303, start.text);
  const authorize = await fetch(start.headers.get('location') ?? '', { redirect: 'manual' });
  assert.equal(authorize.status, 303, await authorize.text());
  const back = new URL(authorize.headers.get('location') ?? '');
  assert.equal(`${back.origin}${back.pathname}`, `${c.base}/login/oidc/callback`);
  const callback = `${back.pathname}${back.search}`;
  return { answer: await c.get(callback), callback };
}

function alertOf(page: string): string | undefined {
  return /role="alert">([^<]+)</.exec(page)?.[1];
}

async function lastAudit(): Promise<{
  action: string;
  actor_id: string;
  actor_name: string;
  after: unknown;
  client_address: string | null;
}> {
  const r = await db.pool.query<{
    action: string;
    actor_id: string;
    actor_name: string;
    after: unknown;
    client_address: string | null;
  }>('SELECT action, actor_id, actor_name, after, client_address FROM audit_log ORDER BY id DESC LIMIT 1');
  const row = r.rows[0];
  assert.ok(row !== undefined, 'an audit entry');
  return row;
}

before(async () => {
  db = await createTestDatabase();
  main = await startConsole();
  await account('admin@example.com', 'admin');
  await account('viewer@example.com', 'viewer');
});

after(async () => {
  await main.herald.stop();
  await main.idp.stop();
  await db.drop();
});

describe('signing in through the provider', () => {
  test('the sign-in page offers the provider, and an account signs in with the role it has', async () => {
    const c = main.client();
    const login = await c.get('/login?next=%2Fconsole-users');
    assert.match(
      login.text,
      /<a class="button" href="\/login\/oidc\?next=%2Fconsole-users">Sign in with Stand-in ID<\/a>/,
    );

    main.idp.user = { sub: 'u-admin', email: 'Admin@Example.com', email_verified: true };
    const start = await c.get('/login/oidc?next=%2Fconsole-users');
    assert.equal(start.status, 303);
    const authorization = new URL(start.headers.get('location') ?? '');
    assert.equal(authorization.origin, main.idp.url);
    assert.equal(authorization.searchParams.get('code_challenge_method'), 'S256');
    const flowCookie = start.headers.getSetCookie().find((line) => line.startsWith('herald_console_oidc='));
    assert.ok(flowCookie !== undefined);
    assert.match(flowCookie, /; Max-Age=600/);
    assert.match(flowCookie, /; Path=\/login\/oidc/);
    assert.match(flowCookie, /; HttpOnly/);
    assert.match(flowCookie, /; SameSite=Lax/);
    for (const name of ['state', 'nonce', 'code_challenge'] as const)
      assert.ok(!flowCookie.includes(authorization.searchParams.get(name) ?? '-'), `${name} is not readable`);

    const authorize = await fetch(authorization, { redirect: 'manual' });
    const back = new URL(authorize.headers.get('location') ?? '');
    const callback = await c.get(`${back.pathname}${back.search}`);
    assert.equal(callback.status, 200, callback.text);
    assert.match(callback.text, /<meta http-equiv="refresh" content="0; url=\/console-users">/);
    assert.ok(c.cookie('herald_console') !== undefined, 'a session');
    assert.equal(c.cookie('herald_console_oidc'), undefined, 'the flow is spent');

    const people = await c.get('/console-users');
    assert.equal(people.status, 200, 'an admin, as the account is');
    assert.match(people.text, /admin@example\.com/);

    const entry = await lastAudit();
    assert.equal(entry.action, 'console.sign_in');
    assert.equal(entry.actor_name, 'admin@example.com');
    assert.deepEqual(entry.after, { method: 'oidc' });
    assert.equal(entry.client_address, '127.0.0.1');
    const seen = await db.pool.query<{ last_login_at: Date | null }>(
      "SELECT last_login_at FROM console_users WHERE email = 'admin@example.com'",
    );
    assert.ok(seen.rows[0]?.last_login_at instanceof Date);
  });

  test('a viewer signed in through the provider stays a viewer', async () => {
    main.idp.user = { sub: 'u-viewer', email: 'viewer@example.com', email_verified: true };
    const c = main.client();
    const { answer } = await throughProvider(c);
    assert.equal(answer.status, 200);
    assert.equal((await c.get('/console-users')).status, 403);
  });
});

describe('who the provider vouches for must be an enabled account with a verified email', () => {
  const refusals = [
    {
      name: 'an email without an account',
      user: { sub: 'u-1', email: 'nobody@example.com', email_verified: true },
      status: 403,
      reason: 'account_unknown',
      alert: /No enabled console account has your email address/,
    },
    {
      name: 'an unverified email',
      user: { sub: 'u-2', email: 'admin@example.com', email_verified: false },
      status: 403,
      reason: 'email_unverified',
      alert: /did not confirm a verified email address/,
    },
    {
      name: 'email_verified as the text "true"',
      user: { sub: 'u-3', email: 'admin@example.com', email_verified: 'true' },
      status: 403,
      reason: 'email_unverified',
      alert: /did not confirm a verified email address/,
    },
    {
      name: 'no email at all',
      user: { sub: 'u-4' },
      status: 403,
      reason: 'email_missing',
      alert: /did not confirm a verified email address/,
    },
  ];
  for (const refusal of refusals)
    test(`${refusal.name} is refused, and no account is created`, async () => {
      const before = await db.pool.query('SELECT 1 FROM console_users');
      main.idp.user = refusal.user;
      const c = main.client();
      const { answer } = await throughProvider(c);
      assert.equal(answer.status, refusal.status);
      assert.match(alertOf(answer.text) ?? '', refusal.alert);
      assert.match(answer.text, /Sign in with Stand-in ID/, 'the sign-in page, to try again');
      assert.equal(c.cookie('herald_console'), undefined);
      const entry = await lastAudit();
      assert.equal(entry.action, 'console.sign_in_failed');
      assert.deepEqual(entry.after, { method: 'oidc', reason: refusal.reason });
      assert.equal(entry.client_address, '127.0.0.1');
      assert.equal((await db.pool.query('SELECT 1 FROM console_users')).rowCount, before.rowCount);
    });

  test('a disabled account is refused', async () => {
    const id = await account('gone@example.com', 'operator');
    await db.pool.query('UPDATE console_users SET disabled = true WHERE id = $1', [id]);
    main.idp.user = { sub: 'u-gone', email: 'gone@example.com', email_verified: true };
    const c = main.client();
    const { answer } = await throughProvider(c);
    assert.equal(answer.status, 403);
    assert.equal(c.cookie('herald_console'), undefined);
    const entry = await lastAudit();
    assert.deepEqual(
      [entry.action, entry.actor_id, entry.actor_name, entry.after],
      [
        'console.sign_in_failed',
        String(id),
        'gone@example.com',
        { method: 'oidc', reason: 'account_disabled' },
      ],
    );
  });

  test('a locked account signs in: the lock guards the password, which was not used, and stays', async () => {
    const id = await account('locked@example.com', 'viewer');
    await db.pool.query(
      "UPDATE console_users SET failed_logins = 5, locked_until = now() + interval '1 hour' WHERE id = $1",
      [id],
    );
    main.idp.user = { sub: 'u-locked', email: 'locked@example.com', email_verified: true };
    const c = main.client();
    assert.equal((await throughProvider(c)).answer.status, 200);
    assert.equal((await c.get('/')).status, 200);
    assert.equal((await main.client().signIn('locked@example.com', password)).status, 401);
  });
});

describe('the answer must be the one this browser asked for, signed by the provider, and used once', () => {
  test('a callback with another state is refused before the code is redeemed', async () => {
    main.idp.user = { sub: 'u-admin', email: 'admin@example.com', email_verified: true };
    const c = main.client();
    const start = await c.get('/login/oidc');
    const authorize = await fetch(start.headers.get('location') ?? '', { redirect: 'manual' });
    const back = new URL(authorize.headers.get('location') ?? '');
    back.searchParams.set('state', 'a-state-this-browser-was-not-given');
    const tokenRequests = main.idp.tokenRequests;
    const answer = await c.get(`${back.pathname}${back.search}`);
    assert.equal(answer.status, 401);
    assert.match(alertOf(answer.text) ?? '', /did not succeed; try again/);
    assert.equal(main.idp.tokenRequests, tokenRequests, 'the code was not sent to the provider');
    assert.equal(c.cookie('herald_console'), undefined);
    assert.deepEqual((await lastAudit()).after, { method: 'oidc', reason: 'answer_invalid' });
  });

  test('a callback without the flow cookie (another browser, or expired) is refused', async () => {
    main.idp.user = { sub: 'u-admin', email: 'admin@example.com', email_verified: true };
    const start = await main.client().get('/login/oidc');
    const authorize = await fetch(start.headers.get('location') ?? '', { redirect: 'manual' });
    const back = new URL(authorize.headers.get('location') ?? '');
    const stranger = main.client();
    const answer = await stranger.get(`${back.pathname}${back.search}`);
    assert.equal(answer.status, 400);
    assert.match(alertOf(answer.text) ?? '', /expired or was started in another window/);
    assert.equal(stranger.cookie('herald_console'), undefined);
    assert.deepEqual((await lastAudit()).after, { method: 'oidc', reason: 'flow_missing' });
  });

  test('an ID token signed by a key the provider does not publish is refused', async () => {
    main.idp.user = { sub: 'u-admin', email: 'admin@example.com', email_verified: true };
    main.idp.signWithUnpublishedKey = true;
    try {
      const c = main.client();
      const { answer } = await throughProvider(c);
      assert.equal(answer.status, 401);
      assert.equal(c.cookie('herald_console'), undefined);
      assert.deepEqual((await lastAudit()).after, { method: 'oidc', reason: 'answer_invalid' });
    } finally {
      main.idp.signWithUnpublishedKey = false;
    }
  });

  test('a code is good once: the same answer again, even with the flow cookie kept, is refused', async () => {
    main.idp.user = { sub: 'u-admin', email: 'admin@example.com', email_verified: true };
    const c = main.client();
    const start = await c.get('/login/oidc');
    const flow = c.cookie('herald_console_oidc');
    assert.ok(flow !== undefined);
    const authorize = await fetch(start.headers.get('location') ?? '', { redirect: 'manual' });
    const back = new URL(authorize.headers.get('location') ?? '');
    const callback = `${back.pathname}${back.search}`;
    assert.equal((await c.get(callback)).status, 200);

    const replay = main.client();
    replay.setCookie('herald_console_oidc', flow);
    const sessions = await db.pool.query('SELECT 1 FROM console_sessions');
    const answer = await replay.get(callback);
    assert.equal(answer.status, 401);
    assert.equal(replay.cookie('herald_console'), undefined);
    assert.equal(main.idp.tokenRefusals.at(-1), 'unknown or used code');
    assert.deepEqual((await lastAudit()).after, { method: 'oidc', reason: 'provider_refused' });
    assert.equal((await db.pool.query('SELECT 1 FROM console_sessions')).rowCount, sessions.rowCount);
  });
});

describe('attacks on the way back', () => {
  test('a next pointing off the console is ignored, through the provider and with a password', async () => {
    main.idp.user = { sub: 'u-admin', email: 'admin@example.com', email_verified: true };
    for (const next of [
      '//evil.example/',
      '/\t/evil.example/',
      '/\\evil.example/',
      'https://evil.example/',
    ]) {
      const c = main.client();
      const login = await c.get(`/login?next=${encodeURIComponent(next)}`);
      assert.match(login.text, /href="\/login\/oidc\?next=%2F"/, JSON.stringify(next));
      const { answer } = await throughProvider(c, next);
      assert.equal(answer.status, 200, JSON.stringify(next));
      assert.match(answer.text, /content="0; url=\/"/, JSON.stringify(next));
      assert.doesNotMatch(answer.text, /evil/);
      const withPassword = await main.client().submit(`/login?next=${encodeURIComponent(next)}`, '/login', {
        email: 'admin@example.com',
        password,
        next,
      });
      assert.equal(withPassword.status, 303);
      assert.equal(withPassword.headers.get('location'), '/', JSON.stringify(next));
    }
  });

  test('no token, code, client secret or text of the provider reaches a page or the log', () => {
    assert.ok(main.idp.issued.length >= 10, 'the tests above made the provider issue codes and tokens');
    const everything = [...main.pages, ...main.logs].join('\n');
    for (const secret of [clientSecret, secretMarker, ...main.idp.issued])
      assert.ok(!everything.includes(secret), `leaked: ${secret.slice(0, 12)}…`);
    assert.ok(
      main.logs.some((line) => line.includes('console single sign-on refused')),
      'refusals are logged (without detail from the provider)',
    );
  });
});

describe('a provider that is down', () => {
  test('does not stop the console: password sign-in works, and single sign-on once it answers', async () => {
    let offsetMs = 0;
    const down = await startConsole({
      idpDown: true,
      now: () => new Date(Date.now() + offsetMs),
      env: { CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE: '3' },
    });
    try {
      const c = down.client();
      const refused = await c.get('/login/oidc');
      assert.equal(refused.status, 503);
      assert.match(
        alertOf(refused.text) ?? '',
        /not available right now; try again later or sign in with your password/,
      );
      assert.equal((await c.signIn('admin@example.com', password)).status, 303, 'passwords still work');

      await down.idp.start(down.idpPort);
      assert.equal((await down.client().get('/login/oidc')).status, 503, 'not asked again at once');
      offsetMs += 11_000;
      const started = await down.client().get('/login/oidc');
      assert.equal(started.status, 303);
      assert.ok((started.headers.get('location') ?? '').startsWith(`${down.idp.url}/authorize?`));
    } finally {
      await down.herald.stop();
      await down.idp.stop();
    }
  });
});

describe('the per-address limit', () => {
  test('callbacks count with password sign-ins: over the limit, 429 with Retry-After', async () => {
    const limited = await startConsole({ env: { CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE: '3' } });
    try {
      const c = limited.client();
      const statuses: number[] = [];
      statuses.push((await c.signIn('admin@example.com', 'wrong')).status);
      for (let i = 0; i < 3; i += 1)
        statuses.push((await c.get('/login/oidc/callback?code=x&state=y')).status);
      assert.deepEqual(statuses, [401, 400, 400, 429]);
      const answer = await c.get('/login/oidc/callback?code=x&state=y');
      assert.equal(answer.status, 429);
      assert.ok(Number(answer.headers.get('retry-after')) >= 1);
      assert.equal((await c.signIn('admin@example.com', password)).status, 429);
    } finally {
      await limited.herald.stop();
      await limited.idp.stop();
    }
  });
});
