// Bulk templates as a sheet (xlsx through exceljs, or CSV): one row per template × channel ×
// locale, columns as in docs/templates.md. Reading turns rows back into definitions and names
// every bad row and column; nothing here touches the database.
import { Readable } from 'node:stream';
import ExcelJS from 'exceljs';
import { lanes, type Channel, type Lane } from '../domain/notification.js';
import type { ProblemDetail } from '../domain/problems.js';
import {
  allParts,
  categoryPattern,
  channelParts,
  formatParams,
  paramTypes,
  requiredParts,
  type DefinitionPlace,
  type DefinitionProblem,
  type ParamType,
  type Part,
  type StoredTemplateVersion,
  type TemplateDefinition,
} from '../domain/template.js';

export const sheetFormats = ['xlsx', 'csv'] as const;
export type SheetFormat = (typeof sheetFormats)[number];

export const sheetColumns = [
  'key',
  'version',
  'category',
  'lane',
  'params',
  'fallback_locale',
  'channel',
  'locale',
  ...allParts,
] as const;
type Column = (typeof sheetColumns)[number];
const requiredColumns: readonly Column[] = [
  'key',
  'category',
  'lane',
  'params',
  'fallback_locale',
  'channel',
  'locale',
];
/** Cells that may not be blank on any row; a blank params cell means "no parameters". */
const requiredCells = requiredColumns.filter((column) => column !== 'params');

export const sheetName = 'templates';
export const xlsxMediaType = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** The rows of an export: a header, then one row per template × channel × locale. */
export function templatesToRows(templates: readonly StoredTemplateVersion[]): string[][] {
  const rows: string[][] = [[...sheetColumns]];
  for (const t of templates) {
    for (const channel of Object.keys(channelParts) as Channel[]) {
      const byLocale = t.variants[channel];
      if (byLocale === undefined) continue;
      const locales = Object.keys(byLocale).sort((a, b) =>
        a === t.fallbackLocale ? -1 : b === t.fallbackLocale ? 1 : a < b ? -1 : a > b ? 1 : 0,
      );
      for (const locale of locales) {
        const variant = byLocale[locale] ?? {};
        const cells: Record<Column, string> = {
          key: t.key,
          version: String(t.version),
          category: t.category,
          lane: t.lane,
          params: formatParams(t.params),
          fallback_locale: t.fallbackLocale,
          channel,
          locale,
          title: '',
          body: '',
          url: '',
          subject: '',
          text: '',
          html: '',
        };
        for (const part of allParts) cells[part] = variant[part] ?? '';
        rows.push(sheetColumns.map((c) => cells[c]));
      }
    }
  }
  return rows;
}

export async function writeSheet(rows: string[][], format: SheetFormat): Promise<Buffer> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet(sheetName);
  for (const row of rows) sheet.addRow(row);
  if (format === 'xlsx') {
    sheet.getRow(1).font = { bold: true };
    sheet.views = [{ state: 'frozen', ySplit: 1 }];
    // Every cell is text: Excel must not turn "1.0" or "2025-01-01" into a number or a date.
    for (let c = 1; c <= sheetColumns.length; c += 1) sheet.getColumn(c).numFmt = '@';
    return Buffer.from(await workbook.xlsx.writeBuffer());
  }
  return Buffer.from(await workbook.csv.writeBuffer());
}

export interface SheetRow {
  /** The row's number as a spreadsheet shows it (the header is row 1). */
  number: number;
  cells: Partial<Record<Column, string>>;
}

export type ReadResult = { ok: true; rows: SheetRow[] } | { ok: false; errors: ProblemDetail[] };

/** Reads an uploaded sheet: the first worksheet of an xlsx, or a CSV with a header row. */
export async function readSheet(body: Buffer, format: SheetFormat): Promise<ReadResult> {
  const workbook = new ExcelJS.Workbook();
  let sheet: ExcelJS.Worksheet | undefined;
  try {
    if (format === 'xlsx') {
      await workbook.xlsx.load(body as unknown as ArrayBuffer);
      sheet = workbook.getWorksheet(sheetName) ?? workbook.worksheets[0];
    } else {
      // map: keep every cell as the text it is (no number or date guessing).
      sheet = await workbook.csv.read(Readable.from([body]), { map: (value: unknown) => value });
    }
  } catch (error) {
    return {
      ok: false,
      errors: [
        {
          field: 'file',
          message: `not a readable ${format} file: ${error instanceof Error ? error.message : 'unknown error'}`,
        },
      ],
    };
  }
  if (sheet === undefined)
    return { ok: false, errors: [{ field: 'file', message: 'the workbook has no worksheet' }] };

  const header: (Column | undefined)[] = [];
  const errors: ProblemDetail[] = [];
  const headerRow = sheet.getRow(1);
  const seen = new Set<string>();
  for (let c = 1; c <= headerRow.cellCount; c += 1) {
    const name = cellText(headerRow.getCell(c).value).trim();
    if (name === '') continue;
    if (!(sheetColumns as readonly string[]).includes(name)) {
      errors.push({ field: `row 1 / column ${columnLetter(c)}`, message: `unknown column "${name}"` });
    } else if (seen.has(name)) {
      errors.push({ field: `row 1 / column ${name}`, message: 'the column appears twice' });
    } else {
      header[c] = name as Column;
      seen.add(name);
    }
  }
  for (const column of requiredColumns) {
    if (!seen.has(column)) errors.push({ field: `row 1 / column ${column}`, message: 'missing column' });
  }
  if (errors.length > 0) return { ok: false, errors };

  const rows: SheetRow[] = [];
  sheet.eachRow({ includeEmpty: false }, (row, number) => {
    if (number === 1) return;
    const cells: Partial<Record<Column, string>> = {};
    header.forEach((column, c) => {
      if (column !== undefined) cells[column] = cellText(row.getCell(c).value);
    });
    if (Object.values(cells).some((text) => text !== '')) rows.push({ number, cells });
  });
  return { ok: true, rows };
}

