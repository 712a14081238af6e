// Template sheets built in a test with exceljs, as an operator's spreadsheet program would save
// them: a "templates" worksheet with the documented header row and one row per template ×
// channel × locale. Cells not given are empty.
import ExcelJS from 'exceljs';
import { sheetColumns } from '../../src/templates/template-sheet.js';

const columns = sheetColumns;
export type SheetRowCells = Partial<Record<(typeof columns)[number], string>>;

export async function templateWorkbook(rows: readonly SheetRowCells[]): Promise<Buffer> {
  const workbook = new ExcelJS.Workbook();
  const sheet = workbook.addWorksheet('templates');
  sheet.addRow([...columns]);
  for (const row of rows) sheet.addRow(columns.map((c) => row[c] ?? ''));
  return Buffer.from(await workbook.xlsx.writeBuffer());
}

export function templateCsv(rows: readonly SheetRowCells[]): Buffer {
  const quote = (text: string) => `"${text.replace(/"/g, '""')}"`;
  const lines = [columns.join(','), ...rows.map((row) => columns.map((c) => quote(row[c] ?? '')).join(','))];
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8');
}
