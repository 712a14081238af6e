// pino with redaction: credentials, API keys and signing secrets never reach the log.
import pino, { type Logger } from 'pino';

export const redactedPaths = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'headers.authorization',
  '*.password',
  '*.secret',
  '*.webhookSecret',
  '*.webhook_secret',
  '*.apiKey',
  '*.token',
  'config.DATABASE_URL',
  'config.DATABASE_READ_URL',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: redactedPaths, censor: '[redacted]' },
      base: { pid: process.pid },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

export type { Logger };
