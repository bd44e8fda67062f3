import type { components } from '../../generated/openapi.ts';
import type { EXPORT_FORMATS } from './export.entity.ts';

type Chat = components['schemas']['Chat'];
type Message = components['schemas']['Message'];
export type Format = (typeof EXPORT_FORMATS)[number];

/*
 * The files an export produces, chunk by chunk from pages of rows: CSV (RFC 4180, guarded against
 * spreadsheet formulas), a JSON array, NDJSON, and the end user's document.
 */

interface Column<T> {
  name: string;
  value: (dto: T) => string | number | null;
  /** Free text a user or a client wrote: guarded against spreadsheet formulas. */
  freeText?: boolean;
}

const json = (value: unknown) => (value === null || value === undefined ? null : JSON.stringify(value));

export const CHAT_COLUMNS: Column<Chat>[] = [
  { name: 'chatId', value: (c) => c.id },
  { name: 'title', value: (c) => c.title, freeText: true },
  { name: 'tags', value: (c) => JSON.stringify(c.tags), freeText: true },
  { name: 'externalUserId', value: (c) => c.externalUserId, freeText: true },
  { name: 'source', value: (c) => c.source, freeText: true },
  { name: 'createdAt', value: (c) => c.createdAt },
  { name: 'updatedAt', value: (c) => c.updatedAt },
  { name: 'lastMessageAt', value: (c) => c.lastMessageAt },
  { name: 'messageCount', value: (c) => c.messageCount },
  { name: 'metadata', value: (c) => JSON.stringify(c.metadata), freeText: true },
];

export const MESSAGE_COLUMNS: Column<Message>[] = [
  { name: 'chatId', value: (m) => m.chatId },
  { name: 'messageId', value: (m) => m.id },
  { name: 'role', value: (m) => m.role },
  { name: 'content', value: (m) => m.content, freeText: true },
  { name: 'name', value: (m) => m.name, freeText: true },
  { name: 'model', value: (m) => m.model, freeText: true },
  { name: 'promptTokens', value: (m) => m.promptTokens },
  { name: 'completionTokens', value: (m) => m.completionTokens },
  { name: 'totalTokens', value: (m) => m.totalTokens },
  { name: 'latencyMs', value: (m) => m.latencyMs },
  { name: 'costUsd', value: (m) => m.costUsd },
  { name: 'toolCalls', value: (m) => json(m.toolCalls), freeText: true },
  { name: 'metadata', value: (m) => JSON.stringify(m.metadata), freeText: true },
  { name: 'createdAt', value: (m) => m.createdAt },
];

/** Cells that a spreadsheet would read as a formula (or that hide one after a TAB or CR). */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One RFC 4180 field. Free text starting with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`
 * so spreadsheets show it as text instead of running it (OWASP "CSV injection").
 */
export function csvField(value: string | number | null, freeText = false): string {
  if (value === null) return '';
  let text = String(value);
  if (freeText && FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

const CRLF = '\r\n';
/** Excel needs the byte order mark to read UTF-8; RFC 4180 parsers should skip it. */
export const UTF8_BOM = '\uFEFF';

function csvRow<T>(columns: Column<T>[], dto: T): string {
  return columns.map((column) => csvField(column.value(dto), column.freeText)).join(',') + CRLF;
}

export const CONTENT_TYPES: Record<Format, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

/** An export's file from its pages of chats or of messages. */
export async function* exportFile(format: Format, scope: 'chats' | 'messages', pages: AsyncGenerator<(Chat | Message)[]>): AsyncGenerator<string> {
  if (format === 'csv') {
    const columns = (scope === 'chats' ? CHAT_COLUMNS : MESSAGE_COLUMNS) as Column<Chat | Message>[];
    yield UTF8_BOM + columns.map((column) => csvField(column.name)).join(',') + CRLF;
    for await (const dtos of pages) yield dtos.map((dto) => csvRow(columns, dto)).join('');
  } else if (format === 'ndjson') {
    for await (const dtos of pages) yield dtos.map((dto) => JSON.stringify(dto) + '\n').join('');
  } else {
    let first = true;
    yield '[';
    for await (const dtos of pages) {
      yield (first ? '\n' : ',\n') + dtos.map((dto) => JSON.stringify(dto)).join(',\n');
      first = false;
    }
    yield first ? ']\n' : '\n]\n';
  }
}

/**
 * The end user's document: `{externalUserId, exportedAt, chats: [chat + its messages]}`, written
 * chat by chat as the pages come.
 */
export async function* endUserDocument(
  externalUserId: string,
  exportedAt: string,
  chats: AsyncGenerator<Chat[]>,
  messagesOf: (chatId: string) => AsyncGenerator<Message[]>,
): AsyncGenerator<string> {
  yield `{"externalUserId":${JSON.stringify(externalUserId)},"exportedAt":${JSON.stringify(exportedAt)},"chats":[`;
  let first = true;
  for await (const page of chats) {
    for (const chat of page) {
      const head = JSON.stringify(chat);
      let out = `${first ? '\n' : ',\n'}${head.slice(0, -1)},"messages":[`;
      first = false;
      let firstMessage = true;
      for await (const messages of messagesOf(chat.id)) {
        out += (firstMessage ? '' : ',') + messages.map((m) => JSON.stringify(m)).join(',');
        firstMessage = false;
        yield out;
        out = '';
      }
      yield `${out}]}`;
    }
  }
  yield first ? ']}\n' : '\n]}\n';
}
