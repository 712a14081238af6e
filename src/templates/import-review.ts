// What an import will do to one template, as a reviewer reads it: each changed cell old → new
// with the sheet row it came from, and a warning for each new text that looks mis-decoded.
import { findSuspectText, type SuspectText } from '../domain/mojibake.js';
import type { TemplateChange } from '../domain/template-changes.js';
import type { SheetTemplate } from './template-sheet.js';

/** A change with the sheet row its new value came from (none for a removed variant). */
export type SheetChange = TemplateChange & { row?: number };

export interface ImportWarning {
  /** `row 7 / column body`, as import errors name cells. */
  field: string;
  row: number;
  column: string;
  key: string;
  kind: SuspectText['kind'];
  /** The suspect text: the whole cell, or an excerpt of a long one. */
  text: string;
  /** What the text probably said; null when it cannot be recovered (U+FFFD). */
  probably: string | null;
  message: string;
}

/** The row each change's new value was read from. */
export function locateChanges(template: SheetTemplate, changes: readonly TemplateChange[]): SheetChange[] {
  return changes.map((change) => {
    const row =
      change.field === 'variants'
        ? template.rowOf.get(`${change.channel}/${change.locale}`)
        : template.firstRow;
    return row === undefined ? change : { ...change, row };
  });
}

/** A warning per changed cell whose new text looks damaged by a wrong conversion. */
export function suspectCells(key: string, changes: readonly SheetChange[]): ImportWarning[] {
  const warnings: ImportWarning[] = [];
  for (const change of changes) {
    if (change.new === null || change.row === undefined) continue;
    const suspect = findSuspectText(change.new);
    if (suspect === undefined) continue;
    const column = change.field === 'variants' ? change.part : change.field;
    warnings.push({
      field: `row ${String(change.row)} / column ${column}`,
      row: change.row,
      column,
      key,
      kind: suspect.kind,
      text: suspect.excerpt,
      probably: suspect.probably,
      message:
        suspect.probably === null
          ? `contains U+FFFD (�): a conversion lost characters here, and they cannot be recovered from the file: "${suspect.excerpt}"`
          : `looks mis-decoded (UTF-8 read as Latin-1 or Windows-1252): "${suspect.excerpt}" is probably "${suspect.probably}"`,
    });
  }
  return warnings;
}
