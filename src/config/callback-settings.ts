// The status callback sender's settings (docs/callbacks.md), part of the one settings schema
// (schema.ts), in its place there.
import { Type } from 'typebox';
import { setting } from './setting.js';

export const callbackSettings = {
  CALLBACK_TIMEOUT_MS: setting(Type.Integer({ minimum: 100, maximum: 60_000, default: 5000 }), {
    description: 'Timeout of one status callback POST, from connecting to the end of the answer.',
  }),
  CALLBACK_CONCURRENCY: setting(Type.Integer({ minimum: 1, maximum: 1000, default: 16 }), {
    description: 'Status callback POSTs in flight at once per worker process.',
  }),
  CALLBACK_MAX_ATTEMPTS: setting(Type.Integer({ minimum: 1, maximum: 100, default: 12 }), {
    description: 'Attempts per status callback message before it is dead (a callback dead letter).',
  }),
  CALLBACK_MAX_AGE_HOURS: setting(Type.Number({ exclusiveMinimum: 0, maximum: 720, default: 24 }), {
    description: 'A status callback message still not delivered this long after its first attempt is dead.',
  }),
  CALLBACK_RETRY_BASE_MS: setting(Type.Integer({ minimum: 1, maximum: 3_600_000, default: 5000 }), {
    description:
      'Backoff before the second attempt of a status callback; doubles per attempt, with full jitter.',
  }),
  CALLBACK_RETRY_MAX_MS: setting(Type.Integer({ minimum: 1, maximum: 86_400_000, default: 3_600_000 }), {
    description:
      'Longest wait between two attempts of a status callback; a Retry-After is honoured up to this.',
  }),
};
