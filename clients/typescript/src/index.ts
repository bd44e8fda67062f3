import createClient, { type Client } from 'openapi-fetch';
import type { components, operations, paths } from './openapi.ts';

export type { components, operations, paths };
/** Every request and response type of the API, by schema name: `Schemas['Chat']`. */
export type Schemas = components['schemas'];
export type ChatLoggerClient = Client<paths>;

export interface ChatLoggerClientOptions {
  /** Where the server is, e.g. `https://chatlogger.example.com`. */
  baseUrl: string;
  /** An organization API key (`clk_...`), for the ingestion routes under `/api/v1/orgs/{slug}`. */
  apiKey?: string;
  /** A session token from `POST /auth/login` with `issueToken: true`, for the dashboard routes. */
  token?: string;
  /** Another fetch (a test server's, or one with retries or a proxy). */
  fetch?: (request: Request) => Promise<Response>;
  /** Sent with every request (e.g. `x-request-id`). */
  headers?: Record<string, string>;
}

/**
 * A client typed by the ChatLogger contract: paths, parameters, bodies and responses are checked
 * by the compiler. Calls resolve to `{ data, error, response }`; `error` is the problem+json body
 * of a 4xx or 5xx.
 */
export function createChatLoggerClient({ baseUrl, apiKey, token, fetch, headers = {} }: ChatLoggerClientOptions): ChatLoggerClient {
  const defaults: Record<string, string> = { ...headers };
  if (apiKey) defaults['x-organization-api-key'] = apiKey;
  if (token) defaults.authorization = `Bearer ${token}`;
  return createClient<paths>({ baseUrl: baseUrl.replace(/\/+$/, ''), headers: defaults, ...(fetch ? { fetch } : {}) });
}
