// Undoing an import: created templates are withdrawn, edited ones go back a version, an undo
// never overwrites later work, an undo can itself be undone, and one service can neither see
// nor undo another's imports.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestDatabase } from '../../../test/helpers/test-database.js';
import type { TestHerald } from '../../../test/helpers/test-herald.js';
import { startTemplateHerald } from '../../../test/helpers/template-herald.js';
import { upload as uploadAs } from '../../../test/helpers/template-sheet-client.js';
import { changedTables, tableSnapshot } from '../../../test/helpers/table-snapshot.js';
import { createApiKey, ensureService } from '../../db/stores/api-key-store.js';
import { loadTemplateVersions, templateVersionKey } from '../../db/stores/template-store.js';

let db: TestDatabase;
let h: TestHerald;
/** Another service's key, with the templates permission. */
let billingKey: string;

const header = 'key,category,lane,params,fallback_locale,channel,locale,text';
const csv = (...rows: string[]) => Buffer.from([header, ...rows].join('\n'));

async function importCsv(body: Buffer, key = h.apiKey): Promise<{ status: number; body: any }> {
  return uploadAs(h, '/v1/templates/import', body, 'text/csv', key);
}

const undo = (id: number, key?: string) =>
  h.call('POST', `/v1/templates/imports/${String(id)}/undo`, undefined, key === undefined ? {} : { key });

/** A template body with one English SMS text. */
const sms = (text: string) => ({
  category: 'news',
  fallback_locale: 'en',
  variants: { sms: { en: { text } } },
});

before(async () => {
  ({ db, h } = await startTemplateHerald());
  billingKey = await createApiKey(db.pool, await ensureService(db.pool, 'billing'), ['templates']);
  assert.equal((await h.call('PUT', '/v1/templates/greet', sms('Hello'))).status, 200);
});
after(async () => {
  await h.stop();
  await db.drop();
});

describe('undoing an import', () => {
  test('a template the import created is withdrawn: not readable, listed, exported or sendable', async () => {
    const imported = await importCsv(csv('welcome,news,bulk,,en,sms,en,Welcome'));
    assert.equal(imported.status, 200, JSON.stringify(imported.body));
    assert.equal(imported.body.templates[0].result, 'created');
    const undone = await undo(imported.body.import_id);
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    assert.deepEqual(undone.body.templates, [
      { key: 'welcome', from: { version: 1, category: 'news', lane: 'bulk' }, to: null },
    ]);
    assert.equal((await h.call('GET', '/v1/templates/welcome')).status, 404);
    assert.equal((await h.call('GET', '/v1/templates/welcome?version=1')).status, 404);
    const list = await h.call('GET', '/v1/templates');
    assert.ok(!list.body.items.some((t: { key: string }) => t.key === 'welcome'));
    const send = await h.call('POST', '/v1/notifications', {
      recipients: ['u1'],
      channels: ['in_app'],
      template: 'welcome',
      params: {},
    });
    assert.equal(send.body.code, 'template_not_found');
    const exported = await h.call('GET', '/v1/templates/export?format=csv');
    assert.equal(exported.status, 200);
    assert.ok(!String(exported.body).includes('welcome'));

    // Its versions stay, so notifications accepted with it keep rendering.
    const serviceId = await ensureService(db.pool, 'shop');
    const kept = await loadTemplateVersions(db.pool, [{ serviceId, key: 'welcome', version: 1 }]);
    assert.ok(kept.has(templateVersionKey(serviceId, 'welcome', 1)));

    // Saved again, it continues its version numbers; an import says it creates it.
    const dry = await uploadAs(
      h,
      '/v1/templates/import?dry_run=true',
      csv('welcome,news,bulk,,en,sms,en,Welcome'),
      'text/csv',
    );
    assert.equal(dry.body.templates[0].result, 'created');
    const put = await h.call('PUT', '/v1/templates/welcome', sms('Welcome'));
    assert.deepEqual([put.body.version, put.body.version_created], [2, true]);
  });

  test('an undo after a later edit is refused (409) and changes nothing', async () => {
    const imported = await importCsv(csv('greet,news,transactional,,en,sms,en,Hello again'));
    assert.equal(imported.body.templates[0].result, 'new_version');
    assert.equal((await h.call('PUT', '/v1/templates/greet', sms('Hi there'))).status, 200);
    const before = await tableSnapshot(db.pool);
    const refused = await undo(imported.body.import_id);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, 'template_import_undo_conflict');
    assert.deepEqual(
      refused.body.errors.map((e: { field: string }) => e.field),
      ['templates/greet'],
    );
    assert.match(refused.body.errors[0].message, /now version 3.*the import left version 2/);
    assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), []);
    assert.equal((await h.call('GET', '/v1/templates/greet')).body.variants.sms.en.text, 'Hi there');
  });

  test('a category-only import is undone to the old category; a second undo is refused', async () => {
    const imported = await importCsv(csv('greet,alerts,transactional,,en,sms,en,Hi there'));
    assert.equal(imported.body.templates[0].result, 'updated');
    assert.deepEqual(imported.body.templates[0].changes, [
      { field: 'category', old: 'news', new: 'alerts', row: 2 },
    ]);
    assert.equal((await undo(imported.body.import_id)).status, 200);
    const greet = await h.call('GET', '/v1/templates/greet');
    assert.deepEqual([greet.body.category, greet.body.version], ['news', 3]);
    const again = await undo(imported.body.import_id);
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'template_import_undo_conflict');
    assert.match(again.body.detail, /already undone/);
  });

  test('an undo can itself be undone, which applies the import again', async () => {
    const imported = await importCsv(
      csv('greet,news,transactional,,en,sms,en,Version four', 'fresh,news,bulk,,en,sms,en,New'),
    );
    const undone = await undo(imported.body.import_id);
    assert.equal((await h.call('GET', '/v1/templates/fresh')).status, 404);
    const redone = await undo(undone.body.id);
    assert.equal(redone.status, 200, JSON.stringify(redone.body));
    assert.equal((await h.call('GET', '/v1/templates/greet')).body.variants.sms.en.text, 'Version four');
    assert.equal((await h.call('GET', '/v1/templates/fresh')).body.version, 1);
    // Who imported and who undid what is in the audit log, with the versions before and after.
    const audit = await db.pool.query<{ action: string; actor_kind: string; after: any }>(
      `SELECT action, actor_kind, after FROM audit_log WHERE after->>'import_id' = ANY($1::text[]) ORDER BY id`,
      [[imported.body.import_id, undone.body.id, redone.body.id].map(String)],
    );
    assert.deepEqual(
      audit.rows.map((r) => [r.action, r.actor_kind]),
      [
        ['template.import', 'api_key'],
        ['template.import_undo', 'api_key'],
        ['template.import_undo', 'api_key'],
      ],
    );
    assert.deepEqual(audit.rows[0]?.after.templates.map((t: { key: string }) => t.key).sort(), [
      'fresh',
      'greet',
    ]);
  });

  test('an unknown import id is 404', async () => {
    const res = await undo(987_654_321);
    assert.equal(res.status, 404);
    assert.equal(res.body.code, 'not_found');
  });
});

