// Validation of contact addresses: email by shape and length, phones by libphonenumber-js.
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

// RFC 5321 limits: 64 octets local part, 254 in all. Pragmatic shape: one @, a dot in the domain,
// no spaces or control characters. Deliverability is the mail server's business.
const emailPattern =
  /^[^\s@"(),:;<>[\\\]]{1,64}@(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

export function isEmailAddress(text: string): boolean {
  return text.length <= 254 && emailPattern.test(text);
}

/** A phone number in E.164 form (+ and 8–15 digits) that libphonenumber-js judges valid. */
export function normalizePhone(text: string): string | undefined {
  if (!/^\+[1-9]\d{6,14}$/.test(text)) return undefined;
  const parsed = parsePhoneNumberFromString(text);
  return parsed?.isValid() === true ? parsed.number : undefined;
}
