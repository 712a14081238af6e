// What the template route tests share: the order.shipped template (email and in-app, four
// locales, ICU plurals), and an api-role Herald on its own database that already holds it.
import assert from 'node:assert/strict';
import type { Pool } from '../../src/db/pools.js';
import { createTestDatabase, type TestDatabase } from './test-database.js';
import { startTestHerald, type TestHerald } from './test-herald.js';

const plural = '{{ "{count, plural, one {# item} other {# items}}" | icu }}';
export const order = {
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

/** A test database and an api-role Herald on it, holding order.shipped at version 1. */
export async function startTemplateHerald(): Promise<{ db: TestDatabase; h: TestHerald }> {
  const db = await createTestDatabase();
  // A save renders every variant once within half of RENDER_ITEM_LIMIT_MS (10 ms by default): a
  // cold first ICU render on a busy CI machine can take longer. These tests are about the
  // routes, not that limit (src/templates' own tests hold it), so it is generous here.
  const h = await startTestHerald(db, { roles: ['api'], env: { RENDER_ITEM_LIMIT_MS: '1000' } });
  const put = await h.call('PUT', '/v1/templates/order.shipped', order);
  if (put.status !== 200) {
    // Stop what was started: a Herald left running keeps the test file's process alive, and
    // the file hangs instead of failing.
    await h.stop();
    await db.drop();
    assert.fail(`saving the fixture template answered ${String(put.status)}: ${JSON.stringify(put.body)}`);
  }
  return { db, h };
}

/** The versions a template key has, oldest first. */
export async function versionsOf(pool: Pool, key: string): Promise<number[]> {
  const r = await pool.query<{ version: number }>(
    'SELECT version FROM template_versions WHERE key = $1 ORDER BY version',
    [key],
  );
  return r.rows.map((row) => row.version);
}
