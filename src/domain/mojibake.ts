// Text that looks mis-decoded ("mojibake"): UTF-8 bytes read back as Latin-1 or Windows-1252,
// as a spreadsheet round trip with the wrong encoding does ("[은행]" becomes "[ì€í–‰]"), and
// U+FFFD replacement characters, which mark bytes a conversion could not read at all.
//
// The check is precise rather than a pattern guess: each character is mapped back to the byte
// Latin-1 or Windows-1252 would have read it from, and a lead byte with its continuation bytes
// must decode as strict UTF-8 (TextDecoder with fatal: true). Plain accented Latin text ("café",
// "Müller") never qualifies: its accented letters are lead bytes at most, never followed by the
// continuation bytes 0x80–0xBF (which Latin-1 shows as symbols such as ©, « or “).

/** Windows-1252's characters for bytes 0x80–0x9F; Latin-1 has C1 controls there (U+0080–U+009F). */
const cp1252Bytes: ReadonlyMap<number, number> = new Map([
  [0x20ac, 0x80],
  [0x201a, 0x82],
  [0x0192, 0x83],
  [0x201e, 0x84],
  [0x2026, 0x85],
  [0x2020, 0x86],
  [0x2021, 0x87],
  [0x02c6, 0x88],
  [0x2030, 0x89],
  [0x0160, 0x8a],
  [0x2039, 0x8b],
  [0x0152, 0x8c],
  [0x017d, 0x8e],
  [0x2018, 0x91],
  [0x2019, 0x92],
  [0x201c, 0x93],
  [0x201d, 0x94],
  [0x2022, 0x95],
  [0x2013, 0x96],
  [0x2014, 0x97],
  [0x02dc, 0x98],
  [0x2122, 0x99],
  [0x0161, 0x9a],
  [0x203a, 0x9b],
  [0x0153, 0x9c],
  [0x017e, 0x9e],
  [0x0178, 0x9f],
]);

/**
 * What a two-byte sequence may decode to and still count as mojibake: Latin-1 symbols and
 * accented letters ("Ã©" → é), Latin Extended-A, Greek, Cyrillic, Hebrew and Arabic letters.
 * Other two-byte results (IPA, Syriac, NKo, historic Cyrillic) are far more likely to be a real
 * letter followed by a quotation mark, e.g. German „Fuß“ (ß then “ would decode to NKo U+07D3).
 */
const twoByteTargets: readonly [number, number][] = [
  [0x00a0, 0x017f],
  [0x0384, 0x03ce],
  [0x0400, 0x045f],
  [0x0490, 0x04ff],
  [0x05d0, 0x05ea],
  [0x0600, 0x06ff],
];

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const replacementCharacter = '\ufffd';
/** How much of a long cell a warning shows. */
const excerptLength = 160;
/** Text garbled twice (UTF-8 → Latin-1 → UTF-8 → Latin-1) is repaired by repeating the repair. */
const maxRepairRounds = 3;

/** The byte Latin-1 or Windows-1252 shows as this character, if any. */
function byteOf(char: string): number | undefined {
  const code = char.codePointAt(0) ?? 0;
  return code <= 0xff ? code : cp1252Bytes.get(code);
}

/** How many bytes a UTF-8 sequence starting with this byte has; 0 if it cannot start one. */
function sequenceLength(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

function isContinuation(byte: number | undefined): byte is number {
  return byte !== undefined && byte >= 0x80 && byte <= 0xbf;
}

/** Whether a decoded character is what a mis-decoded sequence of this length plausibly was. */
function plausible(decoded: string, length: number): boolean {
  const code = decoded.codePointAt(0) ?? 0;
  if (length === 2) return twoByteTargets.some(([low, high]) => code >= low && code <= high);
  // Private use and specials are never what a template meant.
  return !(code >= 0xe000 && code <= 0xf8ff) && !(code >= 0xfff0 && code <= 0xffff);
}

/** The character a mis-decoded sequence starting at chars[start] stood for, or undefined. */
function decodeAt(chars: readonly string[], start: number): { decoded: string; length: number } | undefined {
  const lead = byteOf(chars[start] ?? '');
  const length = lead === undefined ? 0 : sequenceLength(lead);
  if (lead === undefined || length === 0) return undefined;
  const bytes = [lead];
  for (let i = start + 1; i < start + length; i += 1) {
    const byte = byteOf(chars[i] ?? '');
    if (!isContinuation(byte)) return undefined;
    bytes.push(byte);
  }
  let decoded: string;
  try {
    decoded = strictUtf8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined; // overlong, a surrogate, or past U+10FFFF: not UTF-8 at all
  }
  return plausible(decoded, length) ? { decoded, length } : undefined;
}

/** One round: every mis-decoded sequence replaced by what it stood for; the count replaced. */
function repairOnce(text: string): { text: string; repaired: number } {
  const chars = Array.from(text);
  let out = '';
  let repaired = 0;
  for (let i = 0; i < chars.length;) {
    const found = decodeAt(chars, i);
    if (found === undefined) {
      out += chars[i] ?? '';
      i += 1;
    } else {
      out += found.decoded;
      repaired += 1;
      i += found.length;
    }
  }
  return { text: out, repaired };
}

/** The text as it probably was before it was mis-decoded (unchanged if nothing looks so). */
export function repairMojibake(text: string): string {
  let current = text;
  for (let round = 0; round < maxRepairRounds; round += 1) {
    const { text: next, repaired } = repairOnce(current);
    if (repaired === 0) break;
    current = next;
  }
  return current;
}

export type SuspectText =
  | { kind: 'mis_decoded'; excerpt: string; probably: string }
  | { kind: 'replacement_character'; excerpt: string; probably: null };

/**
 * Why a text looks damaged by a wrong conversion, with an excerpt (the whole text when short)
 * and, for mis-decoded text, what the excerpt probably said; undefined when it looks fine.
 */
export function findSuspectText(text: string): SuspectText | undefined {
  const chars = Array.from(text);
  const first = chars.findIndex((_, i) => decodeAt(chars, i) !== undefined);
  if (first >= 0) {
    const excerpt = excerptOf(chars, first);
    return { kind: 'mis_decoded', excerpt, probably: repairMojibake(excerpt) };
  }
  const lost = chars.indexOf(replacementCharacter);
  return lost < 0
    ? undefined
    : { kind: 'replacement_character', excerpt: excerptOf(chars, lost), probably: null };
}

/** The whole text when short; else a window that starts a little before `at`. */
function excerptOf(chars: readonly string[], at: number): string {
  if (chars.length <= excerptLength) return chars.join('');
  const start = Math.max(0, Math.min(at - 20, chars.length - excerptLength));
  return chars.slice(start, start + excerptLength).join('');
}
