// Builds an email delivery's MIME message once, with nodemailer's MailComposer, so the SMTP and
// SES adapters send identical bytes. The HTML part is made here from escaped text only: nothing
// the caller wrote reaches it as markup. A template's html part (RenderedMessage.html) is the
// operator's markup with every parameter HTML-escaped by the template engine.
import MailComposer from 'nodemailer/lib/mail-composer';
import addressparser from 'nodemailer/lib/addressparser';
import type { RenderedMessage } from '../channel-provider.js';

export interface EmailOptions {
  /** The From header, e.g. "Herald <noreply@example.com>". */
  from: string;
  /** List-Unsubscribe URL template ({user}, {category}, {delivery}), see email-settings.ts. */
  listUnsubscribe?: string | undefined;
}

export interface ComposedEmail {
  raw: Buffer;
  /** The Message-ID header without angle brackets. */
  messageId: string;
  envelope: { from: string; to: string };
}

/** The bare address of a From header value; throws if there is none. */
export function senderAddress(from: string): string {
  const address = addressparser(from, { flatten: true })[0]?.address;
  if (address === undefined || !address.includes('@')) {
    throw new Error(`from ${JSON.stringify(from)} has no email address`);
  }
  return address;
}

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** Only http(s) URLs become links; anything else (javascript:, data:) stays visible text. */
function linkable(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === 'https:' || protocol === 'http:';
  } catch {
    return false;
  }
}

function subjectOf(message: RenderedMessage): string {
  const { title, body } = message.content;
  if (title !== undefined && title.trim() !== '') return title.trim();
  const firstLine = body
    ?.split(/\r?\n/)
    .find((line) => line.trim() !== '')
    ?.trim();
  return firstLine ?? 'Notification';
}

function textOf(message: RenderedMessage): string {
  const { body, url } = message.content;
  return [body, url].filter((part) => part !== undefined && part !== '').join('\n\n') + '\n';
}

function htmlOf(message: RenderedMessage, subject: string): string {
  const { body, url } = message.content;
  const paragraphs: string[] = [];
  if (body !== undefined && body !== '') {
    paragraphs.push(`<p>${escapeHtml(body).replace(/\r?\n/g, '<br>\n')}</p>`);
  }
  if (url !== undefined && url !== '') {
    const shown = escapeHtml(url);
    paragraphs.push(linkable(url) ? `<p><a href="${shown}">${shown}</a></p>` : `<p>${shown}</p>`);
  }
  if (message.trackingPixelUrl !== undefined)
    paragraphs.push(
      `<img src="${escapeHtml(message.trackingPixelUrl)}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">`,
    );
  return (
    '<!doctype html>\n<html><head><meta charset="utf-8">' +
    `<title>${escapeHtml(subject)}</title></head>\n<body>\n${paragraphs.join('\n')}\n</body></html>\n`
  );
}

function unsubscribeUrl(template: string, message: RenderedMessage): string {
  return template
    .replaceAll('{user}', encodeURIComponent(message.userId))
    .replaceAll('{category}', encodeURIComponent(message.category))
    .replaceAll('{delivery}', encodeURIComponent(message.deliveryId));
}

export async function composeEmail(message: RenderedMessage, options: EmailOptions): Promise<ComposedEmail> {
  const sender = senderAddress(options.from);
  const domain = sender.slice(sender.lastIndexOf('@') + 1);
  // The delivery id is stable across attempts, so a retried send carries the same Message-ID
  // and a receiving system that saw the first copy can tell it is the same message.
  const messageId = `${message.deliveryId.replace(/[^A-Za-z0-9.\-_]/g, '-')}@${domain}`;
  const subject = subjectOf(message);
  const headers: Record<string, string | { prepared: true; value: string }> = {
    'X-Herald-Delivery': message.deliveryId,
  };
  // A template configured for the provider wins; otherwise Herald's own signed link.
  const url =
    options.listUnsubscribe !== undefined
      ? unsubscribeUrl(options.listUnsubscribe, message)
      : message.unsubscribeUrl;
  if (url !== undefined) {
    headers['List-Unsubscribe'] = { prepared: true, value: `<${url}>` };
    // RFC 8058: one-click unsubscribe is an HTTPS POST; mailto: cannot offer it.
    if (url.startsWith('https:')) headers['List-Unsubscribe-Post'] = 'List-Unsubscribe=One-Click';
  }
  const composer = new MailComposer({
    from: options.from,
    to: message.target,
    subject,
    messageId: `<${messageId}>`,
    text: textOf(message),
    // A template's html part was rendered with every parameter escaped; it is used as is.
    html: message.html ?? htmlOf(message, subject),
    headers,
    // Callers' text never names files or URLs to fetch, but make that impossible, not unlikely.
    disableFileAccess: true,
    disableUrlAccess: true,
    newline: 'windows',
  });
  const raw = await composer.compile().build();
  return { raw, messageId, envelope: { from: sender, to: message.target } };
}
