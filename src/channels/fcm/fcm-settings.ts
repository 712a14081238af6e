// The provider-file entry for FCM (HTTP v1 API, OAuth2 service-account credentials).
import { Type, type Static } from 'typebox';
import { commonProviderSettings, SecretRef } from '../provider-settings.js';

export const FcmSettings = Type.Object(
  {
    type: Type.Literal('fcm'),
    ...commonProviderSettings,
    /** The service-account JSON Google issues (client_email, private_key, project_id, token_uri). */
    serviceAccount: SecretRef,
    /** Base URL of the FCM API; only a stand-in or a proxy changes it. */
    url: Type.Optional(Type.String({ pattern: '^https?://[^/]+$', default: 'https://fcm.googleapis.com' })),
    /** The device platform this entry delivers to; each platform gets its own override block. */
    platform: Type.Optional(Type.Union([Type.Literal('android'), Type.Literal('ios'), Type.Literal('web')])),
    /** App ids (Android package names, bundle ids or web app ids) this entry serves; all when absent. */
    apps: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    /** An extra CA certificate (PEM path, relative to the config file) trusted besides the system roots. */
    caFile: Type.Optional(Type.String({ minLength: 1 })),
    /** How long FCM keeps an undelivered message (0 to 28 days). */
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_419_200, default: 86_400 })),
  },
  { additionalProperties: false },
);
export type FcmSettings = Static<typeof FcmSettings>;

/** The fields of the service-account JSON the adapter uses; Google's file has more. */
export const FcmServiceAccount = Type.Object({
  client_email: Type.String({ minLength: 1 }),
  private_key: Type.String({ minLength: 1 }),
  project_id: Type.String({ pattern: '^[a-z0-9-]+$' }),
  token_uri: Type.String({ pattern: '^https?://' }),
});
export type FcmServiceAccount = Static<typeof FcmServiceAccount>;
