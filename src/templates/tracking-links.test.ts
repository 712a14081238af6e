// Tracked email links: which links are rewritten and how (entities decoded, the new href
// escaped), where the pixel goes, and that only a token this key signed, unchanged and unexpired,
// verifies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { maxTrackedUrlLength, TrackingLinks } from './tracking-links.js';

let now = new Date('2026-12-04T12:00:00Z');
const links = new TrackingLinks({
  key: Buffer.from('k'.repeat(32)),
  baseUrl: 'https://herald.example/',
  ttlSeconds: 3600,
  now: () => now,
});
const delivery = randomUUID();

function claimOf(href: string) {
  const token = href.slice(href.lastIndexOf('/') + 1);
  return links.verify(token);
}

test('http(s) links become signed click links carrying the link as written; others stay', () => {
  const long = `https://shop.example/${'x'.repeat(maxTrackedUrlLength)}`;
  const html =
    '<body><A HREF="https://shop.example/?a=1&amp;b=&quot;2&quot;">one</A>' +
    '<a href=\'http://shop.example/two\'>two</a><a href="mailto:x@shop.example">m</a>' +
    `<a href="#top">top</a><a href="${long}">long</a></body>`;
  const tracked = links.trackHtml(html, delivery);
  const hrefs = [...tracked.matchAll(/href="([^"]*)"/gi)].map((m) => (m[1] ?? '').replaceAll('&amp;', '&'));
  assert.equal(hrefs.length, 5);
  assert.deepEqual(claimOf(hrefs[0] ?? ''), {
    ok: true,
    claim: {
      kind: 'click',
      deliveryId: delivery,
      index: 0,
      url: 'https://shop.example/?a=1&b="2"',
      expires: now.getTime() / 1000 + 3600,
    },
  });
  assert.deepEqual(claimOf(hrefs[1] ?? ''), {
    ok: true,
    claim: {
      kind: 'click',
      deliveryId: delivery,
      index: 1,
      url: 'http://shop.example/two',
      expires: now.getTime() / 1000 + 3600,
    },
  });
  assert.deepEqual(hrefs.slice(2), ['mailto:x@shop.example', '#top', long]);
  assert.ok(hrefs[0]?.startsWith('https://herald.example/v1/track/click/t1.'));
  // The pixel sits just before </body>.
  assert.match(
    tracked,
    /<img src="https:\/\/herald\.example\/v1\/track\/open\/t1\.[^"]+" width="1" height="1"[^>]*><\/body>$/,
  );
  assert.match(links.trackHtml('<p>no body tag</p>', delivery), /^<p>no body tag<\/p><img /);
});

test('an altered, foreign or expired token does not verify', () => {
  const href = links.clickUrl(delivery, 0, 'https://shop.example/');
  const token = href.slice(href.lastIndexOf('/') + 1);
  const [v, payload, mac] = token.split('.');
  const fields = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as unknown[];
  fields[4] = 'https://evil.example/';
  const altered = `${v ?? ''}.${Buffer.from(JSON.stringify(fields)).toString('base64url')}.${mac ?? ''}`;
  assert.deepEqual(links.verify(altered), { ok: false, reason: 'invalid' });
  const stranger = new TrackingLinks({
    key: Buffer.from('s'.repeat(32)),
    baseUrl: '',
    ttlSeconds: 3600,
    now: () => now,
  });
  assert.deepEqual(stranger.verify(token), { ok: false, reason: 'invalid' });
  for (const bad of ['', 't1', 't1..', `${token}.x`, 'v1.e30.x'])
    assert.deepEqual(links.verify(bad), { ok: false, reason: 'invalid' });
  assert.equal(links.verify(token).ok, true);
  now = new Date(now.getTime() + 3_600_000);
  assert.deepEqual(links.verify(token), { ok: false, reason: 'expired' });
});
