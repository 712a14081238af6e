import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countSmsSegments } from './sms-segments.js';

test('GSM-7: 160 septets in one SMS, 153 per concatenated part', () => {
  assert.deepEqual(countSmsSegments('a'.repeat(160)), { encoding: 'gsm7', units: 160, segments: 1 });
  assert.deepEqual(countSmsSegments('a'.repeat(161)), { encoding: 'gsm7', units: 161, segments: 2 });
  assert.equal(countSmsSegments('a'.repeat(306)).segments, 2);
  assert.equal(countSmsSegments('a'.repeat(307)).segments, 3);
  assert.deepEqual(countSmsSegments(''), { encoding: 'gsm7', units: 0, segments: 0 });
});

test('GSM-7 extension characters cost two septets and never straddle a part', () => {
  assert.deepEqual(countSmsSegments('€'.repeat(80)), { encoding: 'gsm7', units: 160, segments: 1 });
  assert.equal(countSmsSegments(`${'a'.repeat(159)}{`).segments, 2);
  // 152 septets then a 2-septet character: it moves whole to the second part.
  const text = `${'a'.repeat(152)}[${'b'.repeat(152)}`;
  assert.equal(countSmsSegments(text).units, 306);
  assert.equal(countSmsSegments(text).segments, 3);
});

test('one non-GSM character switches the whole message to UCS-2', () => {
  assert.deepEqual(countSmsSegments(`${'a'.repeat(69)}ç`), { encoding: 'ucs2', units: 70, segments: 1 });
  assert.equal(countSmsSegments(`${'a'.repeat(70)}ç`).segments, 2);
});

test('Korean is UCS-2: 70 characters in one SMS, 67 per part', () => {
  assert.deepEqual(countSmsSegments('가'.repeat(70)), { encoding: 'ucs2', units: 70, segments: 1 });
  assert.deepEqual(countSmsSegments('가'.repeat(71)), { encoding: 'ucs2', units: 71, segments: 2 });
  assert.equal(countSmsSegments('안녕하세요 주문하신 상품이 발송되었습니다. '.repeat(5)).segments, 2);
  assert.equal(countSmsSegments('가'.repeat(100)).segments, 2);
  assert.equal(countSmsSegments('가'.repeat(134)).segments, 2);
  assert.equal(countSmsSegments('가'.repeat(135)).segments, 3);
});

test('a surrogate pair (emoji) counts two units and never straddles a part', () => {
  assert.deepEqual(countSmsSegments('😀'.repeat(35)), { encoding: 'ucs2', units: 70, segments: 1 });
  // 66 units then an emoji: the pair goes whole into the next part.
  assert.equal(countSmsSegments(`${'가'.repeat(66)}😀${'가'.repeat(66)}`).segments, 3);
});
