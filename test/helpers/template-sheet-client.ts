// Template sheets through the api role: download an export, edit its cells, upload an import.
import assert from 'node:assert/strict';
import ExcelJS from 'exceljs';
import type { TestHerald } from './test-herald.js';

export const xlsxType = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** POSTs a file with the test key (or `key`); the answer's status and parsed JSON body. */
export async function upload(
  h: TestHerald,
  path: string,
  body: Buffer,
  contentType: string,
  key = h.apiKey,
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${h.herald.apiUrl ?? ''}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': contentType },
    body,
  });
  const parsed: any = JSON.parse(await response.text());
  return { status: response.status, body: parsed };
}

export async function download(h: TestHerald, format: 'xlsx' | 'csv'): Promise<Buffer> {
  const response = await fetch(`${h.herald.apiUrl ?? ''}/v1/templates/export?format=${format}`, {
    headers: { authorization: `Bearer ${h.apiKey}` },
  });
  assert.equal(response.status, 200);
  return Buffer.from(await response.arrayBuffer());
}

/** A cell of an exported sheet: its row, its column's name, the row's key/channel/locale, its text. */
export interface SheetCell {
  row: number;
  column: string;
  place: string;
  text: string;
}

/**
 * Rewrites cells of an exported workbook: `edit` sees every cell and returns its new text, or
 * undefined to leave it. Returns the file and the cells changed, in sheet order.
 */
export async function rewriteXlsx(
  file: Buffer,
  edit: (cell: SheetCell) => string | undefined,
): Promise<{ file: Buffer; changed: SheetCell[] }> {
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.load(file as unknown as ArrayBuffer);
  const sheet = workbook.worksheets[0];
  assert.ok(sheet);
  const header = (sheet.getRow(1).values as unknown[]).map((v) => String(v));
  const changed: SheetCell[] = [];
  sheet.eachRow((row, n) => {
    if (n === 1) return;
    const v = row.values as unknown[];
    const place = `${String(v[1])}/${String(v[7])}/${String(v[8])}`;
    header.forEach((column, c) => {
      if (c === 0) return;
      const text = typeof v[c] === 'string' ? v[c] : '';
      const next = edit({ row: n, column, place, text });
      if (next === undefined) return;
      row.getCell(c).value = next;
      changed.push({ row: n, column, place, text });
    });
  });
  return { file: Buffer.from(await workbook.xlsx.writeBuffer()), changed };
}

/**
 * Edits cells of an exported workbook: the row of `key/channel/locale`, a column name, new
 * text. Returns the file and the row numbers edited, in order.
 */
export async function editXlsx(
  file: Buffer,
  edits: [string, string, string][],
): Promise<{ file: Buffer; rows: number[] }> {
  const rowOf = new Map<string, number>();
  const { file: edited } = await rewriteXlsx(file, (cell) => {
    const edit = edits.find(([place, column]) => place === cell.place && column === cell.column);
    if (edit !== undefined) rowOf.set(`${edit[0]}|${edit[1]}`, cell.row);
    return edit?.[2];
  });
  const rows = edits.map(([place, column]) => {
    const row = rowOf.get(`${place}|${column}`);
    assert.ok(row !== undefined, `no ${place} / ${column}`);
    return row;
  });
  return { file: edited, rows };
}