function columnLetter(n: number): string {
  let s = '';
  for (let x = n; x > 0; x = Math.floor((x - 1) / 26)) s = String.fromCharCode(65 + ((x - 1) % 26)) + s;
  return s;
}

/** A cell as text, whatever Excel made of it. */
function cellText(value: ExcelJS.CellValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  if ('richText' in value) return value.richText.map((r) => r.text).join('');
  if ('text' in value && typeof value.text === 'string') return value.text;
  if ('result' in value) return cellText(value.result);
  if ('error' in value) return value.error;
  return '';
}

/** A definition read from rows, with where each of its parts came from. */
export interface SheetTemplate {
  key: string;
  definition: TemplateDefinition;
  firstRow: number;
  /** `${channel}/${locale}` → row number; `${channel}` → first row of the channel. */
  rowOf: Map<string, number>;
}

export interface ParsedSheet {
  /** Templates whose rows all read cleanly (their definitions still need checking). */
  templates: SheetTemplate[];
  errors: ProblemDetail[];
}

const keyPattern = /^[a-z0-9][a-z0-9_.-]{0,127}$/;
const categoryRegExp = new RegExp(categoryPattern);

/** Names a bad column of the row being read, and marks its template as not to be saved. */
type RowError = (column: string, message: string) => void;
type SharedColumns = Record<'category' | 'lane' | 'params' | 'fallback_locale', string>;
/** A template being read: its rows so far, with the shared columns of its first row. */
type TemplateInSheet = SheetTemplate & { shared: SharedColumns };

/** Groups rows into definitions by key; every row and column that cannot be read is an error. */
export function rowsToTemplates(rows: readonly SheetRow[]): ParsedSheet {
  const errors: ProblemDetail[] = [];
  const broken = new Set<string>();
  const sharedBad = new Set<string>();
  const byKey = new Map<string, TemplateInSheet>();

  for (const { number, cells } of rows) {
    const get = (c: Column) => (cells[c] ?? '').trim();
    const key = get('key');
    const named = new Set<string>();
    const at: RowError = (column, message) => {
      broken.add(key);
      // One error per cell: a blank cell is "missing", not also "differs from row 2".
      if (named.has(column)) return;
      named.add(column);
      errors.push({ field: `row ${String(number)} / column ${column}`, message });
    };
    nameBlankCells(cells, at);
    if (!keyPattern.test(key)) {
      at('key', key === '' ? 'missing' : 'must be lowercase letters, digits, ".", "_" or "-"');
      continue;
    }
    const shared = {
      category: get('category'),
      lane: get('lane'),
      params: get('params'),
      fallback_locale: get('fallback_locale'),
    };
    let template = byKey.get(key);
    if (template === undefined) {
      const first = startTemplate(key, number, shared, at);
      template = first.template;
      byKey.set(key, template);
      if (!first.ok) {
        // Later rows of this key are not compared with a first row that is itself wrong.
        sharedBad.add(key);
        continue;
      }
    } else if (!sharedBad.has(key) && !sameAsFirstRow(template, shared, at)) continue;
    addVariant(template, number, cells, at);
  }
  return { templates: [...byKey.values()].filter((t) => !broken.has(t.key)), errors };
}

/**
 * Names every blank required cell of a row, so a file with many gaps shows them all at once
 * (the checks after this one stop at the first cell of a row they cannot read).
 */
function nameBlankCells(cells: SheetRow['cells'], at: RowError): void {
  for (const column of requiredCells) if ((cells[column] ?? '').trim() === '') at(column, 'missing');
  const channel = (cells.channel ?? '').trim();
  if (!Object.hasOwn(channelParts, channel)) return;
  for (const group of requiredParts(channel as Channel)) {
    if (group.every((part) => (cells[part] ?? '') === '')) {
      at(group[0] ?? 'channel', `missing: ${channel} needs ${group.join(' or ')}`);
    }
  }
}

