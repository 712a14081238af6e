// What a request may say about a user and their devices: the body schemas, and the checks that
// turn a body into store fields, naming each bad field (the first one's code answers).
import { Type, type Static } from 'typebox';
import type { Pool } from '../../db/pools.js';
import { getUser, type User, type UserFields } from '../../db/stores/user-store.js';
import { isEmailAddress, normalizePhone } from '../../domain/contact.js';
import { uuidPatternText } from '../../domain/ids.js';
import { ProblemError, type ProblemCode, type ProblemDetail } from '../../domain/problems.js';
import type { OutboundPolicy } from '../../domain/outbound-policy.js';
import { checkTargetUrl } from '../check-target-url.js';

export const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const UserBody = Type.Object(
  {
    email: Type.Optional(Nullable(Type.String({ maxLength: 254 }))),
    phone: Type.Optional(Nullable(Type.String({ maxLength: 16, description: 'E.164, e.g. +821012345678' }))),
    locale: Type.Optional(Type.String({ minLength: 2, maxLength: 35 })),
    time_zone: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'IANA zone, e.g. Asia/Seoul' }),
    ),
    webhook_url: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
    chat_webhook_url: Type.Optional(
      Nullable(Type.String({ maxLength: 2048, description: 'Slack incoming webhook URL for this user.' })),
    ),
    attributes: Type.Optional(
      Type.Record(
        Type.String({ minLength: 1, maxLength: 64 }),
        Type.Union([Type.String({ maxLength: 256 }), Type.Number(), Type.Boolean()]),
        {
          maxProperties: 50,
          description: 'Replaces the stored attributes; workflow conditions test them (`{}` clears).',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
type UserBodyT = Static<typeof UserBody>;

export const DeviceBody = Type.Object(
  {
    platform: Type.Union([Type.Literal('ios'), Type.Literal('android'), Type.Literal('web')]),
    app_id: Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'Bundle id, FCM project/app, or web origin.',
    }),
    token: Type.String({
      minLength: 1,
      maxLength: 4096,
      description: 'Device token or Web Push subscription JSON.',
    }),
  },
  { additionalProperties: false },
);

export const UserParams = Type.Object({ userId: UserId });
export const DeviceParams = Type.Object({
  userId: UserId,
  deviceId: Type.String({ pattern: uuidPatternText }),
});

/** A bad field and the problem code it calls for. */
export interface FieldError extends ProblemDetail {
  code: ProblemCode;
}

/** Validates contact fields and turns the body into store fields; errors name each bad field. */
export function userFields(
  body: UserBodyT,
  prefix: string,
  outbound: OutboundPolicy,
): { fields: UserFields; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const fields: UserFields = {};
  if (body.email !== undefined) {
    if (body.email !== null && !isEmailAddress(body.email))
      errors.push({
        code: 'invalid_email',
        field: `${prefix}/email`,
        message: 'is not a valid email address',
      });
    fields.email = body.email?.toLowerCase() ?? null;
  }
  if (body.phone !== undefined) {
    const phone = body.phone === null ? null : normalizePhone(body.phone);
    if (phone === undefined)
      errors.push({
        code: 'invalid_phone',
        field: `${prefix}/phone`,
        message: 'is not a valid E.164 phone number',
      });
    else fields.phone = phone;
  }
  if (body.locale !== undefined) {
    try {
      fields.locale = Intl.getCanonicalLocales(body.locale)[0] ?? body.locale;
    } catch {
      errors.push({
        code: 'validation_failed',
        field: `${prefix}/locale`,
        message: 'is not a BCP 47 language tag',
      });
    }
  }
  if (body.time_zone !== undefined) {
    try {
      fields.timeZone = new Intl.DateTimeFormat('en', {
        timeZone: body.time_zone,
      }).resolvedOptions().timeZone;
    } catch {
      errors.push({
        code: 'validation_failed',
        field: `${prefix}/time_zone`,
        message: 'is not an IANA time zone',
      });
    }
  }
  if (body.webhook_url !== undefined) {
    const problem = body.webhook_url === null ? undefined : checkTargetUrl(body.webhook_url, outbound);
    if (problem !== undefined) errors.push({ ...problem, field: `${prefix}/webhook_url` });
    fields.webhookUrl = body.webhook_url;
  }
  if (body.chat_webhook_url !== undefined) {
    const problem =
      body.chat_webhook_url === null ? undefined : checkTargetUrl(body.chat_webhook_url, outbound);
    if (problem !== undefined) errors.push({ ...problem, field: `${prefix}/chat_webhook_url` });
    fields.chatWebhookUrl = body.chat_webhook_url;
  }
  if (body.attributes !== undefined) fields.attributes = body.attributes;
  return { fields, errors };
}

/** The first error's code answers; `errors` lists every bad field. */
export function throwFieldErrors(errors: FieldError[]): void {
  const first = errors[0];
  if (first === undefined) return;
  throw new ProblemError(
    first.code,
    `${first.field ?? 'input'} ${first.message}.`,
    errors.map(({ field, message }) => ({ ...(field === undefined ? {} : { field }), message })),
  );
}

/** The user, or a 404 problem. */
export async function requireUser(pool: Pool, id: string): Promise<User> {
  const user = await getUser(pool, id);
  if (user === undefined) throw new ProblemError('not_found', 'No user with this id.');
  return user;
}
