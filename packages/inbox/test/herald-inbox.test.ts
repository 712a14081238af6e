// <herald-inbox> in headless Chromium, on a page of another origin than Herald's query role (a
// static app server on its own port, listed in CORS_ORIGINS): a notification sent through the api
// role arrives live and is announced; marking read, archiving and the preferences panel change
// the server's state, by mouse and by keyboard; after its tokens are revoked the element gets a
// new token from the page's token function and resumes the stream. A page of an origin that is
// not listed cannot read the inbox, with the element or with its own fetch.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../../../test/helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/test-database.js';
import { startTestHerald, type TestHerald } from '../../../test/helpers/test-herald.js';
import { waitFor } from '../../../test/helpers/wait-for.js';
import { channels } from '../../../src/domain/notification.js';
import { inboxEventKinds } from '../../../src/db/stores/inbox-store.js';
import { startAppServer, type AppServer } from './app-server.js';

let db: TestDatabase | undefined;
let h: TestHerald | undefined;
let browser: Browser | undefined;
let app: AppServer | undefined;
let otherApp: AppServer | undefined;

function herald(): TestHerald {
  assert.ok(h !== undefined, 'Herald is running');
  return h;
}

function queryUrl(): string {
  const url = herald().herald.queryUrl;
  if (url === undefined) throw new Error('the query role is not running');
  return url;
}

async function issueToken(userId: string): Promise<string> {
  const issued = await herald().call('POST', `/v1/users/${userId}/token`, {}, { base: queryUrl() });
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  return issued.body.token as string;
}

let otherToken = '';

before(async () => {
  db = await createTestDatabase();
  // The apps listen first: the allowed one's origin goes into CORS_ORIGINS.
  app = await startAppServer({
    queryUrl,
    userId: 'u1',
    token: { kind: 'function', issue: () => issueToken('u1') },
  });
  otherApp = await startAppServer({
    queryUrl,
    userId: 'u1',
    token: { kind: 'string', value: () => otherToken },
  });
  h = await startTestHerald(db, { env: { CORS_ORIGINS: app.origin } });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await h?.stop();
  await app?.close();
  await otherApp?.close();
  await db?.drop();
});

async function send(title: string): Promise<void> {
  const sent = await herald().call('POST', '/v1/notifications', {
    recipients: ['u1'],
    channels: ['in_app'],
    content: { in_app: { title, body: `About ${title}.` } },
  });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
}

/** u1's inbox as Herald has it (not as the page shows it). */
async function inboxOnServer(query = ''): Promise<{ title: string; read: boolean; archived: boolean }[]> {
  const list = await herald().call('GET', `/v1/users/u1/inbox${query}`, undefined, {
    base: queryUrl(),
    key: await issueToken('u1'),
  });
  assert.equal(list.status, 200, JSON.stringify(list.body));
  return list.body.items;
}

/** The focused element inside the shadow root: a button's text, or an item's title. */
function focused(page: Page): Promise<string> {
  return page.evaluate(`(() => {
    let active = document.activeElement;
    while (active && active.shadowRoot && active.shadowRoot.activeElement) active = active.shadowRoot.activeElement;
    if (!active) return '';
    const labelledBy = active.getAttribute('aria-labelledby');
    const label = labelledBy ? active.getRootNode().getElementById(labelledBy).textContent : active.textContent;
    return active.tagName.toLowerCase() + ': ' + label.trim();
  })()`);
}

async function events(page: Page, type: string): Promise<unknown[]> {
  const all: { type: string; detail: unknown }[] = await page.evaluate('window.heraldEvents');
  return all.filter((e) => e.type === type).map((e) => e.detail);
}