/** A template from its first row; not ok when a shared column of that row cannot be read. */
function startTemplate(
  key: string,
  number: number,
  shared: SharedColumns,
  at: RowError,
): { template: TemplateInSheet; ok: boolean } {
  let ok = true;
  if (!categoryRegExp.test(shared.category)) {
    at('category', shared.category === '' ? 'missing' : 'not a category name');
    ok = false;
  }
  if (!(lanes as readonly string[]).includes(shared.lane)) {
    at('lane', `must be ${lanes.join(' or ')}`);
    ok = false;
  }
  const params = parseParams(shared.params);
  if (typeof params === 'string') {
    at('params', params);
    ok = false;
  }
  if (shared.fallback_locale === '') {
    at('fallback_locale', 'missing');
    ok = false;
  }
  const template: TemplateInSheet = {
    key,
    firstRow: number,
    rowOf: new Map(),
    shared,
    definition: {
      category: shared.category,
      lane: shared.lane as Lane,
      params: typeof params === 'string' ? {} : params,
      fallbackLocale: shared.fallback_locale,
      variants: {},
    },
  };
  return { template, ok };
}

/** Whether a later row repeats its template's shared columns as the first row has them. */
function sameAsFirstRow(template: TemplateInSheet, shared: SharedColumns, at: RowError): boolean {
  const key = template.key;
  let ok = true;
  for (const column of ['category', 'lane', 'fallback_locale'] as const) {
    if (shared[column] !== template.shared[column]) {
      at(column, `differs from row ${String(template.firstRow)} of template ${key}`);
      ok = false;
    }
  }
  const mine = parseParams(shared.params);
  const first = parseParams(template.shared.params);
  if (JSON.stringify(sortKeys(mine)) !== JSON.stringify(sortKeys(first))) {
    at('params', `differs from row ${String(template.firstRow)} of template ${key}`);
    ok = false;
  }
  return ok;
}

/** Adds the row's channel × locale variant to its template, naming each cell that cannot be read. */
function addVariant(template: TemplateInSheet, number: number, cells: SheetRow['cells'], at: RowError): void {
  const get = (c: Column) => (cells[c] ?? '').trim();
  const key = template.key;
  const channel = get('channel');
  if (!Object.hasOwn(channelParts, channel)) {
    at('channel', channel === '' ? 'missing' : `must be one of ${Object.keys(channelParts).join(', ')}`);
    return;
  }
  const locale = get('locale');
  if (locale === '') {
    at('locale', 'missing');
    return;
  }
  const place = `${channel}/${locale}`;
  const earlier = template.rowOf.get(place);
  if (earlier !== undefined) {
    at('locale', `template ${key} already has a ${channel} row for ${locale} (row ${String(earlier)})`);
    return;
  }
  template.rowOf.set(place, number);
  if (!template.rowOf.has(channel)) template.rowOf.set(channel, number);
  const parts: readonly string[] = channelParts[channel as Channel];
  const variant: Partial<Record<Part, string>> = {};
  for (const part of allParts) {
    const text = cells[part] ?? '';
    if (text === '') continue;
    if (!parts.includes(part)) {
      at(part, `${channel} has no ${part} (it has ${parts.join(', ')}); leave the cell empty`);
      continue;
    }
    variant[part] = text;
  }
  const variants = template.definition.variants;
  variants[channel as Channel] = { ...variants[channel as Channel], [locale]: variant };
}

function sortKeys(value: Record<string, ParamType> | string): unknown {
  return typeof value === 'string'
    ? value
    : Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** `name:type, name:type` → params, or the reason it cannot be read. */
export function parseParams(text: string): Record<string, ParamType> | string {
  const params: Record<string, ParamType> = {};
  if (text.trim() === '') return params;
  for (const item of text.split(',')) {
    const [name, type, extra] = item.split(':').map((s) => s.trim());
    if (name === undefined || name === '' || type === undefined || extra !== undefined) {
      return `"${item.trim()}" is not name:type (e.g. "count:integer, name:string")`;
    }
    if (!(paramTypes as readonly string[]).includes(type)) {
      return `type of ${name} must be one of ${paramTypes.join(', ')}`;
    }
    if (Object.hasOwn(params, name)) return `${name} is declared twice`;
    params[name] = type as ParamType;
  }
  return params;
}

/** Where in the sheet a definition problem is: its row and column. */
export function sheetField(template: SheetTemplate, place: DefinitionPlace): string {
  if (place.field !== 'variants') return `row ${String(template.firstRow)} / column ${place.field}`;
  const row =
    (place.locale === undefined ? undefined : template.rowOf.get(`${place.channel}/${place.locale}`)) ??
    template.rowOf.get(place.channel) ??
    template.firstRow;
  const column = place.part ?? (place.locale === undefined ? 'locale' : 'channel');
  return `row ${String(row)} / column ${column}`;
}

export function sheetProblems(
  template: SheetTemplate,
  problems: readonly DefinitionProblem[],
): ProblemDetail[] {
  return problems.map((p) => ({ field: sheetField(template, p.place), message: p.message }));
}
