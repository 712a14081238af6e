// Cell-by-cell differences between two definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { definitionChanges } from './template-changes.js';
import { sameVersionBody, type TemplateDefinition } from './template.js';

const order: TemplateDefinition = {
  category: 'orders',
  lane: 'bulk',
  params: { name: 'string', count: 'integer' },
  fallbackLocale: 'en',
  variants: {
    email: {
      en: { subject: 'Order', text: 'Hello {{ name }}' },
      ko: { subject: '주문', text: '{{ name }}님' },
    },
    sms: { en: { text: 'Shipped' } },
  },
};

test('the same definition has no changes', () => {
  assert.deepEqual(definitionChanges(order, structuredClone(order)), []);
});

test('a new template lists every non-blank cell as new', () => {
  const changes = definitionChanges(undefined, order);
  assert.deepEqual(changes.slice(0, 4), [
    { field: 'category', old: null, new: 'orders' },
    { field: 'lane', old: null, new: 'bulk' },
    { field: 'params', old: null, new: 'count:integer, name:string' },
    { field: 'fallback_locale', old: null, new: 'en' },
  ]);
  assert.deepEqual(
    changes
      .slice(4)
      .map((c) => (c.field === 'variants' ? `${c.channel}/${c.locale}/${c.part}=${String(c.new)}` : '')),
    [
      'sms/en/text=Shipped',
      'email/en/subject=Order',
      'email/en/text=Hello {{ name }}',
      'email/ko/subject=주문',
      'email/ko/text={{ name }}님',
    ],
  );
  assert.ok(changes.every((c) => c.old === null));
});

test('edited, added and removed parts and variants, and shared fields, old → new', () => {
  const after: TemplateDefinition = {
    ...order,
    lane: 'transactional',
    params: { name: 'string' },
    variants: {
      email: { en: { subject: 'Your order', html: '<p>Hi</p>', text: 'Hello {{ name }}' } },
      sms: { en: { text: 'Shipped' }, ko: { text: '발송' } },
    },
  };
  assert.deepEqual(definitionChanges(order, after), [
    { field: 'lane', old: 'bulk', new: 'transactional' },
    { field: 'params', old: 'count:integer, name:string', new: 'name:string' },
    { field: 'variants', channel: 'sms', locale: 'ko', part: 'text', old: null, new: '발송' },
    { field: 'variants', channel: 'email', locale: 'en', part: 'subject', old: 'Order', new: 'Your order' },
    { field: 'variants', channel: 'email', locale: 'en', part: 'html', old: null, new: '<p>Hi</p>' },
    { field: 'variants', channel: 'email', locale: 'ko', part: 'subject', old: '주문', new: null },
    { field: 'variants', channel: 'email', locale: 'ko', part: 'text', old: '{{ name }}님', new: null },
  ]);
});

test('property: no changes exactly when the version bodies and the settings are the same', () => {
  const variant = fc.record({ text: fc.constantFrom('a', 'b', '안녕') });
  const definition = fc.record({
    category: fc.constantFrom('a', 'b'),
    lane: fc.constantFrom('bulk' as const, 'transactional' as const),
    params: fc.dictionary(fc.constantFrom('x', 'y'), fc.constantFrom('string' as const, 'integer' as const)),
    fallbackLocale: fc.constantFrom('en', 'ko'),
    variants: fc.record(
      { sms: fc.dictionary(fc.constantFrom('en', 'ko'), variant, { minKeys: 1 }) },
      { requiredKeys: [] },
    ),
  });
  fc.assert(
    fc.property(definition, definition, (a, b) => {
      const same = sameVersionBody(a, b) && a.category === b.category && a.lane === b.lane;
      assert.equal(definitionChanges(a, b).length === 0, same);
    }),
    { numRuns: 500 },
  );
});
