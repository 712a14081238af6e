// Mis-decoded text: real examples in several scripts, and properties over generated text.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { findSuspectText, repairMojibake } from './mojibake.js';
import { asLatin1, asWindows1252 } from '../../test/helpers/garble.js';

const examples = {
  korean: '[은행] 입금 알림: {{ name }}님, {{ amount }}원이 입금되었습니다.',
  japanese: 'ご注文ありがとうございます。{{ name }}様',
  chinese: '您的订单已发货',
  russian: 'Ваш заказ отправлен',
  greek: 'Η παραγγελία σας στάλθηκε',
  french: 'Votre commande a été expédiée, à bientôt !',
  german: 'Sehr geehrte Frau Müller, Ihre Bestellung ist unterwegs.',
  emoji: 'Order shipped 🎉📦',
};

describe('mis-decoded text is found and repaired', () => {
  for (const [language, text] of Object.entries(examples)) {
    test(`${language}: read as Windows-1252 or as Latin-1`, () => {
      for (const garbled of [asWindows1252(text), asLatin1(text)]) {
        const found = findSuspectText(garbled);
        assert.equal(found?.kind, 'mis_decoded', JSON.stringify(garbled));
        assert.equal(found.probably, text);
        assert.equal(found.excerpt, garbled);
        assert.equal(repairMojibake(garbled), text);
      }
    });
  }

  test('the incident: "[ì€í–‰]" (the invisible U+009D included) is "[은행]"', () => {
    const garbled = '[ì\u009d€í–‰] ìž…ê¸ˆ';
    assert.equal(asWindows1252('[은행] 입금'), garbled);
    assert.deepEqual(findSuspectText(garbled), {
      kind: 'mis_decoded',
      excerpt: garbled,
      probably: '[은행] 입금',
    });
  });

  test('the well-known short forms: "Ã©" is é, "ã‚" starts a kana, "Â£" is £', () => {
    assert.equal(repairMojibake('cafÃ©'), 'café');
    assert.equal(repairMojibake('ã‚¢'), 'ア');
    assert.equal(repairMojibake('Â£5'), '£5');
    assert.equal(repairMojibake('MÃ¼ller'), 'Müller');
  });

  test('text garbled twice is repaired twice', () => {
    const twice = asWindows1252(asWindows1252('주문'));
    assert.equal(repairMojibake(twice), '주문');
  });

  test('correct text mixed with garbled text: still a warning, only the garbled part repaired', () => {
    const mixed = `주문 ${asWindows1252('배송')}`;
    assert.equal(findSuspectText(mixed)?.probably, '주문 배송');
  });

  test('a long cell shows an excerpt around the first suspect character', () => {
    const text = `${'a'.repeat(1000)}${asWindows1252('은행')}${'b'.repeat(1000)}`;
    const found = findSuspectText(text);
    assert.equal(found?.kind, 'mis_decoded');
    assert.ok(found.excerpt.length <= 160);
    assert.match(found.excerpt, /^a{20}ì/);
    assert.match(found.probably, /^a{20}은행b+$/);
  });

  test('U+FFFD: the original is lost, so there is no repair to offer', () => {
    assert.deepEqual(findSuspectText('[\ufffd\ufffd] 입금'), {
      kind: 'replacement_character',
      excerpt: '[\ufffd\ufffd] 입금',
      probably: null,
    });
  });
});

describe('correct text does not warn', () => {
  test('accented Latin, typographic quotes, currency and symbols', () => {
    for (const text of [
      ...Object.values(examples),
      'café',
      'Müller',
      'Ærøskøbing',
      'Łódź',
      'ESPAÑA',
      '«\u00a0Bonjour\u00a0»',
      '« ESPAÑA »',
      '„Fuß“ und „Maß“',
      'L’ÉTÉ’S',
      'Prix : 12 € — 3 × ½ kg, 20 °C, © 2025 Herald™',
      'cœur, Œuvre, naïve, Ğ, ş',
      '',
    ]) {
      assert.equal(findSuspectText(text), undefined, text);
      assert.equal(repairMojibake(text), text, text);
    }
  });

  test('property: text of ASCII and Latin-1 letters never warns', () => {
    const latin = fc.constantFrom(
      ...Array.from(
        'abcxyzABCXYZ 0123456789.,;:!?\'"()-_{}<>/ àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ',
      ),
    );
    fc.assert(
      fc.property(fc.array(latin, { maxLength: 60 }), (chars) => {
        const text = chars.join('');
        assert.equal(findSuspectText(text), undefined);
      }),
      { numRuns: 2000 },
    );
  });

  test('property: text in non-Latin scripts, emoji and accents never warns', () => {
    fc.assert(
      fc.property(realText, (text) => {
        assert.equal(findSuspectText(text), undefined);
      }),
      { numRuns: 1000 },
    );
  });
});

/** Text as templates hold it: ASCII with Hangul, kana, CJK, Cyrillic, Greek, accents and emoji. */
const realText = fc
  .array(
    fc.oneof(
      fc.constantFrom(...' {{ name }}, 123.!?'.split('')),
      fc.integer({ min: 0xac00, max: 0xd7a3 }),
      fc.integer({ min: 0x3041, max: 0x30f6 }),
      fc.integer({ min: 0x4e00, max: 0x9fff }),
      fc.integer({ min: 0x0410, max: 0x044f }),
      fc.integer({ min: 0x03b1, max: 0x03c9 }),
      fc.constantFrom(0xe9, 0xfc, 0xe7, 0xdf, 0xf1),
      fc.integer({ min: 0x1f600, max: 0x1f64f }),
    ),
    { minLength: 1, maxLength: 40 },
  )
  .map((items) => items.map((c) => (typeof c === 'number' ? String.fromCodePoint(c) : c)).join(''));

describe('properties of garbling and repair', () => {
  test('any such text with a non-ASCII character, garbled either way, warns and repairs exactly', () => {
    fc.assert(
      fc.property(
        realText.filter((t) => /[^ -~]/.test(t)),
        fc.constantFrom(asWindows1252, asLatin1),
        (text, garble) => {
          const garbled = garble(text);
          const found = findSuspectText(garbled);
          assert.equal(found?.kind, 'mis_decoded');
          assert.equal(repairMojibake(garbled), text);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('ASCII text garbles to itself and never warns', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme-ascii' }), (text) => {
        assert.equal(asWindows1252(text), text);
        assert.equal(findSuspectText(text), undefined);
      }),
    );
  });
});
