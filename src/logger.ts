import pino from 'pino';
import type { LogLevel } from './config.ts';

export type Logger = pino.Logger;

/**
 * JSON lines on stdout (or `destination`, for tests). Known secret-bearing fields are redacted wherever they appear, as a
 * second line of defence: request bodies and headers are never logged in the first place.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['password', '*.password', 'key', '*.key', 'token', '*.token', 'authorization', '*.authorization', 'cookie', '*.cookie'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** The same output and level without redaction, for lines built only from fixed, non-secret fields. */
export function unredacted(log: Logger): Logger {
  const destination = (log as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym];
  return pino({ level: log.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
