// What an import report shows before anything is written: each changed cell old → new, and a
// warning for each new text that looks mis-decoded. The incident: a workbook whose Korean text a
// spreadsheet round trip had garbled ("[ì€í–‰] …") was accepted and made new versions of every
// template. Here the dry run names every garbled cell with what it said, the import is refused
// until the caller accepts the warnings, and one undo puts every template back.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestDatabase } from '../../../test/helpers/test-database.js';
import { idPath, type TestHerald } from '../../../test/helpers/test-herald.js';
import { startTemplateHerald } from '../../../test/helpers/template-herald.js';
import { asWindows1252 } from '../../../test/helpers/garble.js';
import {
  download as downloadAs,
  rewriteXlsx,
  upload as uploadAs,
  xlsxType,
  type SheetCell,
} from '../../../test/helpers/template-sheet-client.js';
import { maxListedChanges } from '../../templates/template-import.js';

let db: TestDatabase;
let h: TestHerald;

const upload = (path: string, body: Buffer, contentType = xlsxType) => uploadAs(h, path, body, contentType);
const download = (format: 'xlsx' | 'csv') => downloadAs(h, format);

const notice = {
  category: 'orders',
  params: { name: 'string' },
  fallback_locale: 'ja',
  variants: {
    sms: {
      ja: { text: 'ご注文ありがとうございます、{{ name }}様' },
      zh: { text: '{{ name }}，您的订单已发货' },
      en: { text: 'Thank you, {{ name }}' },
    },
  },
};

const withEnglish = (text: string) => ({
  ...notice,
  variants: { sms: { ...notice.variants.sms, en: { text } } },
});

before(async () => {
  ({ db, h } = await startTemplateHerald());
  assert.equal((await h.call('PUT', '/v1/templates/notice', notice)).status, 200);
  // A second version, so the undo below has an older version to return to.
  const edited = {
    ...notice,
    variants: { sms: { ...notice.variants.sms, en: { text: 'Thanks, {{ name }}' } } },
  };
  assert.equal((await h.call('PUT', '/v1/templates/notice', edited)).status, 200);
});
after(async () => {
  await h.stop();
  await db.drop();
});

async function currentVersions(): Promise<Record<string, number>> {
  const list = await h.call('GET', '/v1/templates');
  return Object.fromEntries(
    list.body.items.map((t: { key: string; current_version: number }) => [t.key, t.current_version]),
  );
}

async function recordedImports(): Promise<number> {
  const r = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM template_imports');
  return r.rows[0]?.n ?? -1;
}

/** The template version a notification sent now is accepted with (ingest's cached current version). */
async function versionSentWith(key: string, params: Record<string, unknown>): Promise<number> {
  const sent = await h.call('POST', '/v1/notifications', {
    recipients: ['u1'],
    channels: ['in_app'],
    template: key,
    params,
  });
  if (sent.status !== 202) return -1;
  const view = await h.call('GET', `/v1/notifications/${idPath(sent.body.id)}`);
  return view.body.template.version;
}

