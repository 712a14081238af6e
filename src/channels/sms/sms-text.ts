// The text an SMS carries and whether it fits. Every SMS adapter sends smsText(content) and
// checks it with checkSmsText, at ingest (checkContent) and again before the call, so what was
// accepted is what is sent.
import type { ChannelContent } from '../../domain/notification.js';
import { countSmsSegments, type SmsEncoding } from '../../domain/sms-segments.js';

/** The title (with its status, as in chat), the body and the link, one per line. */
export function smsText(content: ChannelContent): string {
  const { title, body, url, status } = content;
  const lines: string[] = [];
  if (title !== undefined && title !== '')
    lines.push(status === undefined || status === '' ? title : `${title} (${status})`);
  if (body !== undefined && body !== '') lines.push(body);
  if (url !== undefined && url !== '') lines.push(url);
  return lines.join('\n');
}

export const encodingLabel: Record<SmsEncoding, string> = { gsm7: 'GSM-7', ucs2: 'UCS-2' };

/**
 * Null when the text fits, else why not, naming the segment count and encoding. `maxChars`
 * counts code points (Twilio's 1600-character Body limit).
 */
export function checkSmsText(
  text: string,
  limits: { maxSegments: number; maxChars?: number },
): string | null {
  if (text === '') return 'SMS text is empty: the notification needs a title, body or url';
  const { segments, encoding } = countSmsSegments(text);
  if (segments > limits.maxSegments) {
    return `SMS text is ${String(segments)} segments (${encodingLabel[encoding]}), more than the ${String(limits.maxSegments)} allowed`;
  }
  const chars = Array.from(text).length;
  if (limits.maxChars !== undefined && chars > limits.maxChars) {
    return `SMS text is ${String(chars)} characters (${String(segments)} segments, ${encodingLabel[encoding]}), more than the ${String(limits.maxChars)} allowed`;
  }
  return null;
}
