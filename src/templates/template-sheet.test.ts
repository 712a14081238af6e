// Reading sheet rows into definitions, without a database: every blank required cell is named.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rowsToTemplates, type SheetRow } from './template-sheet.js';

const full = {
  key: 'greet',
  category: 'general',
  lane: 'transactional',
  params: 'name:string',
  fallback_locale: 'en',
  channel: 'sms',
  locale: 'en',
  text: 'Hi {{ name }}',
};

function rows(...cells: SheetRow['cells'][]): SheetRow[] {
  return cells.map((c, i) => ({ number: i + 2, cells: c }));
}

const fieldsOf = (sheet: SheetRow[]) => rowsToTemplates(sheet).errors.map((e) => e.field);

describe('blank required cells', () => {
  test('a complete row reads cleanly; an empty params cell means no parameters', () => {
    const parsed = rowsToTemplates(rows(full, { ...full, key: 'bare', params: '' }));
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(
      parsed.templates.map((t) => [t.key, t.definition.params]),
      [
        ['greet', { name: 'string' }],
        ['bare', {}],
      ],
    );
  });

  test('every blank required cell of a row is named, each once, as missing', () => {
    const parsed = rowsToTemplates(
      rows({ ...full, key: '', category: ' ', lane: '', fallback_locale: '', locale: '', text: '' }),
    );
    assert.deepEqual(
      parsed.errors.map((e) => [e.field, e.message]),
      [
        ['row 2 / column key', 'missing'],
        ['row 2 / column category', 'missing'],
        ['row 2 / column lane', 'missing'],
        ['row 2 / column fallback_locale', 'missing'],
        ['row 2 / column locale', 'missing'],
        ['row 2 / column text', 'missing: sms needs text'],
      ],
    );
    assert.deepEqual(parsed.templates, []);
  });

  test('on every row they occur, not only the first of a key or of the file', () => {
    const fields = fieldsOf(
      rows(
        { ...full, channel: '' },
        { ...full, locale: 'ko', category: '', text: '' },
        { ...full, key: '', locale: 'ja' },
        { ...full, key: 'other', fallback_locale: '', channel: 'email', locale: 'en', text: '' },
        { ...full, key: 'other', fallback_locale: '', channel: 'email', locale: 'ko', text: '' },
      ),
    );
    assert.deepEqual(fields, [
      'row 2 / column channel',
      'row 3 / column category',
      'row 3 / column text',
      'row 4 / column key',
      'row 5 / column fallback_locale',
      'row 5 / column subject',
      'row 5 / column text',
      'row 6 / column fallback_locale',
      'row 6 / column subject',
      'row 6 / column text',
    ]);
  });

  test('a part group needs one of its parts: push with a body only is complete', () => {
    const push = { ...full, channel: 'push', text: '', body: 'Hi' };
    assert.deepEqual(fieldsOf(rows(push)), []);
    assert.deepEqual(fieldsOf(rows({ ...push, body: '' })), ['row 2 / column title']);
  });
});
