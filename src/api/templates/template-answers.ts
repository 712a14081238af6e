// What the template routes answer, as their OpenAPI description (and, with RESPONSE_VALIDATION,
// the check of every answer).
import { Type } from 'typebox';
import { channels, lanes } from '../../domain/notification.js';
import { paramTypes } from '../../domain/template.js';
import { Answer, Enum, FreeForm, Nullable, Timestamp } from '../../http/openapi-contract.js';

export const TemplateListSchema = Answer({
  items: Type.Array(
    Answer({
      key: Type.String(),
      category: Type.String(),
      lane: Enum(lanes),
      current_version: Type.Integer(),
      created_at: Timestamp(),
      updated_at: Timestamp(),
    }),
  ),
});

export const SavedTemplateSchema = Answer({
  key: Type.String(),
  version: Type.Integer({ description: 'The current version after the save.' }),
  version_created: Type.Boolean({ description: 'The save made a new version (else one equal existed).' }),
  changed: Type.Boolean({ description: 'false: the template already was exactly this.' }),
});

export const TemplateVersionSchema = Answer({
  key: Type.String(),
  category: Type.String(),
  lane: Enum(lanes),
  version: Type.Integer(),
  params: Type.Record(Type.String(), Enum(paramTypes)),
  fallback_locale: Type.String(),
  steps: Type.Union([Type.Array(Type.Record(Type.String(), Type.Unknown())), Type.Null()], {
    description: 'Workflow steps for requests that give none (docs/workflows.md).',
  }),
  variants: Type.Record(
    Type.String(),
    Type.Record(Type.String(), Type.Record(Type.String(), Type.String())),
    {
      description: 'Per channel, per locale: the Liquid text of each part.',
    },
  ),
  versions: Type.Array(Answer({ version: Type.Integer(), created_at: Timestamp() })),
});

export const PreviewSchema = Answer({
  key: Type.String(),
  version: Type.Integer(),
  channels: Type.Record(
    Type.String({ description: 'A channel name.' }),
    Answer({
      locale: Type.String({ description: 'The locale used (the fallback when the asked one is missing).' }),
      title: Type.Optional(Type.String()),
      body: Type.Optional(Type.String()),
      url: Type.Optional(Type.String()),
      status: Type.Optional(Type.String()),
      html: Type.Optional(Type.String()),
    }),
  ),
});

const TemplateChange = Type.Object(
  {
    field: Type.String(),
    channel: Type.Optional(Enum(channels)),
    locale: Type.Optional(Type.String()),
    part: Type.Optional(Type.String()),
    old: Nullable(Type.String()),
    new: Nullable(Type.String()),
    row: Type.Optional(Type.Integer({ description: 'The sheet row the new value was read from.' })),
  },
  { additionalProperties: false },
);

export const ImportReportSchema = Answer({
  dry_run: Type.Boolean(),
  import_id: Nullable(Type.Integer({ description: 'Undo it by this id; null for a dry run.' })),
  created: Type.Integer(),
  updated: Type.Integer(),
  unchanged: Type.Integer(),
  templates: Type.Array(
    Answer({
      key: Type.String(),
      version: Type.Integer(),
      result: Enum(['created', 'new_version', 'updated', 'unchanged']),
      changes: Type.Array(TemplateChange),
    }),
  ),
  changes_truncated: Type.Boolean(),
  warnings: Type.Array(
    Answer({
      field: Type.String(),
      row: Type.Integer(),
      column: Type.String(),
      key: Type.String(),
      kind: Type.String(),
      text: Type.String(),
      probably: Nullable(Type.String()),
      message: Type.String(),
    }),
  ),
  warnings_truncated: Type.Boolean(),
});

export const ImportListSchema = Answer({
  items: Type.Array(
    Answer({
      id: Type.Integer(),
      kind: Enum(['import', 'undo']),
      created_at: Timestamp(),
      key_id: Nullable(Type.Integer({ description: 'The API key; null for a console user.' })),
      undoes: Nullable(Type.Integer()),
      undone_by: Nullable(Type.Integer()),
      templates: Type.Integer({ description: 'How many templates it changed.' }),
      summary: FreeForm(),
    }),
  ),
  next_cursor: Nullable(Type.String()),
});

const TemplateState = Nullable(
  Answer({ version: Type.Integer(), category: Type.String(), lane: Enum(lanes) }),
);

export const UndoneImportSchema = Answer({
  id: Type.Integer({ description: 'The undo, itself recorded as an import.' }),
  undoes: Type.Integer(),
  templates: Type.Array(Answer({ key: Type.String(), from: TemplateState, to: TemplateState })),
});
