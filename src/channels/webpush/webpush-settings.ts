// The provider-file entry for Web Push (RFC 8030 delivery, RFC 8291 encryption, RFC 8292 VAPID).
import { Type, type Static } from 'typebox';
import { commonProviderSettings, SecretRef } from '../provider-settings.js';

export const WebPushSettings = Type.Object(
  {
    type: Type.Literal('webpush'),
    ...commonProviderSettings,
    /** How push services reach the operator: a mailto: or https: URL (the VAPID `sub` claim). */
    vapidSubject: Type.String({ pattern: '^(mailto:|https://).+' }),
    /** The application server key browsers subscribed with: an uncompressed P-256 point, base64url (65 bytes). */
    vapidPublicKey: Type.String({ pattern: '^[A-Za-z0-9_-]{87}$' }),
    /** Its private half, base64url (32 bytes). */
    vapidPrivateKey: SecretRef,
    /** Web app ids this entry serves; all when absent. */
    apps: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** An extra CA certificate (PEM path, relative to the config file) trusted besides the system roots. */
    caFile: Type.Optional(Type.String({ minLength: 1 })),
    /** How long the push service keeps an undelivered message. */
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_419_200, default: 86_400 })),
  },
  { additionalProperties: false },
);
export type WebPushSettings = Static<typeof WebPushSettings>;
