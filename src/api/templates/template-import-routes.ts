// /v1/templates/imports: a service's recorded imports, and undoing one in a step. An undo puts
// every template the import changed back to its state before it (the version, category and
// lane; a template the import created is withdrawn), in one transaction, and only if none of
// them changed since. See docs/templates.md, "Undoing an import".
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { withTransaction, type Pool } from '../../db/pools.js';
import { notifySettingsChanged, settingsChange } from '../../db/settings-change.js';
import {
  listImports,
  lockImport,
  markUndone,
  recordImport,
  type ImportEntry,
  type ImportRecord,
} from '../../db/stores/template-import-store.js';
import {
  lockTemplateStates,
  sameTemplateState,
  setCurrentState,
  type TemplateState,
} from '../../db/stores/template-store.js';
import type { Caller } from '../../domain/caller.js';
import { ProblemError } from '../../domain/problems.js';
import type { AuditActor } from '../../db/stores/audit-store.js';
import { callerOf, requirePermission } from '../../http/api-key-auth.js';
import { apiKeyActor } from '../audited-change.js';
import type { TemplateRouteDeps } from './template-routes.js';

const ImportIdParam = Type.Object({
  importId: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
});

/** Opaque cursor: base64url of the id of the last import listed. */
const encodeCursor = (id: number): string => Buffer.from(String(id)).toString('base64url');

function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const id = Number(text);
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(id)) {
    throw new ProblemError('cursor_invalid', 'Use the next_cursor of a page of this listing.', [
      { field: 'querystring/cursor', message: 'invalid' },
    ]);
  }
  return id;
}

function presentImport(record: ImportRecord) {
  return {
    id: record.id,
    kind: record.kind,
    created_at: record.createdAt.toISOString(),
    key_id: record.keyId,
    undoes: record.undoes,
    undone_by: record.undoneBy,
    templates: record.templateCount,
    summary: record.summary,
  };
}

export function templateImportRoutes(deps: TemplateRouteDeps): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const writer = requirePermission(deps.authenticate, ['templates']);
    const tags = ['templates'];

    app.get(
      '/v1/templates/imports',
      {
        onRequest: writer,
        schema: {
          summary: "Your service's template imports and undos, newest first, with their report summary",
          tags,
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
              cursor: Type.Optional(Type.String({ maxLength: 100 })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request) => {
        const limit = request.query.limit ?? 20;
        const before = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor);
        const records = await listImports(deps.pool, callerOf(request).serviceId, limit, before);
        const last = records.at(-1);
        return {
          items: records.map(presentImport),
          next_cursor: records.length === limit && last !== undefined ? encodeCursor(last.id) : null,
        };
      },
    );

    app.post(
      '/v1/templates/imports/:importId/undo',
      {
        onRequest: writer,
        schema: {
          summary:
            'Undo an import: every template it changed goes back to its state before it, unless one changed since',
          tags,
          params: ImportIdParam,
        },
      },
      async (request) => {
        const caller = callerOf(request);
        const undone = await undoImport(deps.pool, caller, apiKeyActor(request), request.params.importId);
        deps.onSaved?.(
          caller.serviceId,
          undone.templates.map((t) => t.key),
        );
        return undone;
      },
    );
  };
}

const presentState = (state: TemplateState) =>
  state === null ? null : { version: state.version, category: state.category, lane: state.lane };

function describeState(state: TemplateState | undefined): string {
  if (state === undefined || state === null) return 'not current (withdrawn or absent)';
  return `version ${String(state.version)}, category ${state.category}, lane ${state.lane}`;
}

/** One transaction: check, restore every template, record the undo; or change nothing. */
async function undoImport(pool: Pool, caller: Caller, actor: AuditActor, importId: number) {
  const { serviceId } = caller;
  return withTransaction(pool, async (client) => {
    // Another service's import is as unknown as one that does not exist.
    const target = await lockImport(client, serviceId, importId);
    if (target === undefined) throw new ProblemError('not_found', 'No template import with this id.');
    if (target.undoneBy !== null) {
      throw new ProblemError(
        'template_import_undo_conflict',
        `Import ${String(importId)} was already undone (by ${String(target.undoneBy)}); nothing changed.`,
        [{ field: 'params/importId', message: `already undone by ${String(target.undoneBy)}` }],
      );
    }
    const states = await lockTemplateStates(
      client,
      serviceId,
      target.entries.map((e) => e.key),
    );
    const changedSince = target.entries.filter((e) => !sameTemplateState(states.get(e.key) ?? null, e.after));
    if (changedSince.length > 0) throw changedSinceProblem(importId, changedSince, states);
    await notifySettingsChanged(
      client,
      target.entries.map((e) => settingsChange.template(serviceId, e.key)),
    );
    for (const entry of target.entries) await setCurrentState(client, serviceId, entry.key, entry.before);
    const reversed: ImportEntry[] = target.entries.map((e) => ({
      key: e.key,
      before: e.after,
      after: e.before,
    }));
    const undoId = await recordImport(client, {
      serviceId,
      serviceName: caller.serviceName,
      keyId: caller.keyId,
      actor,
      kind: 'undo',
      undoes: importId,
      summary: { restored: reversed.length },
      entries: reversed,
    });
    await markUndone(client, importId, undoId);
    return {
      id: undoId,
      undoes: importId,
      templates: reversed.map((e) => ({
        key: e.key,
        from: presentState(e.before),
        to: presentState(e.after),
      })),
    };
  });
}

function changedSinceProblem(
  importId: number,
  changed: readonly ImportEntry[],
  states: ReadonlyMap<string, TemplateState>,
): ProblemError {
  const count = `${String(changed.length)} template${changed.length === 1 ? '' : 's'}`;
  return new ProblemError(
    'template_import_undo_conflict',
    `${count} changed after import ${String(importId)}; undoing it would overwrite that work, so nothing changed.`,
    changed.map((e) => ({
      field: `templates/${e.key}`,
      message: `now ${describeState(states.get(e.key))}; the import left ${describeState(e.after)}`,
    })),
  );
}
