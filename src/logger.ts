import pino from 'pino';
import type { LogLevel } from './config.ts';

export type Logger = pino.Logger;

/**
 * JSON lines on stdout. Known secret-bearing fields are redacted wherever they appear, as a
 * second line of defence: request bodies and headers are never logged in the first place.
 */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['password', '*.password', 'key', '*.key', 'token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie'],
      censor: '[redacted]',
    },
  });
}
