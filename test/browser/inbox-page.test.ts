// The inbox page (/inbox) in headless Chromium against Herald in-process: the page logs in and
// hands the token to <herald-inbox> (packages/inbox, served by the query role under /inbox/); a
// notification sent through the api appears in it live, without a reload, and marking it read
// drops the unread count; following an item's link reports the click. The page loads nothing from
// another origin and puts the token in no URL but the stream's.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Browser } from 'playwright-core';
import { launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../helpers/test-herald.js';
import { waitFor } from '../helpers/wait-for.js';

let db: TestDatabase | undefined;
let h: TestHerald | undefined;
let browser: Browser | undefined;

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await h?.stop();
  await db?.drop();
});

function queryUrl(): string {
  const url = h?.herald.queryUrl;
  if (url === undefined) throw new Error('the query role is not running');
  return url;
}

test("/inbox, its script, its stylesheet and the element's modules come with a strict CSP, nosniff and revalidation", async () => {
  for (const [path, type] of [
    ['/inbox', 'text/html'],
    ['/inbox/inbox.js', 'text/javascript'],
    ['/inbox/herald-inbox.js', 'text/javascript'],
    ['/inbox/inbox-client.js', 'text/javascript'],
    ['/inbox/inbox.css', 'text/css'],
  ] as const) {
    const response = await fetch(`${queryUrl()}${path}`);
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get('content-type'), `${type}; charset=utf-8`, path);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(response.headers.get('cache-control'), 'no-cache', path);
    const csp = response.headers.get('content-security-policy') ?? '';
    for (const directive of ["default-src 'none'", "script-src 'self'", "connect-src 'self'"])
      assert.ok(csp.split('; ').includes(directive), `${path}: ${csp}`);
    assert.doesNotMatch(csp, /unsafe/, path);
    const etag = response.headers.get('etag') ?? '';
    assert.notEqual(etag, '', path);
    const again = await fetch(`${queryUrl()}${path}`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304, path);
  }
  const html = await (await fetch(`${queryUrl()}/inbox`)).text();
  assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)/, 'no inline script');
  assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=/, 'no inline style or handler');
});

test('a notification sent through the api appears live on /inbox; marking it read drops the unread count; a followed link is a click', async () => {
  assert.ok(h !== undefined && browser !== undefined);
  // The app's backend asks the query role for a user token with its service key.
  const issued = await h.call('POST', '/v1/users/u1/token', {}, { base: queryUrl() });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  const token: string = issued.body.token;
  const origin = new URL(queryUrl()).origin;

  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const requests: { url: URL; type: string }[] = [];
    page.on('request', (request) =>
      requests.push({ url: new URL(request.url()), type: request.resourceType() }),
    );
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) problems.push(message.text());
    });
    const badge = page.locator('#unread-count');
    const logIn = page.getByRole('button', { name: 'Log in' });

    await page.goto(`${queryUrl()}/inbox`);
    // A token Herald refuses leaves the form up, with the problem's detail.
    await page.getByLabel('User id').fill('u1');
    await page.getByLabel('Token').fill('not-a-token');
    await logIn.click();
    await page.getByRole('alert').waitFor();
    assert.ok(await logIn.isVisible());

    await page.getByLabel('Token').fill(token);
    await logIn.click();
    // The list, badge and connection state are the element's, in its shadow root.
    assert.equal(await page.evaluate(`document.querySelector('herald-inbox').shadowRoot !== null`), true);
    await page.locator('#connection[data-state="live"]').waitFor();
    await page.getByText('No notifications.').waitFor();
    assert.equal(await badge.textContent(), '0');

    const title = 'Your order <b>shipped</b>';
    const sent = await h.call('POST', '/v1/notifications', {
      recipients: ['u1'],
      channels: ['in_app'],
      content: { in_app: { title, body: 'Parcel 42 is on its way.' } },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));

    const row = page.getByRole('listitem').filter({ hasText: title });
    await row.waitFor({ timeout: 20_000 });
    await waitFor('the unread badge to show 1', async () => (await badge.textContent()) === '1');
    assert.match((await row.textContent()) ?? '', /Parcel 42 is on its way\./);
    assert.equal(await row.locator('b').count(), 0, 'the title is shown as text, not markup');

    await row.getByRole('button', { name: 'Mark read' }).click();
    await waitFor('the unread badge to drop to 0', async () => (await badge.textContent()) === '0');
    await row.getByRole('button', { name: 'Mark unread' }).waitFor();
    const count = await h.call('GET', '/v1/users/u1/inbox/count', undefined, {
      base: queryUrl(),
      key: token,
    });
    assert.equal(count.body.unread, 0);

    // Following an item's link opens it and reports the click once (the figures, callbacks).
    const linked = await h.call('POST', '/v1/notifications', {
      recipients: ['u1'],
      channels: ['in_app'],
      content: { in_app: { title: 'Your invoice', url: `${queryUrl()}/inbox?from=invoice` } },
    });
    assert.equal(linked.status, 202, JSON.stringify(linked.body));
    const linkRow = page.getByRole('listitem').filter({ hasText: 'Your invoice' });
    await linkRow.waitFor({ timeout: 20_000 });
    const opened = context.waitForEvent('page');
    await linkRow.getByRole('link').click();
    await (await opened).close();
    await waitFor('the click to be recorded', async () => {
      const clicks = await db?.pool.query(
        "SELECT 1 FROM engagement_events WHERE user_id = 'u1' AND notification_id = $1 AND kind = 'clicked'",
        [linked.body.id],
      );
      return clicks?.rowCount === 1;
    });

    assert.equal(requests.filter((r) => r.type === 'document').length, 1, 'the page never reloaded');
    assert.deepEqual(
      requests.filter((r) => r.url.origin !== origin).map((r) => r.url.href),
      [],
      'nothing from another origin',
    );
    const withToken = requests.filter((r) => r.url.href.includes(token));
    assert.ok(withToken.length > 0, 'the stream was opened');
    for (const r of withToken) assert.equal(r.url.pathname, '/v1/users/u1/inbox/stream', r.url.pathname);
    assert.deepEqual(problems, []);

    // Logging out forgets the token.
    await page.getByRole('button', { name: 'Log out' }).click();
    await logIn.waitFor();
    assert.equal(await page.evaluate('sessionStorage.length'), 0);
  } finally {
    await context.close();
  }
});
