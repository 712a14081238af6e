// What a request to /v1/notifications may say: the body and header schemas, and the id check.
import { Type, type Static } from 'typebox';
import type { Caller } from '../../domain/caller.js';
import { parseNotificationId } from '../../domain/ids.js';
import { channels, lanes } from '../../domain/notification.js';
import { ProblemError } from '../../domain/problems.js';
import { templateKeyPattern } from '../../domain/template.js';
import { Answer, Nullable, Timestamp } from '../../http/openapi-contract.js';

const ChannelContent = Type.Object(
  {
    title: Type.Optional(Type.String({ maxLength: 256 })),
    body: Type.Optional(Type.String({ maxLength: 4000 })),
    url: Type.Optional(Type.String({ maxLength: 2048, format: 'uri' })),
    status: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const Content = Type.Object(
  Object.fromEntries(['default', ...channels].map((c) => [c, Type.Optional(ChannelContent)])) as Record<
    'default' | (typeof channels)[number],
    ReturnType<typeof Type.Optional<typeof ChannelContent>>
  >,
  { additionalProperties: false, description: 'Content per channel; each channel falls back to `default`.' },
);

const UserId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' });
export const NotificationIdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

export const NotificationRequestSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ maxLength: 200, description: 'Your own id, `<service>#<uuid>`.' })),
    recipients: Type.Array(UserId, { minItems: 1, maxItems: 100_000, description: 'User ids.' }),
    channels: Type.Array(Type.Union(channels.map((c) => Type.Literal(c))), {
      minItems: 1,
      uniqueItems: true,
    }),
    // No schema defaults: an absent lane or category is the template's (else transactional, general).
    lane: Type.Optional(
      Type.Union(
        lanes.map((l) => Type.Literal(l)),
        { description: "Default: the template's lane, else transactional." },
      ),
    ),
    category: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$',
        description: "Default: the template's category, else general.",
      }),
    ),
    content: Type.Optional(Content),
    template: Type.Optional(
      Type.String({
        pattern: templateKeyPattern,
        description: 'A template key, instead of content; its current version is used.',
      }),
    ),
    params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: "The template's declared parameters." }),
    ),
    send_at: Type.Optional(Type.String({ format: 'date-time', description: 'Send later (scheduled).' })),
    data: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), { description: 'Free-form data passed to the channels.' }),
    ),
  },
  { additionalProperties: false },
);

export const AcceptedSchema = Answer({
  id: Type.String({ description: '`<service>#<uuid>`' }),
  status: Type.Union([Type.Literal('accepted'), Type.Literal('scheduled')]),
  recipients: Type.Integer({ description: 'How many users it addresses.' }),
  created_at: Timestamp(),
  send_at: Nullable(Timestamp()),
});

export const PatchSchema = Type.Object(
  {
    version: Type.Integer({
      minimum: 2,
      maximum: 9_007_199_254_740_991,
      description: 'Must exceed the stored version.',
    }),
    content: Type.Optional(Content),
    data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' }),
  ),
});

export type NotificationRequestBody = Static<typeof NotificationRequestSchema>;

/** 400 for a malformed id, 403 for another service's (its name is in the id, so this leaks nothing). */
export function ownNotificationId(caller: Caller, text: string): string {
  const parsed = parseNotificationId(text);
  if (parsed === undefined)
    throw new ProblemError('invalid_notification_id', 'The id must be "<service>#<uuid>".');
  if (parsed.service !== caller.serviceName)
    throw new ProblemError('forbidden', 'This notification belongs to another service.');
  return `${parsed.service}#${parsed.uuid}`;
}
