// One setting's schema with what the generated docs show: its description, and whether it is
// a secret (never logged, never shown).
import type { TSchema } from 'typebox';

interface SettingMeta {
  description: string;
  secret?: boolean;
}

export function setting<T extends TSchema>(schema: T, meta: SettingMeta): T {
  return Object.assign(schema, { description: meta.description, 'x-secret': meta.secret === true });
}
