// Templates as a sheet through the api role: GET /v1/templates/export (xlsx, CSV) and
// POST /v1/templates/import (round trips, every bad row and column named, dry run).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ExcelJS from 'exceljs';
import type { TestDatabase } from '../../../test/helpers/test-database.js';
import type { TestHerald } from '../../../test/helpers/test-herald.js';
import { order, startTemplateHerald, versionsOf } from '../../../test/helpers/template-herald.js';
import {
  download as downloadAs,
  editXlsx,
  upload as uploadAs,
  xlsxType,
} from '../../../test/helpers/template-sheet-client.js';

let db: TestDatabase;
let h: TestHerald;

before(async () => {
  ({ db, h } = await startTemplateHerald());
  // Two more templates whose rows the imports below edit.
  const greet = {
    ...order,
    lane: 'transactional',
    variants: { in_app: { en: { title: 'Hello {{ name }}' } } },
  };
  assert.equal((await h.call('PUT', '/v1/templates/greet', greet)).status, 200);
  const sneaky = {
    params: { name: 'string' },
    fallback_locale: 'en',
    variants: { email: { en: { subject: 's', html: '<b>{{ name | raw }}</b>' } } },
  };
  assert.equal((await h.call('PUT', '/v1/templates/sneaky', sneaky)).status, 200);
});
after(async () => {
  await h.stop();
  await db.drop();
});

async function allVersions(): Promise<number> {
  const r = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM template_versions');
  return r.rows[0]?.n ?? -1;
}

const upload = (path: string, body: Buffer, contentType: string) => uploadAs(h, path, body, contentType);
const download = (format: 'xlsx' | 'csv') => downloadAs(h, format);

