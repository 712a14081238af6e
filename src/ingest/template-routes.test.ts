// Templates through the api role: versions, preview (locale fallback, plurals, HTML escaping),
// parameter checks at ingest, and the xlsx/CSV export and import.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ExcelJS from 'exceljs';
import { createTestDatabase, type TestDatabase } from '../../test/helpers/test-database.js';
import { idPath, startTestHerald, type TestHerald } from '../../test/helpers/test-herald.js';
import { createApiKey, ensureService } from '../db/stores/api-key-store.js';
import { chooseLocale } from '../domain/template.js';
import { permissions, senderPermissions } from '../domain/permissions.js';

let db: TestDatabase;
let h: TestHerald;

const plural = '{{ "{count, plural, one {# item} other {# items}}" | icu }}';
const order = {
  category: 'orders',
  lane: 'bulk',
  params: { name: 'string', count: 'integer' },
  fallback_locale: 'en',
  variants: {
    email: {
      en: {
        subject: 'Order for {{ name }}',
        html: `<p>Hello {{ name }}, ${plural}</p>`,
        text: 'Hello {{ name }}',
      },
      ko: { subject: '{{ name }}님 주문', html: '<p>{{ name }}님, {{ count }}개</p>', text: '{{ name }}님' },
    },
    in_app: {
      en: { title: 'Order', body: `${plural} for {{ name }}` },
      ko: { title: '주문', body: '{{ name }}님 {{ "{count, plural, other {#개}}" | icu }}' },
      'pt-BR': { title: 'Pedido', body: '{{ "{count, plural, one {# item} other {# itens}}" | icu }}' },
      ru: {
        title: 'Заказ',
        body: '{{ "{count, plural, one {# товар} few {# товара} many {# товаров} other {# товара}}" | icu }}',
      },
    },
  },
};

async function versionsOf(key: string): Promise<number[]> {
  const r = await db.pool.query<{ version: number }>(
    'SELECT version FROM template_versions WHERE key = $1 ORDER BY version',
    [key],
  );
  return r.rows.map((row) => row.version);
}

async function allVersions(): Promise<number> {
  const r = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM template_versions');
  return r.rows[0]?.n ?? -1;
}

async function upload(path: string, body: Buffer, contentType: string) {
  const response = await fetch(`${h.herald.apiUrl ?? ''}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.apiKey}`, 'content-type': contentType },
    body,
  });
  const text = await response.text();
  const parsed: any = JSON.parse(text);
  return { status: response.status, body: parsed };
}

async function download(format: 'xlsx' | 'csv'): Promise<Buffer> {
  const response = await fetch(`${h.herald.apiUrl ?? ''}/v1/templates/export?format=${format}`, {
    headers: { authorization: `Bearer ${h.apiKey}` },
  });
  assert.equal(response.status, 200);
  return Buffer.from(await response.arrayBuffer());
}

const xlsxType = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/**
 * Edits cells of an exported workbook: the row of `key/channel/locale`, a column name, new
 * text. Returns the file and the row numbers edited, in order.
 */
async function editXlsx(
  file: Buffer,
  edits: [string, string, string][],
): Promise<{ file: Buffer; rows: number[] }> {
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(file as unknown as ArrayBuffer);
  const sheet = workbook.worksheets[0];
  assert.ok(sheet);
  const header = (sheet.getRow(1).values as unknown[]).map((v) => String(v));
  const rowOf = new Map<string, number>();
  sheet.eachRow((row, n) => {
    const v = row.values as unknown[];
    rowOf.set(`${String(v[1])}/${String(v[7])}/${String(v[8])}`, n);
  });
  const rows: number[] = [];
  for (const [place, column, text] of edits) {
    const c = header.indexOf(column);
    const row = rowOf.get(place);
    assert.ok(c > 0 && row !== undefined, `no ${place} / ${column}`);
    sheet.getRow(row).getCell(c).value = text;
    rows.push(row);
  }
  return { file: Buffer.from(await workbook.xlsx.writeBuffer()), rows };
}

before(async () => {
  db = await createTestDatabase();
  h = await startTestHerald(db, { roles: ['api'] });
  const put = await h.call('PUT', '/v1/templates/order.shipped', order);
  assert.equal(put.status, 200, JSON.stringify(put.body));
});
after(async () => {
  await h.stop();
  await db.drop();
});

