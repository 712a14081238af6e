// SMS segment counting (3GPP TS 23.038). A message stays in the GSM 7-bit alphabet when every
// character is in it: 160 septets in one SMS, 153 per part when concatenated (the UDH takes
// 7), and extension-table characters cost two septets that never straddle a part. Any other
// character switches the whole message to UCS-2: 70 UTF-16 units in one SMS, 67 per part, and a
// surrogate pair (emoji) never straddles a part. Korean Hangul is always UCS-2.

const gsmBasic = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const gsmExtension = new Set('\f^{}\\[~]|€');

export type SmsEncoding = 'gsm7' | 'ucs2';

export interface SmsSegments {
  encoding: SmsEncoding;
  /** Septets (GSM-7) or UTF-16 code units (UCS-2). */
  units: number;
  segments: number;
}

const limits = {
  gsm7: { single: 160, part: 153 },
  ucs2: { single: 70, part: 67 },
} as const;

export function countSmsSegments(text: string): SmsSegments {
  // Code points, not grapheme clusters: SMS encodes each code point on its own, and a
  // surrogate pair must stay whole.
  const chars = Array.from(text);
  const isGsm = chars.every((c) => gsmBasic.has(c) || gsmExtension.has(c));
  const encoding: SmsEncoding = isGsm ? 'gsm7' : 'ucs2';
  // The cost of each character that must stay whole within one part.
  const costs = chars.map((c) => (isGsm ? (gsmExtension.has(c) ? 2 : 1) : c.length));
  const units = costs.reduce((a, b) => a + b, 0);
  const { single, part } = limits[encoding];
  if (units <= single) return { encoding, units, segments: units === 0 ? 0 : 1 };
  let segments = 1;
  let used = 0;
  for (const cost of costs) {
    if (used + cost > part) {
      segments += 1;
      used = 0;
    }
    used += cost;
  }
  return { encoding, units, segments };
}
