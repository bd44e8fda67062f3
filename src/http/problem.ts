import { Elysia } from 'elysia';
import { ConnectionException, DriverException } from '@mikro-orm/core';
import type { Logger } from '../logger.ts';
import { DatabaseNotReady } from '../db/connect.ts';
import { requestIdOf } from './request-id.ts';

export interface FieldError {
  /** JSON pointer into the request: `/body/messages/3/role`, `/query/limit`. */
  pointer: string;
  message: string;
}

/** An error whose message is safe to show the client, rendered once as RFC 9457 problem+json. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly title: string,
    readonly detail?: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail ?? title);
  }
}

export const badRequest = (detail: string) => new HttpError(400, 'bad-request', 'Bad Request', detail);
export const unauthorized = (detail = 'Authentication is required.') =>
  new HttpError(401, 'unauthorized', 'Unauthorized', detail);
export const forbidden = (detail = 'Your role does not allow this.') =>
  new HttpError(403, 'forbidden', 'Forbidden', detail);
export const notFound = (what = 'resource') =>
  new HttpError(404, 'not-found', 'Not Found', `No such ${what}.`);
export const conflict = (detail: string) => new HttpError(409, 'conflict', 'Conflict', detail);
export const payloadTooLarge = (limit: number) =>
  new HttpError(413, 'payload-too-large', 'Payload Too Large', `The request body exceeds ${limit} bytes.`);
export const unsupportedMediaType = () =>
  new HttpError(415, 'unsupported-media-type', 'Unsupported Media Type', 'Send the body as application/json.');
export const validationFailed = (errors: FieldError[]) =>
  new HttpError(422, 'validation', 'Validation Failed', 'The request has invalid fields; see errors.', errors);
export const tooManyRequests = (detail: string, retryAfterSeconds: number, headers: Record<string, string> = {}) =>
  new HttpError(429, 'too-many-requests', 'Too Many Requests', detail, undefined, { ...headers, 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) });
export const headersTooLarge = (detail: string) => new HttpError(431, 'headers-too-large', 'Request Header Fields Too Large', detail);
export const unavailable = (detail = 'The database is unavailable; retry shortly.') =>
  new HttpError(503, 'unavailable', 'Service Unavailable', detail, undefined, { 'retry-after': '1' });

export function problemResponse(error: HttpError, instance?: string): Response {
  const body: Record<string, unknown> = {
    type: `/problems/${error.type}`,
    title: error.title,
    status: error.status,
  };
  if (error.detail) body.detail = error.detail;
  if (instance) body.instance = instance;
  if (error.errors) body.errors = error.errors;
  return new Response(JSON.stringify(body), {
    status: error.status,
    headers: { 'content-type': 'application/problem+json', ...error.headers },
  });
}

// SQLSTATE classes that mean "the database is not there right now", not "the request is wrong".
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[123])/;
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/** Maps any thrown value to a safe HttpError; unexpected ones become a bare 500. */
export function toHttpError(error: unknown, code?: string | number): HttpError {
  if (error instanceof HttpError) return error;
  // Elysia wraps whatever a parse hook throws; ours carry the precise reason.
  if (code === 'PARSE' && (error as Error).cause instanceof HttpError) return (error as Error).cause as HttpError;
  if (code === 'NOT_FOUND') return new HttpError(404, 'not-found', 'Not Found', 'No such route.');
  if (code === 'PARSE') return badRequest('The request body could not be parsed.');
  if (code === 'VALIDATION') return validationFailed([{ pointer: '', message: 'The request does not match the schema.' }]);
  if (code === 'INVALID_COOKIE_SIGNATURE') return unauthorized('The session cookie is invalid.');
  if (error instanceof DatabaseNotReady) return unavailable(error.message);
  if (error instanceof ConnectionException) return unavailable();
  const sqlState = sqlStateOf(error);
  if (sqlState && UNAVAILABLE_SQLSTATE.test(sqlState)) return unavailable();
  if (sqlState === '40001' || sqlState === '40P01') return unavailable('The write conflicted with another; retry it.');
  // DATABASE_STATEMENT_TIMEOUT_SECONDS: the server cancelled the statement, or the client stopped waiting.
  if (sqlState === '57014' || (error instanceof Error && error.message === 'Query read timeout')) {
    return unavailable('The database did not answer in time; retry shortly.');
  }
  // Services check uniqueness first; this is the loser of a race between two such checks.
  if (sqlState === '23505') return conflict('A resource with the same unique value exists already.');
  const errno = (error as { code?: unknown })?.code;
  if (typeof errno === 'string' && NETWORK_CODES.has(errno)) return unavailable();
  if (error instanceof Error && /connection terminated|timeout exceeded when trying to connect|Connection terminated|pool is (closed|destroyed)|Cannot use a pool after/i.test(error.message)) {
    return unavailable();
  }
  return new HttpError(500, 'internal', 'Internal Server Error', 'An unexpected error occurred; it has been logged.');
}

export function sqlStateOf(error: unknown): string | undefined {
  if (error instanceof DriverException) return error.sqlState ?? (error.code as string | undefined);
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Turns every error, ours, the framework's and the database's, into problem+json. */
export const problems = (log: Logger, allowedMethods: (path: string) => string[] = () => []) =>
  new Elysia({ name: 'problems' }).onError({ as: 'global' }, ({ error, code, request, set }) => {
    let problem = toHttpError(error, code);
    if (code === 'NOT_FOUND') {
      // A path the API has, asked with a method it does not take (RFC 9110: 405 with Allow).
      const allowed = allowedMethods(new URL(request.url).pathname);
      if (allowed.length && !allowed.includes(request.method)) {
        problem = new HttpError(405, 'method-not-allowed', 'Method Not Allowed', `${request.method} is not a method of this path.`, undefined, { allow: allowed.join(', ') });
      }
    }
    set.status = problem.status;
    if (problem.status === 503) {
      // Expected while the database is away, for every request: one short line each, no stack.
      const reason = error instanceof Error ? error.message : String(error);
      log.warn({ requestId: requestIdOf(request), method: request.method, path: new URL(request.url).pathname, reason }, 'request failed: unavailable');
    } else if (problem.status >= 500) {
      log.error({ err: error, requestId: requestIdOf(request), method: request.method, path: new URL(request.url).pathname }, 'request failed');
    }
    return problemResponse(problem);
  });