describe('the list of imports', () => {
  test('newest first, paginated with next_cursor; a forged cursor is 400', async () => {
    const all = await h.call('GET', '/v1/templates/imports?limit=100');
    const ids = all.body.items.map((i: { id: number }) => i.id);
    assert.ok(ids.length >= 8);
    assert.deepEqual(
      ids,
      [...ids].sort((a: number, b: number) => b - a),
    );
    const walked: number[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const page = await h.call('GET', `/v1/templates/imports?limit=3${query}`);
      assert.equal(page.status, 200);
      walked.push(...page.body.items.map((i: { id: number }) => i.id));
      cursor = page.body.next_cursor;
    } while (cursor !== null);
    assert.deepEqual(walked, ids);
    for (const forged of [
      'x',
      Buffer.from('1; DROP TABLE x').toString('base64url'),
      Buffer.from('-1').toString('base64url'),
    ]) {
      const bad = await h.call('GET', `/v1/templates/imports?cursor=${forged}`);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'cursor_invalid');
    }
  });
});

describe('attack: another service against shop', () => {
  test("billing cannot undo shop's import (404, nothing changes) nor see it in its list", async () => {
    const imported = await importCsv(csv('greet,news,transactional,,en,sms,en,Shop text'));
    const id: number = imported.body.import_id;
    const before = await tableSnapshot(db.pool);
    const res = await undo(id, billingKey);
    assert.equal(res.status, 404);
    assert.equal(res.body.code, 'not_found');
    assert.ok(!JSON.stringify(res.body).includes('greet'));
    assert.deepEqual(changedTables(before, await tableSnapshot(db.pool)), []);

    const list = await h.call('GET', '/v1/templates/imports', undefined, { key: billingKey });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { items: [], next_cursor: null });
    // Even with a cursor made from shop's ids, billing's listing holds only billing's imports.
    const cursor = Buffer.from(String(id + 1)).toString('base64url');
    const paged = await h.call('GET', `/v1/templates/imports?cursor=${cursor}`, undefined, {
      key: billingKey,
    });
    assert.deepEqual(paged.body.items, []);

    // billing's own import of the same key is its own template, undone on its own.
    const own = await importCsv(csv('greet,news,transactional,,en,sms,en,Billing text'), billingKey);
    assert.equal(own.body.templates[0].result, 'created');
    assert.equal((await undo(own.body.import_id, billingKey)).status, 200);
    assert.equal((await h.call('GET', '/v1/templates/greet')).body.variants.sms.en.text, 'Shop text');
    // And shop cannot undo billing's.
    assert.equal((await undo(own.body.import_id)).status, 404);
  });
});