describe('export and import', () => {
  test('xlsx: an exported file imported unchanged creates no version', async () => {
    const before = await allVersions();
    const file = await download('xlsx');
    const res = await upload('/v1/templates/import', file, xlsxType);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual([res.body.created, res.body.updated], [0, 0]);
    assert.ok(res.body.unchanged >= 2);
    assert.equal(await allVersions(), before);
  });

  test('the xlsx has one row per template × channel × locale, in the documented columns', async () => {
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load((await download('xlsx')) as unknown as ArrayBuffer);
    const sheet = workbook.getWorksheet('templates');
    assert.ok(sheet);
    assert.deepEqual((sheet.getRow(1).values as unknown[]).slice(1), [
      'key',
      'version',
      'category',
      'lane',
      'params',
      'fallback_locale',
      'channel',
      'locale',
      'title',
      'body',
      'url',
      'subject',
      'text',
      'html',
    ]);
    const rows: string[] = [];
    sheet.eachRow((row, n) => {
      const v = row.values as unknown[];
      if (n > 1 && v[1] === 'order.shipped') rows.push(`${String(v[7])}/${String(v[8])}`);
    });
    assert.deepEqual(rows, ['email/en', 'email/ko', 'in_app/en', 'in_app/ko', 'in_app/pt-BR', 'in_app/ru']);
  });

  test('a file with bad rows applies nothing and names every row and column', async () => {
    const before = await allVersions();
    const file = await download('xlsx');
    const bad = await editXlsx(file, [
      ['order.shipped/in_app/en', 'body', 'changed {{ name }}'],
      ['order.shipped/email/ko', 'html', '<p>{{ nmae }}</p>'],
      ['order.shipped/email/en', 'url', 'https://example.com'],
      ['greet/in_app/en', 'lane', 'express'],
      ['sneaky/email/en', 'channel', 'fax'],
    ]);
    const [, htmlRow, urlRow, laneRow, channelRow] = bad.rows.map(String);
    const res = await upload('/v1/templates/import', bad.file, xlsxType);
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'template_import_invalid');
    const fields = res.body.errors.map((e: { field: string }) => e.field).sort();
    assert.deepEqual(
      fields,
      [
        `row ${urlRow} / column url`,
        `row ${laneRow} / column lane`,
        `row ${channelRow} / column channel`,
      ].sort(),
    );
    // A template's text is checked once its rows read cleanly: fix those and it shows.
    const textOnly = await editXlsx(file, [
      ['order.shipped/in_app/en', 'body', 'changed {{ name }}'],
      ['order.shipped/email/ko', 'html', '<p>{{ nmae }}</p>'],
    ]);
    const second = await upload('/v1/templates/import', textOnly.file, xlsxType);
    assert.equal(second.status, 400);
    assert.deepEqual(
      second.body.errors.map((e: { field: string }) => e.field),
      [`row ${htmlRow} / column html`],
    );
    assert.match(second.body.errors[0].message, /nmae/);
    assert.equal(await allVersions(), before);
  });

  test('dry run reports what would change and changes nothing', async () => {
    const before = await versionsOf(db.pool, 'order.shipped');
    const { file: edited } = await editXlsx(await download('xlsx'), [
      ['order.shipped/in_app/en', 'body', 'changed {{ name }}'],
    ]);
    const dry = await upload('/v1/templates/import?dry_run=true', edited, xlsxType);
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.dry_run, true);
    assert.equal(dry.body.updated, 1);
    assert.deepEqual(await versionsOf(db.pool, 'order.shipped'), before);
    const real = await upload('/v1/templates/import', edited, xlsxType);
    assert.equal(real.body.updated, 1);
    const entry = real.body.templates.find((t: { key: string }) => t.key === 'order.shipped');
    assert.equal(entry.result, 'new_version');
    assert.deepEqual(await versionsOf(db.pool, 'order.shipped'), [...before, before.length + 1]);
    const read = await h.call('GET', '/v1/templates/order.shipped');
    assert.equal(read.body.variants.in_app.en.body, 'changed {{ name }}');
  });

  test('csv: round trip is a no-op, an edit makes a version, a new key creates a template', async () => {
    const before = await allVersions();
    const csv = await download('csv');
    const same = await upload('/v1/templates/import', csv, 'text/csv');
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.deepEqual([same.body.created, same.body.updated], [0, 0]);
    assert.equal(await allVersions(), before);

    const added =
      csv.toString('utf8').trimEnd() +
      '\r\nwelcome,,accounts,transactional,"name:string",en,sms,en,,,,,"Welcome, {{ name }}!",\r\n';
    const res = await upload('/v1/templates/import', Buffer.from(added), 'text/csv');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.created, 1);
    const read = await h.call('GET', '/v1/templates/welcome');
    assert.deepEqual(read.body.variants, { sms: { en: { text: 'Welcome, {{ name }}!' } } });
    assert.deepEqual(read.body.params, { name: 'string' });

    const badCsv =
      'key,category,lane,params,fallback_locale,channel,locale,text\nwelcome,accounts,transactional,name:strng,en,sms,en,hi\n';
    const bad = await upload('/v1/templates/import', Buffer.from(badCsv), 'text/csv');
    assert.equal(bad.status, 400);
    assert.deepEqual(
      bad.body.errors.map((e: { field: string }) => e.field),
      ['row 2 / column params'],
    );
  });

  test('an unreadable file or a missing column is 400 and names it', async () => {
    const garbage = await upload('/v1/templates/import', Buffer.from('PK\u0003\u0004not a zip'), xlsxType);
    assert.equal(garbage.status, 400);
    assert.equal(garbage.body.code, 'template_import_invalid');
    const noColumn = await upload('/v1/templates/import', Buffer.from('key,channel\nx,sms\n'), 'text/csv');
    assert.equal(noColumn.status, 400);
    assert.ok(noColumn.body.errors.some((e: { field: string }) => e.field === 'row 1 / column locale'));
  });

  test('a sheet sent to another template route is 415 and changes nothing', async () => {
    const before = await allVersions();
    const csv = await download('csv');
    const preview = await upload('/v1/templates/order.shipped/preview', csv, 'text/csv');
    assert.equal(preview.status, 415);
    assert.equal(preview.body.code, 'unsupported_media_type');
    assert.equal(await allVersions(), before);
  });
});
