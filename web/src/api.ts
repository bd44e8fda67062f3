import createClient from 'openapi-fetch';
import type { components, paths } from '../../src/generated/openapi.ts';

export type Schemas = components['schemas'];
export type User = Schemas['User'];
export type Role = Schemas['Role'];
export type Organization = Schemas['Organization'];
export type Chat = Schemas['Chat'];
export type Message = Schemas['Message'];
export type ApiKey = Schemas['ApiKey'];
export type ApiKeyCreate = Schemas['ApiKeyCreate'];
export type ApiKeyWithSecret = Schemas['ApiKeyWithSecret'];
export type Export = Schemas['Export'];
export type AuditEvent = Schemas['AuditEvent'];
export type AnalyticsSummary = Schemas['AnalyticsSummary'];
export type Page<T> = { items: T[]; nextCursor: string | null };

/** The same-origin API, typed by the contract; the session cookie goes along. */
export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });

export interface FieldError {
  pointer: string;
  message: string;
}

/** A failed call, with the problem's `detail` as its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fieldErrors: FieldError[] = [],
  ) {
    super(message);
  }
}

let onUnauthorized: () => void = () => {};
/** Called when a call answers 401: the session ended (logout elsewhere, expiry, deactivation). */
export function setUnauthorizedHandler(handler: () => void) {
  onUnauthorized = handler;
}

type Problem = Partial<Schemas['Problem']>;

function messageOf(status: number, problem: Problem | undefined): string {
  const detail = problem?.detail ?? problem?.title;
  if (detail) return detail;
  if (status >= 500) return 'The server had a problem; try again in a moment.';
  return `The request failed (HTTP ${status}).`;
}

/**
 * Awaits an openapi-fetch call and returns its data, or throws an ApiError carrying the
 * problem+json detail. A 401 also ends the dashboard session, unless `quiet401` (the login form).
 */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>, { quiet401 = false } = {}): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await call;
  } catch {
    throw new ApiError(0, 'The server could not be reached. Check the connection and try again.');
  }
  const { response } = result;
  if (response.ok) return result.data as T;
  const problem = typeof result.error === 'object' && result.error !== null ? (result.error as Problem) : undefined;
  if (response.status === 401 && !quiet401) onUnauthorized();
  throw new ApiError(response.status, messageOf(response.status, problem), problem?.errors ?? []);
}
