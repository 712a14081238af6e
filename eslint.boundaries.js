// The layers of src/ and what each folder may import (docs/architecture.md draws them). A folder
// imports only from the layers below it and from the folders it names; a role never imports
// another role, and no folder below the roles imports a role. A test lints fixtures against
// these rules (test/lint/boundaries.test.ts), so a back-edge fails CI.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The sub-folders of src/<folder>/: the adapters under channels/, the api role's features. */
function subFolders(folder) {
  return readdirSync(join(import.meta.dirname, 'src', folder), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name);
}

/** What each folder of src/ may import, besides itself. */
export const allowedImports = {
  domain: [],
  config: ['domain'],
  observability: ['domain', 'config'],
  db: ['domain', 'config', 'observability'],
  http: ['domain', 'config', 'observability'],
  // Adapters see the port (the files at the root of channels/), domain/ and observability/.
  channels: ['domain', 'observability'],
  templates: ['domain', 'observability', 'db'],
  archive: ['domain', 'config', 'observability', 'db'],
  // Routes served by more than one role (a user's preferences: api and query).
  preferences: ['domain', 'observability', 'db', 'http'],
  // Accepting a notification request, however it arrived (api over HTTP, intake from a broker).
  ingest: ['domain', 'observability', 'db', 'templates'],
  // The roles: each its own room, none importing another.
  api: ['domain', 'observability', 'db', 'http', 'channels-port', 'templates', 'preferences', 'ingest'],
  intake: ['domain', 'observability', 'db', 'http', 'ingest'],
  query: ['domain', 'observability', 'db', 'http', 'templates', 'preferences'],
  pipeline: ['domain', 'observability', 'db', 'channels-port', 'templates'],
  scheduler: ['domain', 'observability', 'db', 'archive'],
  console: ['domain', 'observability', 'db', 'http', 'templates'],
  composition: null, // the composition root wires everything
};

const folders = Object.keys(allowedImports);

/** Import specifiers that reach into `folder` from another folder of src/. */
function reaching(folder) {
  return [`**/${folder}/**`, `../${folder}`, `../../${folder}`];
}

function patternsFor(folder) {
  const allowed = allowedImports[folder];
  const usesPort = allowed.includes('channels-port');
  const forbidden = folders.filter(
    (f) => f !== folder && !allowed.includes(f) && !(f === 'channels' && usesPort),
  );
  const patterns = [
    {
      group: forbidden.flatMap(reaching),
      message: `${folder}/ may import only ${allowed.length === 0 ? 'itself' : allowed.join(', ')} (eslint.boundaries.js).`,
    },
  ];
  // Roles use the channel port (the files at the root of channels/), never a concrete adapter.
  if (usesPort)
    patterns.push({
      group: ['**/channels/*/**'],
      message: `${folder}/ uses the channel port, never an adapter; composition/ wires adapters.`,
    });
  if (folder === 'domain')
    patterns.push({
      group: ['node:*', 'pg', 'fastify', 'undici', 'fs', 'pino', 'prom-client'],
      message: 'domain/ is pure: no I/O imports.',
    });
  return patterns;
}

const rule = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

/** ESLint flat-config entries, one per folder of src/ (tests may import anything). */
export const boundaries = [
  ...folders
    .filter((folder) => allowedImports[folder] !== null)
    .map((folder) => ({
      files: [`src/${folder}/**/*.ts`],
      ignores: ['**/*.test.ts'],
      rules: rule(patternsFor(folder)),
    })),
  // An adapter (channels/<name>/…) imports its own folder and the port files, never another adapter.
  {
    files: ['src/channels/*/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: rule([
      ...patternsFor('channels'),
      {
        group: subFolders('channels').map((name) => `../${name}/**`),
        message: 'An adapter imports its own folder and the port files, never another adapter.',
      },
    ]),
  },
  // A feature of the api role (api/<feature>/…) imports its own folder and the files at the root
  // of api/ (what several features share), never another feature.
  {
    files: ['src/api/*/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: rule([
      ...patternsFor('api'),
      {
        group: subFolders('api').map((name) => `../${name}/**`),
        message:
          'A feature of the api role imports its own folder and api/ root files, never another feature.',
      },
    ]),
  },
];