test('the element on another origin shows items live, changes them on the server, by mouse and keyboard', async () => {
  assert.ok(browser !== undefined && app !== undefined);
  const user = await herald().call('PUT', '/v1/users/u1', {});
  assert.equal(user.status, 200, JSON.stringify(user.body));
  for (const [category, settings] of [
    ['offers', { marketing: true }],
    ['security', { critical: true }],
  ] as const) {
    const set = await herald().call('PUT', `/v1/categories/${category}`, settings);
    assert.equal(set.status, 200, JSON.stringify(set.body));
  }

  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const requests: URL[] = [];
    page.on('request', (request) => requests.push(new URL(request.url())));
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    const inbox = page.locator('herald-inbox');
    const badge = inbox.locator('#unread-count');

    await page.goto(`${app.origin}/`);
    await inbox.locator('#connection[data-state="live"]').waitFor();
    await inbox.getByText('No notifications.').waitFor();
    assert.equal(await badge.textContent(), '0');
    // The element's copy of the stream's event kinds (it cannot import the server's) agrees.
    const followed: string[] = await page.evaluate(
      `import('/herald-inbox/inbox-client.js').then((m) => [...m.streamEvents])`,
    );
    assert.deepEqual(followed.sort(), [...inboxEventKinds, 'ready', 'reset'].sort());
    const live = inbox.locator('#announcements');
    assert.equal(await live.getAttribute('aria-live'), 'polite');

    // Live: sent through the api role, delivered by the worker, shown and announced without a reload.
    await send('Parcel shipped');
    const shipped = inbox.getByRole('listitem').filter({ hasText: 'Parcel shipped' });
    await shipped.waitFor({ timeout: 20_000 });
    await waitFor('the badge to show 1', async () => (await badge.textContent()) === '1');
    await waitFor('the live region to announce it', async () =>
      ((await live.textContent()) ?? '').includes('New notification: Parcel shipped'),
    );
    assert.deepEqual(
      ((await events(page, 'herald-inbox-item')) as { item: { title: string } }[]).map((e) => e.item.title),
      ['Parcel shipped'],
    );
    // Themed through a custom property set by the page.
    const badgeColour = await page.evaluate(
      `getComputedStyle(document.querySelector('herald-inbox').shadowRoot.getElementById('unread-count')).backgroundColor`,
    );
    assert.equal(badgeColour, 'rgb(1, 2, 3)');

    // Mouse: mark read.
    await shipped.getByRole('button', { name: 'Mark read' }).click();
    await shipped.getByRole('button', { name: 'Mark unread' }).waitFor();
    await waitFor('the badge to drop to 0', async () => (await badge.textContent()) === '0');
    assert.deepEqual(
      (await inboxOnServer()).map((i) => [i.title, i.read]),
      [['Parcel shipped', true]],
    );

    // Keyboard: from the Preferences button, Tab reaches the newest item's first button.
    await send('Invoice ready');
    const invoice = inbox.getByRole('listitem').filter({ hasText: 'Invoice ready' });
    await invoice.waitFor({ timeout: 20_000 });
    await inbox.getByRole('button', { name: 'Preferences' }).focus();
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'button: Mark read');
    await page.keyboard.press('Enter');
    await invoice.getByRole('button', { name: 'Mark unread' }).waitFor();
    // Arrow keys move between items; Tab then walks the item's buttons; Space archives.
    await page.keyboard.press('ArrowDown');
    assert.equal(await focused(page), 'article: Parcel shipped');
    await page.keyboard.press('ArrowUp');
    assert.equal(await focused(page), 'article: Invoice ready');
    await page.keyboard.press('End');
    assert.equal(await focused(page), 'article: Parcel shipped');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await focused(page), 'button: Archive');
    await page.keyboard.press('Space');
    await shipped.waitFor({ state: 'detached' });
    // The archived item's place goes to its neighbour, so focus is not lost.
    assert.equal(await focused(page), 'article: Invoice ready');
    const archived = await inboxOnServer('?archived=true');
    assert.deepEqual(
      archived.map((i) => [i.title, i.archived]),
      [['Parcel shipped', true]],
    );
    assert.deepEqual(
      (await inboxOnServer()).map((i) => [i.title, i.read]),
      [['Invoice ready', true]],
    );

    // The preferences panel, by keyboard: it opens with focus in it and Escape closes it.
    const preferencesButton = inbox.getByRole('button', { name: 'Preferences' });
    await preferencesButton.focus();
    await page.keyboard.press('Enter');
    assert.equal(await preferencesButton.getAttribute('aria-expanded'), 'true');
    const panel = inbox.locator('#preferences');
    await panel.getByRole('checkbox', { name: 'Email' }).waitFor();
    assert.deepEqual(
      (await panel.getByRole('group', { name: 'Channels' }).getByRole('checkbox').all()).length,
      channels.length,
      'one switch per Herald channel',
    );
    const security = panel.getByRole('checkbox', { name: /security/ });
    assert.ok(await security.isChecked());
    assert.ok(await security.isDisabled(), 'a critical category cannot be switched off');
    for (const name of ['Email', 'offers', 'No marketing']) {
      await panel.getByRole('checkbox', { name, exact: true }).focus();
      await page.keyboard.press('Space');
    }
    await panel.getByRole('button', { name: 'Save' }).focus();
    await page.keyboard.press('Enter');
    await panel.getByText('Preferences saved.').waitFor();
    const saved = await herald().call('GET', '/v1/users/u1/preferences', undefined, {
      base: queryUrl(),
      key: await issueToken('u1'),
    });
    assert.equal(saved.body.no_marketing, true);
    assert.deepEqual(
      (saved.body.preferences as { channel: string; category: string; enabled: boolean }[])
        .map((p) => `${p.channel}/${p.category}=${String(p.enabled)}`)
        .sort(),
      ['*/offers=false', 'email/*=false'],
    );
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    assert.equal(await focused(page), 'button: Preferences');
    assert.equal(await preferencesButton.getAttribute('aria-expanded'), 'false');

    // Revoked tokens: the stream is closed; the element asks the page's token function for a new
    // token and resumes the stream after the last event it saw, so an item sent meanwhile arrives.
    const tokensBefore = app.tokensIssued();
    const revoked = await herald().call('POST', '/v1/users/u1/tokens/revoke', {}, { base: queryUrl() });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    await send('Sent while reconnecting');
    await inbox
      .getByRole('listitem')
      .filter({ hasText: 'Sent while reconnecting' })
      .waitFor({ timeout: 30_000 });
    assert.ok(app.tokensIssued() > tokensBefore, 'a fresh token was asked for');
    assert.ok(
      requests.some((r) => r.pathname === '/v1/users/u1/inbox/stream' && r.searchParams.has('last_event_id')),
      'the stream was resumed from the last event seen',
    );
    await inbox.locator('#connection[data-state="live"]').waitFor();

    // The locale switches the element's own words.
    await inbox.evaluate((element) => element.setAttribute('locale', 'de'));
    await inbox.getByRole('button', { name: 'Alle als gelesen markieren' }).waitFor();

    const appOrigin = app.origin;
    assert.equal(requests.filter((r) => r.pathname === '/' && r.origin === appOrigin).length, 1, 'no reload');
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test('a page of an origin not in CORS_ORIGINS cannot read the inbox, even with a valid token', async () => {
  assert.ok(browser !== undefined && otherApp !== undefined);
  await send('Not for other origins');
  await waitFor('the item to be in the inbox', async () =>
    (await inboxOnServer()).some((i) => i.title === 'Not for other origins'),
  );
  otherToken = await issueToken('u1');
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${otherApp.origin}/`);
    const inbox = page.locator('herald-inbox');
    await inbox.getByRole('alert').filter({ hasText: 'Herald cannot be reached.' }).waitFor();
    assert.equal(await inbox.getByRole('listitem').count(), 0);
    assert.notEqual(await inbox.locator('#connection').getAttribute('data-state'), 'live');
    // The page's own script fares no better: the browser withholds the answer.
    const read = await page.evaluate(
      `fetch(${JSON.stringify(`${queryUrl()}/v1/users/u1/inbox`)}, { headers: { authorization: 'Bearer ${otherToken}' } })
         .then((r) => r.text(), (e) => 'refused: ' + e.name)`,
    );
    assert.equal(read, 'refused: TypeError');
    // The stream takes its token in the URL, so no preflight: Herald answers, the page cannot read it.
    const stream = await page.evaluate(
      `fetch(${JSON.stringify(`${queryUrl()}/v1/users/u1/inbox/stream?access_token=${otherToken}`)})
         .then((r) => r.text(), (e) => 'refused: ' + e.name)`,
    );
    assert.equal(stream, 'refused: TypeError');
  } finally {
    await context.close();
  }
});
