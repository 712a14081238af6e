// Provider entries for the email channel in HERALD_CONFIG_FILE: an SMTP relay or Amazon SES v2.
// Both send the same MIME bytes (compose-email.ts), so switching between them changes no message.
import { Type, type Static } from 'typebox';
import { SecretRef, commonProviderSettings } from '../provider-settings.js';

const from = Type.String({
  minLength: 3,
  description: 'The From header, e.g. "Herald <noreply@example.com>"; its address is the envelope sender.',
});

const listUnsubscribe = Type.Optional(
  Type.String({
    pattern: '^(https|mailto):',
    description:
      'List-Unsubscribe URL (https: or mailto:). {user}, {category} and {delivery} are replaced by the ' +
      "recipient's user id, the notification category and the delivery id (URL-encoded). An https URL " +
      'also gets List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058).',
  }),
);

export const SmtpSettings = Type.Object(
  {
    type: Type.Literal('smtp'),
    ...commonProviderSettings,
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65_535 }),
    /** Implicit TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
    secure: Type.Optional(Type.Boolean()),
    /** Refuse to send unless STARTTLS succeeds (ignored when `secure`). */
    requireTls: Type.Optional(Type.Boolean()),
    user: Type.Optional(Type.String({ minLength: 1 })),
    password: Type.Optional(SecretRef),
    from,
    listUnsubscribe,
    /** PEM file of the CA to trust for the server's certificate (a private relay). */
    caFile: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
export type SmtpSettings = Static<typeof SmtpSettings>;

export const SesSettings = Type.Object(
  {
    type: Type.Literal('ses'),
    ...commonProviderSettings,
    region: Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-\\d+$' }),
    /** Overrides https://email.<region>.amazonaws.com (a VPC endpoint, or a stand-in in tests). */
    endpoint: Type.Optional(Type.String({ pattern: '^https?://' })),
    accessKeyId: Type.String({ minLength: 1 }),
    secretAccessKey: SecretRef,
    from,
    /** SES configuration set whose event destination (SNS) reports deliveries, bounces and complaints. */
    configurationSet: Type.Optional(Type.String({ minLength: 1 })),
    listUnsubscribe,
    /**
     * Password of the SNS subscription to POST /v1/callbacks/<name>, given to SNS as
     * https://herald:<password>@host/v1/callbacks/<name>. Without it, callbacks are refused.
     */
    callbackPassword: Type.Optional(SecretRef),
  },
  { additionalProperties: false },
);
export type SesSettings = Static<typeof SesSettings>;
