// Templates through the api role: versions, preview (locale fallback, plurals, HTML escaping),
// and parameter checks at ingest. The xlsx/CSV export and import: template-import-export.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestDatabase } from '../../../test/helpers/test-database.js';
import { idPath, type TestHerald } from '../../../test/helpers/test-herald.js';
import { order, startTemplateHerald, versionsOf } from '../../../test/helpers/template-herald.js';
import { createApiKey, ensureService } from '../../db/stores/api-key-store.js';
import { chooseLocale } from '../../domain/template.js';
import { permissions, senderPermissions } from '../../domain/permissions.js';

let db: TestDatabase;
let h: TestHerald;

before(async () => {
  ({ db, h } = await startTemplateHerald());
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
    assert.deepEqual(await versionsOf(db.pool, 'greet'), [1, 2]);

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
    assert.deepEqual(await versionsOf(db.pool, 'broken'), []);
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
