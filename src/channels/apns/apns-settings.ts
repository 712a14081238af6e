// The settings of an APNs provider entry in HERALD_CONFIG_FILE: token-based (.p8 key) auth to
// Apple's HTTP/2 provider API, or to a relay or stand-in that speaks it.
import { Type, type Static } from 'typebox';
import { SecretRef, commonProviderSettings } from '../provider-settings.js';

export const apnsProductionUrl = 'https://api.push.apple.com';
export const apnsSandboxUrl = 'https://api.sandbox.push.apple.com';

/** Apple's team and key ids are 10 characters, upper-case letters and digits. */
const appleId = Type.String({ pattern: '^[A-Z0-9]{10}$' });

export const ApnsSettings = Type.Object(
  {
    type: Type.Literal('apns'),
    ...commonProviderSettings,
    /** Production, or https://api.sandbox.push.apple.com for development builds' tokens. */
    url: Type.Optional(
      Type.String({
        pattern: '^https://[^/?#]+/?$',
        default: apnsProductionUrl,
        description: `APNs origin: ${apnsProductionUrl}, or ${apnsSandboxUrl} for development builds.`,
      }),
    ),
    teamId: appleId,
    keyId: appleId,
    /** The .p8 file's content: a PKCS#8 PEM of a P-256 key. */
    signingKey: SecretRef,
    /** Bundle ids this provider serves; when absent, every iOS device. */
    apps: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { minItems: 1 })),
    /** An extra CA to trust (a private relay, the test stand-in), relative to the config file. */
    caFile: Type.Optional(Type.String({ minLength: 1 })),
    /** How long APNs keeps trying an offline device; 0 means deliver now or never. */
    expirationSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_592_000, default: 86_400 })),
  },
  { additionalProperties: false },
);
export type ApnsSettings = Static<typeof ApnsSettings>;