describe('PUT /v1/templates/:key', () => {
  test('a new template is version 1; the same body again creates nothing; a change makes version 2', async () => {
    const body = { ...order, variants: { in_app: { en: { title: 'Hi {{ name }}' } } } };
    const first = await h.call('PUT', '/v1/templates/greet', body);
    assert.deepEqual(first.body, { key: 'greet', version: 1, version_created: true, changed: true });
    const again = await h.call('PUT', '/v1/templates/greet', body);
    assert.deepEqual(again.body, { key: 'greet', version: 1, version_created: false, changed: false });
    const lane = await h.call('PUT', '/v1/templates/greet', { ...body, lane: 'transactional' });
    assert.deepEqual(lane.body, { key: 'greet', version: 1, version_created: false, changed: true });
    const edited = await h.call('PUT', '/v1/templates/greet', {
      ...body,
      lane: 'transactional',
      variants: { in_app: { en: { title: 'Hello {{ name }}' } } },
    });
    assert.deepEqual(edited.body, { key: 'greet', version: 2, version_created: true, changed: true });
    assert.deepEqual(await versionsOf('greet'), [1, 2]);

    const read = await h.call('GET', '/v1/templates/greet');
    assert.equal(read.body.version, 2);
    assert.equal(read.body.lane, 'transactional');
    assert.deepEqual(
      read.body.versions.map((v: { version: number }) => v.version),
      [1, 2],
    );
    const old = await h.call('GET', '/v1/templates/greet?version=1');
    assert.equal(old.body.variants.in_app.en.title, 'Hi {{ name }}');
    const list = await h.call('GET', '/v1/templates');
    assert.ok(
      list.body.items.some(
        (t: { key: string; current_version: number }) => t.key === 'greet' && t.current_version === 2,
      ),
    );
  });

  test('text problems are 400 template_invalid naming the part; nothing is saved', async () => {
    const res = await h.call('PUT', '/v1/templates/broken', {
      params: { name: 'string' },
      fallback_locale: 'en',
      variants: {
        in_app: { en: { title: 'Hi {{ nmae }}' }, ko: { title: '{% if %}' } },
        sms: { ko: { text: 'no fallback' } },
      },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'template_invalid');
    const fields = res.body.errors.map((e: { field: string }) => e.field).sort();
    assert.deepEqual(fields, [
      'body/variants/in_app/en/title',
      'body/variants/in_app/ko/title',
      'body/variants/sms',
    ]);
    assert.match(JSON.stringify(res.body.errors), /nmae/);
    assert.deepEqual(await versionsOf('broken'), []);
  });

  test('a sender key reads and previews but cannot write', async () => {
    const serviceId = await ensureService(db.pool, 'shop');
    const key = await createApiKey(db.pool, serviceId, senderPermissions);
    assert.equal((await h.call('GET', '/v1/templates/order.shipped', undefined, { key })).status, 200);
    assert.equal((await h.call('PUT', '/v1/templates/order.shipped', order, { key })).status, 403);
    const other = await createApiKey(db.pool, await ensureService(db.pool, 'other'), permissions);
    assert.equal((await h.call('GET', '/v1/templates/order.shipped', undefined, { key: other })).status, 404);
  });
});

describe('POST /v1/templates/:key/preview', () => {
  const preview = (locale: string, params: Record<string, unknown>, channels = ['in_app']) =>
    h.call('POST', '/v1/templates/order.shipped/preview', { locale, params, channels });

  test('locale: exact, then language (ko-KR → ko), then the fallback locale', async () => {
    assert.equal((await preview('pt-BR', { name: 'A', count: 2 })).body.channels.in_app.body, '2 itens');
    const ko = await preview('ko-KR', { name: '민수', count: 2 });
    assert.equal(ko.body.channels.in_app.locale, 'ko');
    assert.equal(ko.body.channels.in_app.body, '민수님 2개');
    const fr = await preview('fr-FR', { name: 'Zoé', count: 1 });
    assert.equal(fr.body.channels.in_app.locale, 'en');
    assert.equal(fr.body.channels.in_app.body, '1 item for Zoé');
    assert.equal(chooseLocale(['en', 'ko'], 'not a locale!', 'en'), 'en');
    assert.equal(chooseLocale(['en', 'ko-KR'], 'ko-kr', 'en'), 'ko-KR');
  });

  test('plurals follow the locale', async () => {
    const ru = async (count: number) => (await preview('ru', { name: 'x', count })).body.channels.in_app.body;
    assert.deepEqual(await Promise.all([1, 3, 5, 21].map(ru)), [
      '1 товар',
      '3 товара',
      '5 товаров',
      '21 товар',
    ]);
    const en = async (count: number) => (await preview('en', { name: 'x', count })).body.channels.in_app.body;
    assert.deepEqual(await Promise.all([1, 3].map(en)), ['1 item for x', '3 items for x']);
  });

  test('email html escapes every parameter; subject and text stay plain', async () => {
    const res = await preview('en', { name: '<script>alert("x")</script>', count: 2 }, ['email']);
    assert.equal(res.status, 200);
    const email = res.body.channels.email;
    assert.equal(email.html, '<p>Hello &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;, 2 items</p>');
    assert.equal(email.title, 'Order for <script>alert("x")</script>');
    assert.equal(email.body, 'Hello <script>alert("x")</script>');
  });

  test('raw does not unescape in html; template text cannot read files or run code', async () => {
    const put = await h.call('PUT', '/v1/templates/sneaky', {
      params: { name: 'string' },
      fallback_locale: 'en',
      variants: { email: { en: { subject: 's', html: '{{ name | raw }}{{ name.constructor }}' } } },
    });
    assert.equal(put.status, 400);
    assert.match(JSON.stringify(put.body.errors), /name\.constructor/);
    const include = await h.call('PUT', '/v1/templates/sneaky', {
      fallback_locale: 'en',
      variants: { email: { en: { subject: 's', html: '{% include "/etc/passwd" %}' } } },
    });
    assert.equal(include.status, 400);
    await h.call('PUT', '/v1/templates/sneaky', {
      params: { name: 'string' },
      fallback_locale: 'en',
      variants: { email: { en: { subject: 's', html: '<b>{{ name | raw }}</b>' } } },
    });
    const res = await h.call('POST', '/v1/templates/sneaky/preview', { params: { name: '<i>' } });
    assert.equal(res.body.channels.email.html, '<b>&lt;i&gt;</b>');
  });

  test('missing and ill-typed params are 400 naming each', async () => {
    const res = await preview('en', { count: '2' });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'template_params_invalid');
    assert.deepEqual(res.body.errors.map((e: { field: string }) => e.field).sort(), [
      'body/params/count',
      'body/params/name',
    ]);
  });
});