describe('the incident: a workbook garbled by a Latin-1 round trip', () => {
  let original: Buffer;
  let garbled: Buffer;
  let cells: SheetCell[];
  let versionsBefore: Record<string, number>;
  const field = (c: { row: number; column: string }) => `row ${String(c.row)} / column ${c.column}`;

  before(async () => {
    original = await download('xlsx');
    // Every cell with non-ASCII text, read back as Windows-1252.
    ({ file: garbled, changed: cells } = await rewriteXlsx(original, (cell) =>
      /[^\x20-\x7e]/.test(cell.text) ? asWindows1252(cell.text) : undefined,
    ));
    versionsBefore = await currentVersions();
    assert.ok(cells.length >= 9, `${String(cells.length)} garbled cells`);
    assert.ok(cells.some((c) => c.text.includes('님')) && cells.some((c) => c.text.includes('様')));
  });

  test('the dry run warns of every garbled cell, with what it said, and shows each old → new', async () => {
    const dry = await upload('/v1/templates/import?dry_run=true', garbled);
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.import_id, null);
    assert.deepEqual(
      dry.body.warnings.map((w: { field: string; probably: string }) => [w.field, w.probably]).sort(),
      cells.map((c) => [field(c), c.text]).sort(),
    );
    for (const w of dry.body.warnings) {
      const cell = cells.find((c) => field(c) === w.field);
      assert.equal(w.kind, 'mis_decoded');
      assert.equal(w.text, asWindows1252(cell?.text ?? ''));
      assert.equal(w.row, cell?.row);
      assert.equal(w.column, cell?.column);
      assert.match(w.message, /is probably/);
    }
    assert.equal(dry.body.changes_truncated, false);
    const changes = dry.body.templates.flatMap((t: { key: string; changes: object[] }) =>
      t.changes.map((c) => ({ key: t.key, ...c })),
    );
    assert.equal(changes.length, cells.length, 'nothing but the garbled cells changes');
    for (const cell of cells) {
      const [key, channel, locale] = cell.place.split('/');
      assert.deepEqual(
        changes.find(
          (c: { key: string; channel: string; locale: string; part: string }) =>
            c.key === key && c.channel === channel && c.locale === locale && c.part === cell.column,
        ),
        {
          key,
          field: 'variants',
          channel,
          locale,
          part: cell.column,
          old: cell.text,
          new: asWindows1252(cell.text),
          row: cell.row,
        },
      );
    }
    assert.deepEqual(
      dry.body.templates.map((t: { key: string; result: string }) => [t.key, t.result]),
      [
        ['notice', 'new_version'],
        ['order.shipped', 'new_version'],
      ],
    );
    assert.deepEqual(await currentVersions(), versionsBefore);
    assert.equal(await recordedImports(), 0);
  });

  test('the real import is refused, naming every garbled cell, and changes nothing', async () => {
    const refused = await upload('/v1/templates/import', garbled);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.code, 'template_import_suspect_text');
    assert.deepEqual(
      refused.body.errors.map((e: { field: string }) => e.field).sort(),
      cells.map(field).sort(),
    );
    assert.match(refused.body.errors[0].message, /is probably "/);
    assert.match(refused.body.detail, /accept_warnings=true/);
    assert.deepEqual(await currentVersions(), versionsBefore);
    assert.equal(await recordedImports(), 0);
  });

  let importId: number;
  test('with accept_warnings it applies, is recorded, and listed with its summary', async () => {
    const accepted = await upload('/v1/templates/import?accept_warnings=true', garbled);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    assert.equal(accepted.body.warnings.length, cells.length);
    importId = accepted.body.import_id;
    assert.ok(Number.isSafeInteger(importId));
    const notice = await h.call('GET', '/v1/templates/notice');
    assert.equal(notice.body.version, (versionsBefore['notice'] ?? 0) + 1);
    assert.equal(notice.body.variants.sms.ja.text, asWindows1252('ご注文ありがとうございます、{{ name }}様'));
    assert.equal(await versionSentWith('order.shipped', { name: 'Kim', count: 2 }), 2);

    const list = await h.call('GET', '/v1/templates/imports');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items[0], {
      id: importId,
      kind: 'import',
      created_at: list.body.items[0].created_at,
      key_id: list.body.items[0].key_id,
      undoes: null,
      undone_by: null,
      templates: 2,
      summary: {
        created: 0,
        updated: 2,
        unchanged: 0,
        changes: cells.length,
        warnings: cells.length,
        accepted_warnings: true,
      },
    });
    assert.ok(Number.isSafeInteger(list.body.items[0].key_id));
  });

  test('cells already holding the suspect text are not warned of again: they change nothing', async () => {
    const again = await upload('/v1/templates/import?dry_run=true', await download('xlsx'));
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.warnings, []);
    assert.deepEqual([again.body.created, again.body.updated], [0, 0]);
  });

  test('one undo returns every template to its previous version; ingest sees it at once', async () => {
    const undo = await h.call('POST', `/v1/templates/imports/${String(importId)}/undo`);
    assert.equal(undo.status, 200, JSON.stringify(undo.body));
    assert.equal(undo.body.undoes, importId);
    assert.deepEqual(
      undo.body.templates.map((t: { key: string; to: { version: number } }) => [t.key, t.to.version]),
      [
        ['notice', versionsBefore['notice']],
        ['order.shipped', versionsBefore['order.shipped']],
      ],
    );
    assert.deepEqual(await currentVersions(), versionsBefore);
    const notice = await h.call('GET', '/v1/templates/notice');
    assert.equal(notice.body.variants.sms.ja.text, 'ご注文ありがとうございます、{{ name }}様');
    assert.equal(await versionSentWith('order.shipped', { name: 'Kim', count: 2 }), 1);
    // The export is the original workbook's content again.
    const dry = await upload('/v1/templates/import?dry_run=true', original);
    assert.deepEqual([dry.body.created, dry.body.updated], [0, 0]);

    const list = await h.call('GET', '/v1/templates/imports');
    const [undoRecord, imported] = list.body.items;
    assert.deepEqual([undoRecord.id, undoRecord.kind, undoRecord.undoes], [undo.body.id, 'undo', importId]);
    assert.equal(imported.undone_by, undo.body.id);
  });

  test('a later edit saved after an undo gets a version number never used before', async () => {
    const put = await h.call('PUT', '/v1/templates/notice', {
      ...withEnglish('Thanks, {{ name }}'),
      category: 'news',
    });
    assert.equal(put.status, 200);
    assert.deepEqual([put.body.version, put.body.version_created], [versionsBefore['notice'], false]);
    // The undone import's version still exists (it is the one after this version).
    const next = await h.call('PUT', '/v1/templates/notice', withEnglish('Hi {{ name }}'));
    assert.equal(next.body.version, (versionsBefore['notice'] ?? 0) + 2);
  });
});

