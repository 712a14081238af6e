// Settings of the SMS providers in HERALD_CONFIG_FILE: Twilio Programmable Messaging, and a
// generic HTTP gateway that any vendor with a JSON or form API can be described with, without
// code (request template, success and error rules, signed delivery receipts).
import { Type, type Static } from 'typebox';
import { SecretRef, commonProviderSettings } from '../provider-settings.js';

const httpUrlPattern = '^https?://[^\\s]+$';

/** RFC 6901 JSON pointer: '' is the whole document, '/data/id' a member, '/messages/0' an index. */
const JsonPointer = Type.String({
  pattern: '^(/([^~/]|~[01])*)*$',
  description: 'JSON pointer (RFC 6901) into the answer, e.g. "/data/id".',
});

const MaxSegments = Type.Integer({
  minimum: 1,
  maximum: 50,
  default: 10,
  description: 'Longest text, in SMS segments, a notification may carry (checked at ingest).',
});

export const TwilioSettings = Type.Object(
  {
    type: Type.Literal('twilio'),
    ...commonProviderSettings,
    url: Type.Optional(Type.String({ pattern: httpUrlPattern, default: 'https://api.twilio.com' })),
    accountSid: Type.String({ pattern: '^AC[0-9a-fA-F]{32}$' }),
    authToken: SecretRef,
    /** The sending number (E.164) or alphanumeric sender id; exactly one of from / messagingServiceSid. */
    from: Type.Optional(Type.String({ minLength: 1 })),
    messagingServiceSid: Type.Optional(Type.String({ pattern: '^MG[0-9a-fA-F]{32}$' })),
    maxSegments: Type.Optional(MaxSegments),
  },
  { additionalProperties: false },
);
export type TwilioSettings = Static<typeof TwilioSettings>;

/** Placeholders a gateway's body template may use inside its string values. */
export const gatewayPlaceholders = ['to', 'from', 'text', 'reference', 'encoding', 'segments'] as const;
export type GatewayPlaceholder = (typeof gatewayPlaceholders)[number];

export const SmsGatewayErrorRule = Type.Object(
  {
    /** Matches only answers with this HTTP status. */
    status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599 })),
    /** Matches only answers whose JSON has a value here (equal to `equals` when given). */
    path: Type.Optional(JsonPointer),
    equals: Type.Optional(Type.Union([Type.String(), Type.Number()])),
    outcome: Type.Union([
      Type.Literal('retry'),
      Type.Literal('target_invalid'),
      Type.Literal('failed'),
      Type.Literal('config_error'),
    ]),
  },
  { additionalProperties: false },
);
export type SmsGatewayErrorRule = Static<typeof SmsGatewayErrorRule>;

export const SmsGatewaySettings = Type.Object(
  {
    type: Type.Literal('sms_gateway'),
    ...commonProviderSettings,
    url: Type.String({ pattern: httpUrlPattern }),
    method: Type.Optional(Type.Union([Type.Literal('POST'), Type.Literal('PUT')], { default: 'POST' })),
    /**
     * Credentials the headers and body may use as {{secret.<key>}}, e.g. "Bearer {{secret.token}}";
     * they are never written into error reasons.
     */
    secrets: Type.Optional(
      Type.Record(Type.String(), SecretRef, { propertyNames: { pattern: '^[A-Za-z0-9_]{1,40}$' } }),
    ),
    /** Request headers: a value (may use {{secret.<key>}}), or a secret holding the whole value. */
    headers: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Type.Union([Type.String(), SecretRef])),
    ),
    format: Type.Union([Type.Literal('json'), Type.Literal('form')]),
    /**
     * The request body. String values may contain {{to}} {{from}} {{text}} {{reference}}
     * {{encoding}} {{segments}} {{secret.<key>}}; a value that is exactly "{{segments}}" is sent
     * as a number.
     * JSON bodies may nest objects and arrays; form bodies are flat.
     */
    body: Type.Record(Type.String(), Type.Unknown()),
    from: Type.Optional(Type.String({ minLength: 1 })),
    /** What {{encoding}} becomes, per encoding (default "gsm7" / "ucs2"), e.g. {"ucs2": "unicode"}. */
    encodingValues: Type.Optional(
      Type.Object(
        { gsm7: Type.Optional(Type.String()), ucs2: Type.Optional(Type.String()) },
        { additionalProperties: false },
      ),
    ),
    success: Type.Optional(
      Type.Object(
        {
          status: Type.Optional(
            Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
              minItems: 1,
              default: [200, 201, 202],
            }),
          ),
          /** Where the gateway's message id is in its answer; receipts are matched by it. */
          idPath: Type.Optional(JsonPointer),
        },
        { additionalProperties: false },
      ),
    ),
    /**
     * Checked in order against every answer, first match wins. When none matches: a success
     * status is sent; 408, 429 and 5xx retry (honouring Retry-After); 401/403 are config_error;
     * anything else failed.
     */
    errors: Type.Optional(Type.Array(SmsGatewayErrorRule)),
    /** Delivery receipts POSTed to /v1/callbacks/<name>, signed with Standard Webhooks. */
    receipts: Type.Optional(
      Type.Object(
        {
          /** The Standard Webhooks secret, "whsec_" + base64. */
          secret: SecretRef,
          idPath: JsonPointer,
          statusPath: JsonPointer,
          delivered: Type.Array(Type.String()),
          failed: Type.Array(Type.String()),
          /** Statuses meaning the number is bad for good: failed, and the number is dropped. */
          invalid: Type.Array(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    maxSegments: Type.Optional(MaxSegments),
  },
  { additionalProperties: false },
);
export type SmsGatewaySettings = Static<typeof SmsGatewaySettings>;