describe('POST /v1/notifications with a template', () => {
  const send = (extra: Record<string, unknown>) =>
    h.call('POST', '/v1/notifications', { recipients: ['u1'], channels: ['in_app'], ...extra });

  test('a missing parameter is 400 naming it', async () => {
    const res = await send({ template: 'order.shipped', params: { name: 'Kim' } });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, 'template_params_invalid');
    assert.deepEqual(res.body.errors, [
      { field: 'body/params/count', message: 'missing: the template declares count as integer' },
    ]);
  });

  test('a parameter of the wrong type is 400 naming it', async () => {
    for (const count of ['3', 1.5, true, null]) {
      const res = await send({ template: 'order.shipped', params: { name: 'Kim', count } });
      assert.equal(res.status, 400, String(count));
      assert.equal(res.body.code, 'template_params_invalid');
      assert.equal(res.body.errors[0].field, 'body/params/count');
    }
    const extra = await send({ template: 'order.shipped', params: { name: 'Kim', count: 1, cuont: 1 } });
    assert.deepEqual(extra.body.errors, [
      { field: 'body/params/cuont', message: 'not a parameter of this template' },
    ]);
  });

  test('an unknown template, content with template, a channel without a variant: 400', async () => {
    const unknown = await send({ template: 'nope', params: {} });
    assert.equal(unknown.body.code, 'template_not_found');
    const both = await send({
      template: 'order.shipped',
      params: { name: 'a', count: 1 },
      content: { default: { title: 'x' } },
    });
    assert.equal(both.body.code, 'validation_failed');
    const channel = await send({
      template: 'order.shipped',
      params: { name: 'a', count: 1 },
      channels: ['webhook'],
    });
    assert.equal(channel.body.code, 'content_missing');
  });

  test('the notification records template, version and params; category and lane are the template’s', async () => {
    const res = await send({ template: 'order.shipped', params: { name: 'Kim', count: 2 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const view = await h.call('GET', `/v1/notifications/${idPath(res.body.id)}`);
    assert.deepEqual(view.body.template, {
      key: 'order.shipped',
      version: 1,
      params: { name: 'Kim', count: 2 },
    });
    assert.equal(view.body.category, 'orders');
    assert.equal(view.body.lane, 'bulk');
    const own = await send({
      template: 'order.shipped',
      params: { name: 'Kim', count: 2 },
      lane: 'transactional',
    });
    const ownView = await h.call('GET', `/v1/notifications/${idPath(own.body.id)}`);
    assert.equal(ownView.body.lane, 'transactional');
    const patch = await h.call('PATCH', `/v1/notifications/${idPath(res.body.id)}`, {
      version: 2,
      content: { default: { title: 'x' } },
    });
    assert.equal(patch.status, 400);
  });
});

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
    const before = await versionsOf('order.shipped');
    const { file: edited } = await editXlsx(await download('xlsx'), [
      ['order.shipped/in_app/en', 'body', 'changed {{ name }}'],
    ]);
    const dry = await upload('/v1/templates/import?dry_run=true', edited, xlsxType);
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.dry_run, true);
    assert.equal(dry.body.updated, 1);
    assert.deepEqual(await versionsOf('order.shipped'), before);
    const real = await upload('/v1/templates/import', edited, xlsxType);
    assert.equal(real.body.updated, 1);
    const entry = real.body.templates.find((t: { key: string }) => t.key === 'order.shipped');
    assert.equal(entry.result, 'new_version');
    assert.deepEqual(await versionsOf('order.shipped'), [...before, before.length + 1]);
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
});
