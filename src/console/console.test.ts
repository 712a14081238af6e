// The console's sign-in, sessions and people page over HTTP: accounts and roles, the lockout and
// the per-address limit, CSRF and origin checks, logout and idle expiry, and escaping.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { ConsoleClient } from '../../test/helpers/console-browser.js';
import { createConsoleUser } from '../db/stores/console-user-store.js';
import type { ConsoleRole } from '../domain/console-roles.js';
import { hashPassword } from './passwords.js';

let db: TestDatabase;
let h: TestHerald;
/** Added to the wall clock the console reads: sessions and lockouts expire when it grows. */
let clockOffsetMs = 0;
const adminPassword = 'correct horse battery staple';

async function account(email: string, role: ConsoleRole, password = adminPassword): Promise<void> {
  await createConsoleUser(db.pool, { email, name: '', role, passwordHash: await hashPassword(password) });
}

function client(): ConsoleClient {
  return new ConsoleClient(h.herald.consoleUrl ?? '');
}

async function signedIn(email: string, password = adminPassword): Promise<ConsoleClient> {
  const c = client();
  const answer = await c.signIn(email, password);
  assert.equal(answer.status, 303, answer.text);
  return c;
}

async function auditActions(): Promise<string[]> {
  const r = await db.pool.query<{ action: string }>('SELECT action FROM audit_log ORDER BY id');
  return r.rows.map((row) => row.action);
}

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, {
    roles: ['console'],
    now: () => new Date(Date.now() + clockOffsetMs),
    env: {
      CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE: '1000',
      CONSOLE_LOCKOUT_FAILURES: '5',
      CONSOLE_LOCKOUT_MINUTES: '15',
    },
  });
  await account('admin@example.com', 'admin');
  await account('viewer@example.com', 'viewer');
});

after(async () => {
  await h.stop();
  await db.drop();
});

