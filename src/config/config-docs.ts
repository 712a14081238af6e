// Renders the configuration reference from the schema, so the docs cannot drift from it.
import { ConfigSchema } from './schema.js';

interface PropertyDoc {
  type?: string;
  default?: string | number | boolean;
  description?: string;
  minimum?: number;
  maximum?: number;
  anyOf?: { const: unknown }[];
  'x-secret'?: boolean;
}

export function renderConfigDocs(): string {
  const required = new Set<string>((ConfigSchema as { required?: string[] }).required ?? []);
  const rows = Object.entries(ConfigSchema.properties as Record<string, PropertyDoc>).map(([name, p]) => {
    const type =
      p.anyOf !== undefined ? p.anyOf.map((a) => `\`${String(a.const)}\``).join(' \\| ') : (p.type ?? '');
    const range =
      p.minimum !== undefined || p.maximum !== undefined
        ? ` (${String(p.minimum ?? '')}–${String(p.maximum ?? '')})`
        : '';
    const def =
      p.default === undefined ? (required.has(name) ? 'required' : '—') : `\`${String(p.default)}\``;
    const secret = p['x-secret'] === true ? ' Secret: never logged.' : '';
    return `| \`${name}\` | ${type}${range} | ${def} | ${p.description ?? ''}${secret} |`;
  });
  return [
    '# Configuration',
    '',
    'Generated from `src/config/schema.ts` by `npm run docs:config`; do not edit by hand.',
    '',
    'Herald reads these environment variables once at start-up. An invalid value stops start-up',
    'with a message naming every bad setting (exit code 78); nothing falls back silently.',
    '',
    '| Setting | Type | Default | Meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
