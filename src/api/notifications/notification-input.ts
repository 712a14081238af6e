// What /v1/notifications' routes answer and take besides the request body (its schema is shared
// with broker intake: ingest/notification-request.ts): headers, ids, the PATCH body.
import { Type } from 'typebox';
import type { Caller } from '../../domain/caller.js';
import { parseNotificationId } from '../../domain/ids.js';
import { ProblemError } from '../../domain/problems.js';
import { Answer, Nullable, Timestamp } from '../../http/openapi-contract.js';
import { Content } from '../../ingest/notification-request.js';

export { Content, NotificationRequestSchema } from '../../ingest/notification-request.js';

export const NotificationIdParam = Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) });

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

/** 400 for a malformed id, 403 for another service's (its name is in the id, so this leaks nothing). */
export function ownNotificationId(caller: Caller, text: string): string {
  const parsed = parseNotificationId(text);
  if (parsed === undefined)
    throw new ProblemError('invalid_notification_id', 'The id must be "<service>#<uuid>".');
  if (parsed.service !== caller.serviceName)
    throw new ProblemError('forbidden', 'This notification belongs to another service.');
  return `${parsed.service}#${parsed.uuid}`;
}
