// What a notification request may say, whichever way it arrives (POST /v1/notifications or a
// broker's intake queue): one schema, so both refuse the same input with the same problem.
import { Type, type Static } from 'typebox';
import { channels, lanes } from '../domain/notification.js';
import { templateKeyPattern } from '../domain/template.js';
import { StepsSchema } from '../domain/workflow.js';
import { topicKeyPattern } from '../domain/topic.js';
import { rateBudgetNamePattern } from '../domain/rate-budget.js';

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

export const NotificationRequestSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ maxLength: 200, description: 'Your own id, `<service>#<uuid>`.' })),
    recipients: Type.Optional(
      Type.Array(UserId, { minItems: 1, maxItems: 100_000, description: 'User ids; or name a `topic`.' }),
    ),
    topic: Type.Optional(
      Type.String({
        pattern: topicKeyPattern,
        description: 'One of your topics, instead of recipients: every subscriber who has not opted out.',
      }),
    ),
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
    steps: Type.Optional(StepsSchema),
    budget: Type.Optional(
      Type.String({
        pattern: rateBudgetNamePattern,
        description:
          'One of your rate budgets (docs/budgets.md), bulk lane only. Absent: your budget named `default`, if any, for a bulk send.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type NotificationRequestBody = Static<typeof NotificationRequestSchema>;
