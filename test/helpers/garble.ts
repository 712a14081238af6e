// Text as a spreadsheet program shows UTF-8 it reads with the wrong encoding ("mojibake"),
// built from the bytes and Windows-1252's own table, independently of src/domain/mojibake.ts.

/** Windows-1252 for bytes 0x80–0x9F (its five undefined bytes kept as C1 controls, as browsers do). */
const cp1252High = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';

/** UTF-8 text read as Latin-1. */
export const asLatin1 = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

/** UTF-8 text read as Windows-1252: "[은행]" becomes "[ì\u009d€í–‰]". */
export function asWindows1252(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((b) => (b >= 0x80 && b <= 0x9f ? (cp1252High[b - 0x80] ?? '') : String.fromCharCode(b)))
    .join('');
}