describe('accounts and roles', () => {
  test('an admin creates an operator, who signs in with the password shown once and cannot manage people', async () => {
    const admin = await signedIn('admin@example.com');
    const home = await admin.get('/');
    assert.equal(home.status, 200);
    assert.match(home.text, /admin@example\.com/);
    assert.match(home.text, /href="\/console-users"/);
    const created = await admin.submit('/console-users', '/console-users', {
      email: 'Ops@Example.com',
      name: 'Ops',
      role: 'operator',
    });
    assert.equal(created.status, 201, created.text);
    const password = /<code class="password">([^<]+)<\/code>/.exec(created.text)?.[1];
    assert.ok(password !== undefined && password.length >= 20);
    const stored = await db.pool.query<{ password_hash: string }>(
      "SELECT password_hash FROM console_users WHERE email = 'ops@example.com'",
    );
    assert.ok(stored.rows[0]?.password_hash.startsWith('scrypt$'));
    assert.ok(!stored.rows[0]?.password_hash.includes(password));
    const audit = await db.pool.query<{ actor_name: string; after: { role: string } }>(
      "SELECT actor_name, after FROM audit_log WHERE action = 'console_user.create'",
    );
    assert.deepEqual(
      audit.rows.map((r) => [r.actor_name, r.after.role]),
      [['admin@example.com', 'operator']],
    );
    assert.ok(!JSON.stringify(audit.rows).includes(password), 'the audit log never holds a password');

    const operator = await signedIn('ops@example.com', password);
    const page = await operator.get('/');
    assert.doesNotMatch(page.text, /href="\/console-users"/, 'no People link for an operator');
    assert.equal((await operator.get('/console-users')).status, 403);
  });

  test('a viewer sees no controls to change anything, and the console refuses its changes', async () => {
    const viewer = await signedIn('viewer@example.com');
    const home = await viewer.get('/');
    assert.doesNotMatch(home.text, /console-users|\/audit/);
    const csrf = ConsoleClient.csrfOf(home.text);
    const refused = await viewer.request('POST', '/console-users', {
      _csrf: csrf,
      email: 'x@example.com',
      role: 'admin',
    });
    assert.equal(refused.status, 403);
    assert.equal(JSON.parse(refused.text).code, 'forbidden');
    const count = await db.pool.query("SELECT 1 FROM console_users WHERE email = 'x@example.com'");
    assert.equal(count.rowCount, 0);
  });

  test('what a person typed is shown escaped, never as markup', async () => {
    const admin = await signedIn('admin@example.com');
    const created = await admin.submit('/console-users', '/console-users', {
      email: 'mark@example.com',
      name: '<img src=x onerror=alert(1)>',
      role: 'viewer',
    });
    assert.equal(created.status, 201);
    assert.ok(!created.text.includes('<img src=x'));
    assert.match(created.text, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(created.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  });

  test('disabling an account ends its sessions at once', async () => {
    await account('leaver@example.com', 'support');
    const leaver = await signedIn('leaver@example.com');
    assert.equal((await leaver.get('/')).status, 200);
    const admin = await signedIn('admin@example.com');
    const id = (
      await db.pool.query<{ id: string }>("SELECT id FROM console_users WHERE email = 'leaver@example.com'")
    ).rows[0]?.id;
    const changed = await admin.submit('/console-users', `/console-users/${String(id)}`, {
      role: 'support',
      disabled: 'true',
    });
    assert.equal(changed.status, 303);
    assert.equal((await leaver.get('/')).status, 303);
    assert.equal((await client().signIn('leaver@example.com', adminPassword)).status, 401);
  });
});

describe('sign-in', () => {
  test('five wrong passwords lock the account: the right one fails until the lock ends', async () => {
    await account('locked@example.com', 'viewer');
    for (let i = 0; i < 5; i += 1)
      assert.equal((await client().signIn('locked@example.com', `wrong password ${String(i)}`)).status, 401);
    const whileLocked = await client().signIn('locked@example.com', adminPassword);
    assert.equal(whileLocked.status, 401);
    assert.match(whileLocked.text, /wrong, or the account is locked/);
    clockOffsetMs += 16 * 60_000;
    assert.equal((await client().signIn('locked@example.com', adminPassword)).status, 303);
    const failed = (await auditActions()).filter((a) => a === 'console.sign_in_failed').length;
    assert.ok(failed >= 6, `failed sign-ins are audited (${String(failed)})`);
  });

  test('an unknown email answers as a wrong password does', async () => {
    const unknown = await client().signIn('nobody@example.com', adminPassword);
    const wrong = await client().signIn('admin@example.com', 'not the password');
    assert.equal(unknown.status, 401);
    assert.equal(wrong.status, 401);
    const message = (text: string) => /role="alert">([^<]+)</.exec(text)?.[1];
    assert.equal(message(unknown.text), message(wrong.text));
  });

  test('a sign-in form without its cookie, or posted from another site, is refused', async () => {
    const c = client();
    const page = await c.get('/login');
    const token = ConsoleClient.csrfOf(page.text);
    const stranger = client();
    const noCookie = await stranger.request('POST', '/login', {
      _csrf: token,
      email: 'admin@example.com',
      password: adminPassword,
    });
    assert.equal(noCookie.status, 403);
    const crossSite = await c.request(
      'POST',
      '/login',
      { _csrf: token, email: 'admin@example.com', password: adminPassword },
      { origin: 'https://evil.example' },
    );
    assert.equal(crossSite.status, 403);
    assert.equal(c.cookie('herald_console'), undefined);
  });

  test('without CONSOLE_OIDC_ISSUER there is no single sign-on: no button, no route', async () => {
    const c = client();
    assert.doesNotMatch((await c.get('/login')).text, /\/login\/oidc|Sign in with/);
    assert.equal((await c.get('/login/oidc')).status, 404);
    assert.equal((await c.get('/login/oidc/callback?code=x&state=y')).status, 404);
  });

  test('after sign-in the browser goes where it was headed, never to another site', async () => {
    const headed = await client().submit('/login?next=%2Faudit%3Fq%3Dsign', '/login', {
      email: 'admin@example.com',
      password: adminPassword,
      next: '/audit?q=sign',
    });
    assert.equal(headed.headers.get('location'), '/audit?q=sign');
    // URL parsers drop tabs and newlines and read a backslash as a slash: each would be `//`.
    for (const next of ['//evil.example/', '/\t/evil.example/', '/\n/evil.example/', '/\\evil.example/']) {
      const c = client();
      const page = await c.get(`/login?next=${encodeURIComponent(next)}`);
      assert.match(page.text, /name="next" value="\/"/, JSON.stringify(next));
      const answer = await c.request('POST', '/login', {
        _csrf: ConsoleClient.csrfOf(page.text),
        email: 'admin@example.com',
        password: adminPassword,
        next,
      });
      assert.equal(answer.status, 303);
      assert.equal(answer.headers.get('location'), '/', JSON.stringify(next));
    }
  });
});

describe('sessions and CSRF', () => {
  test('a change without the CSRF token, with a wrong one, or from another origin changes nothing', async () => {
    const admin = await signedIn('admin@example.com');
    const page = await admin.get('/console-users');
    const csrf = ConsoleClient.csrfOf(page.text);
    const body = { email: 'csrf@example.com', role: 'admin' };
    const missing = await admin.request('POST', '/console-users', body);
    assert.equal(missing.status, 403);
    assert.equal(JSON.parse(missing.text).code, 'csrf_failed');
    assert.equal((await admin.request('POST', '/console-users', { ...body, _csrf: `${csrf}x` })).status, 403);
    const foreign = await admin.request(
      'POST',
      '/console-users',
      { ...body, _csrf: csrf },
      { origin: 'https://evil.example' },
    );
    assert.equal(foreign.status, 403);
    const crossSite = await admin.request(
      'POST',
      '/console-users',
      { ...body, _csrf: csrf },
      { 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(crossSite.status, 403);
    const rows = await db.pool.query("SELECT 1 FROM console_users WHERE email = 'csrf@example.com'");
    assert.equal(rows.rowCount, 0);
  });

  test('signing out ends the session: the old cookie opens nothing', async () => {
    const admin = await signedIn('admin@example.com');
    const cookie = admin.cookie('herald_console');
    assert.ok(cookie !== undefined);
    const out = await admin.submit('/', '/logout', {});
    assert.equal(out.status, 303);
    const replay = client();
    replay.setCookie('herald_console', cookie);
    const answer = await replay.get('/');
    assert.equal(answer.status, 303);
    assert.match(answer.headers.get('location') ?? '', /^\/login/);
  });

  test('a session ends after its idle time without a request', async () => {
    const admin = await signedIn('admin@example.com');
    clockOffsetMs += 29 * 60_000;
    assert.equal((await admin.get('/')).status, 200, 'a request within the idle time keeps it');
    clockOffsetMs += 31 * 60_000;
    assert.equal((await admin.get('/')).status, 303);
    const left = await db.pool.query(
      "SELECT 1 FROM console_sessions WHERE last_seen_at < now() - interval '1 hour'",
    );
    assert.equal(left.rowCount, 0, 'the dead session is removed');
  });
});

describe('the per-address limit', () => {
  test('sign-in attempts over the limit answer 429 with Retry-After', async () => {
    const limited = await startTestHerald(db, {
      roles: ['console'],
      env: { CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE: '3' },
    });
    try {
      const c = new ConsoleClient(limited.herald.consoleUrl ?? '');
      const statuses: number[] = [];
      for (let i = 0; i < 4; i += 1) statuses.push((await c.signIn('admin@example.com', 'wrong')).status);
      assert.deepEqual(statuses, [401, 401, 401, 429]);
      const answer = await c.signIn('admin@example.com', adminPassword);
      assert.equal(answer.status, 429, 'the right password too, while over the limit');
      assert.ok(Number(answer.headers.get('retry-after')) >= 1);
    } finally {
      await limited.stop();
    }
  });
});
