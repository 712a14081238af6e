// An import's dry run as the console shows it: row by row, each row's template key and result
// (new template, new version, category or lane changed, unchanged, or error), the cells it
// changes old → new, the text that looks mis-decoded, and every problem found on it.
import type { ImportReview } from '../templates/template-import.js';

/** Import problems name their cell `row 7 / column body` (the header is row 1). */
const cellField = /^row (\d+) \/ column (.+)$/;

type Result = 'created' | 'new_version' | 'updated' | 'unchanged';
const resultText = (result: Result, version: number): string => {
  switch (result) {
    case 'created':
      return `new template (version ${String(version)})`;
    case 'new_version':
      return `new version ${String(version)}`;
    case 'updated':
      return 'category or lane changed';
    case 'unchanged':
      return 'unchanged';
  }
};

export interface ReportRow {
  number: number;
  key: string;
  channel: string;
  locale: string;
  result: string;
  is_error: boolean;
  problems: { column: string; message: string }[];
  changes: { where: string; old: string; new: string }[];
  warnings: { column: string; text: string; probably: string; message: string }[];
}

function emptyRow(row: { number: number; key: string; channel: string; locale: string }): ReportRow {
  return { ...row, result: '', is_error: false, problems: [], changes: [], warnings: [] };
}

/** The review as the import page shows it; `upload` is the hash Apply names. */
export function presentReview(review: ImportReview, upload: string) {
  const rows = new Map(review.rows.map((r) => [r.number, emptyRow(r)]));
  const fileProblems: { field: string; message: string }[] = [];
  if (!review.ok) {
    for (const error of review.errors) {
      const match = cellField.exec(error.field ?? '');
      const row = match === null ? undefined : rows.get(Number(match[1]));
      if (row === undefined || match === null)
        fileProblems.push({ field: error.field ?? '', message: error.message });
      else row.problems.push({ column: match[2] ?? '', message: error.message });
    }
    for (const row of rows.values()) {
      row.is_error = row.problems.length > 0;
      row.result = row.is_error ? 'error' : 'no problem found (nothing is imported while any row has one)';
    }
    return {
      ok: false,
      upload,
      counts: '',
      warning_count: 0,
      file_problems: fileProblems,
      rows: [...rows.values()],
    };
  }
  const { report } = review;
  const firstRowOf = new Map<string, ReportRow>();
  for (const row of rows.values()) if (!firstRowOf.has(row.key)) firstRowOf.set(row.key, row);
  for (const template of report.templates) {
    for (const row of rows.values())
      if (row.key === template.key) row.result = resultText(template.result, template.version);
    for (const change of template.changes) {
      const row = change.row === undefined ? firstRowOf.get(template.key) : rows.get(change.row);
      row?.changes.push({
        where:
          change.field === 'variants'
            ? `${change.channel} / ${change.locale} / ${change.part}${change.row === undefined ? ' (removed)' : ''}`
            : change.field,
        old: change.old ?? '',
        new: change.new ?? '',
      });
    }
  }
  for (const w of report.warnings)
    rows.get(w.row)?.warnings.push({
      column: w.column,
      text: w.text,
      probably: w.probably ?? '',
      message: w.message,
    });
  return {
    ok: true,
    upload,
    counts: {
      created: report.created,
      updated: report.updated,
      unchanged: report.unchanged,
      changes_truncated: report.changes_truncated,
      warnings_truncated: report.warnings_truncated,
    },
    warning_count: report.warnings.length,
    file_problems: fileProblems,
    rows: [...rows.values()],
  };
}