describe('the report', () => {
  test('created templates list their cells as new; the listed changes stop at the cap', async () => {
    const count = Math.ceil(maxListedChanges / 4) + 50;
    const lines = ['key,category,lane,params,fallback_locale,channel,locale,text'];
    for (let i = 0; i < count; i += 1)
      lines.push(`bulk.${String(i)},news,bulk,,en,sms,en,Hello ${String(i)}`);
    const dry = await upload('/v1/templates/import?dry_run=true', Buffer.from(lines.join('\n')), 'text/csv');
    assert.equal(dry.status, 200, JSON.stringify(dry.body).slice(0, 500));
    assert.equal(dry.body.created, count);
    assert.deepEqual(dry.body.templates.find((t: { key: string }) => t.key === 'bulk.0').changes, [
      { field: 'category', old: null, new: 'news', row: 2 },
      { field: 'lane', old: null, new: 'bulk', row: 2 },
      { field: 'fallback_locale', old: null, new: 'en', row: 2 },
      { field: 'variants', channel: 'sms', locale: 'en', part: 'text', old: null, new: 'Hello 0', row: 2 },
    ]);
    const listed = dry.body.templates.reduce(
      (n: number, t: { changes: object[] }) => n + t.changes.length,
      0,
    );
    assert.equal(listed, maxListedChanges);
    assert.equal(dry.body.changes_truncated, true);
  });

  test('a U+FFFD in a new cell is a warning with nothing to offer in its place', async () => {
    const csv =
      'key,category,lane,params,fallback_locale,channel,locale,text\n' +
      'lost,news,bulk,,ko,sms,ko,[\ufffd\ufffd] 입금\n';
    const dry = await upload('/v1/templates/import?dry_run=true', Buffer.from(csv), 'text/csv');
    assert.deepEqual(
      dry.body.warnings.map((w: { field: string; kind: string; probably: null }) => [
        w.field,
        w.kind,
        w.probably,
      ]),
      [['row 2 / column text', 'replacement_character', null]],
    );
  });

  test('every blank required cell is named, on every row', async () => {
    const csv = [
      'key,category,lane,params,fallback_locale,channel,locale,text',
      'a,,transactional,,en,sms,en,hi',
      ',general,transactional,,en,sms,en,hi',
      'b,general,,,en,sms,,',
      'b,general,bulk,,,sms,ko,',
    ].join('\n');
    const res = await upload('/v1/templates/import', Buffer.from(csv), 'text/csv');
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'template_import_invalid');
    assert.deepEqual(
      res.body.errors.map((e: { field: string; message: string }) => `${e.field}: ${e.message}`),
      [
        'row 2 / column category: missing',
        'row 3 / column key: missing',
        'row 4 / column lane: missing',
        'row 4 / column locale: missing',
        'row 4 / column text: missing: sms needs text',
        'row 5 / column fallback_locale: missing',
        'row 5 / column text: missing: sms needs text',
      ],
    );
  });
});
