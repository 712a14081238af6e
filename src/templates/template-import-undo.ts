// Undoing a template import in one step: every template the import changed goes back to its
// state before it (the version, category and lane; a template the import created is
// withdrawn), in one transaction, and only if none of them changed since. The api role's undo
// route and the console's Undo button both undo through here. See docs/templates.md,
// "Undoing an import".
import { withTransaction, type Pool } from '../db/pools.js';
import { notifySettingsChanged, settingsChange } from '../db/settings-change.js';
import type { AuditActor } from '../db/stores/audit-store.js';
import {
  lockImport,
  markUndone,
  recordImport,
  type ImportEntry,
} from '../db/stores/template-import-store.js';
import {
  lockTemplateStates,
  sameTemplateState,
  setCurrentState,
  type TemplateState,
} from '../db/stores/template-store.js';
import { ProblemError } from '../domain/problems.js';

const presentState = (state: TemplateState) =>
  state === null ? null : { version: state.version, category: state.category, lane: state.lane };

function describeState(state: TemplateState | undefined): string {
  if (state === undefined || state === null) return 'not current (withdrawn or absent)';
  return `version ${String(state.version)}, category ${state.category}, lane ${state.lane}`;
}

/** Who undoes: the service, the API key (null for a console user) and whom the audit log names. */
export interface UndoRequester {
  serviceId: number;
  /** For the audit log's target (`service:<name>`). */
  serviceName: string;
  keyId: number | null;
  actor: AuditActor;
}

/** One transaction: check, restore every template, record the undo; or change nothing. */
export async function undoImport(pool: Pool, requester: UndoRequester, importId: number) {
  const { serviceId } = requester;
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
      serviceName: requester.serviceName,
      keyId: requester.keyId,
      actor: requester.actor,
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
