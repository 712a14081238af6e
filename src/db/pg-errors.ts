// SQLSTATE codes Herald branches on (https://www.postgresql.org/docs/15/errcodes-appendix.html).

export const pgErrors = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  checkViolation: '23514',
  invalidTextRepresentation: '22P02',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  duplicateTable: '42P07',
  lockNotAvailable: '55P03',
} as const;

/** Errors that mean "the database is unreachable right now", not "your query is wrong". */
const connectionErrorCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);

export function sqlState(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

export function isConnectionError(error: unknown): boolean {
  const code = sqlState(error);
  if (code !== undefined) {
    if (connectionErrorCodes.has(code)) return true;
    // Class 08: connection exception; 57P0x: the server is shutting down or starting.
    if (
      code.startsWith('08') ||
      code === pgErrors.adminShutdown ||
      code === pgErrors.crashShutdown ||
      code === pgErrors.cannotConnectNow
    ) {
      return true;
    }
  }
  if (error instanceof Error) {
    // node-postgres reports a dropped socket without a code; these are its fixed texts.
    return /Connection terminated|connection timeout|Client has encountered a connection error/i.test(
      error.message,
    );
  }
  return false;
}
