import { Elysia } from 'elysia';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import specText from '../../openapi.yaml' with { type: 'text' };
import type { operations } from '../generated/openapi.ts';
import { nestedDeeperThan, PendingBody } from './body.ts';
import { isUuid } from './ids.ts';
import { validationFailed, type FieldError } from './problem.ts';
import { EVENT_TIME_RULE, isPlausibleEventTime, parseTimestamp } from './time.ts';

/**
 * openapi.yaml is the single source of request validation: each route names its operationId
 * and the request is checked against that operation's schemas, compiled once at boot.
 */
export const specYaml: string = specText;
export const spec = Bun.YAML.parse(specYaml) as OpenApiDocument;

export type OperationId = keyof operations;
type JsonBody<T> = T extends { content: { 'application/json': infer B } } ? B : never;
/** The request body type of an operation, as generated from the contract. */
export type RequestBody<Op extends OperationId> = JsonBody<NonNullable<operations[Op]['requestBody']>>;
type Query<Op extends OperationId> = NonNullable<operations[Op]['parameters']['query']>;
/**
 * An operation's query after validation. Defaults of the contract are applied, so a paged
 * list always has its `limit`.
 */
export type QueryOf<Op extends OperationId> = Query<Op> & ('limit' extends keyof Query<Op> ? { limit: number } : unknown);
/** The query of a route that declared `{ operation }`: validated, coerced and defaulted by then. */
export const queryOf = <Op extends OperationId>(_operationId: Op, query: unknown) => query as QueryOf<Op>;

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OperationObject | unknown>>;
  components: { schemas: Record<string, unknown>; parameters: Record<string, ParameterObject> };
}
interface ParameterObject {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Record<string, unknown>;
  $ref?: string;
}
interface OperationObject {
  operationId: string;
  parameters?: ParameterObject[];
  requestBody?: { required?: boolean; content: Record<string, { schema: unknown }> };
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** Every operation of the contract, with its path template and method. */
export function listOperations() {
  const result: { operationId: string; path: string; method: string; operation: OperationObject & Record<string, unknown> }[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = item[method] as (OperationObject & Record<string, unknown>) | undefined;
      if (operation) result.push({ operationId: operation.operationId, path, method, operation });
    }
  }
  return result;
}

/** The methods of each path template of the contract, as a pattern of its concrete paths. */
const pathMethods = (() => {
  const byPath = new Map<string, Set<string>>();
  for (const { path, method } of listOperations()) {
    let methods = byPath.get(path);
    if (!methods) byPath.set(path, (methods = new Set()));
    methods.add(method.toUpperCase());
  }
  return [...byPath].map(([path, methods]) => ({
    pattern: new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '{' || c === '}' ? c : `\\${c}`)).replace(/\{[^}]+\}/g, '[^/]+')}$`),
    methods,
  }));
})();

/**
 * The methods the contract defines for a concrete path (`/orgs/acme/chats`), empty when no path
 * template matches: a known path asked with another method is a 405 with `Allow`, not a 404.
 */
export function allowedMethods(path: string): string[] {
  const methods = new Set<string>();
  for (const { pattern, methods: own } of pathMethods) if (pattern.test(path)) for (const m of own) methods.add(m);
  return [...methods].sort();
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '');
}
function createAjv(forQuery: boolean) {
  // verbose: custom keywords' limits are read back from the schema for the error message.
  const ajv = new Ajv2020({ allErrors: true, verbose: true, coerceTypes: forQuery ? 'array' : false, useDefaults: forQuery, strictSchema: false });
  addFormats(ajv);
  // Stricter than ajv-formats: only what PostgreSQL's uuid and timestamptz accept unchanged.
  ajv.addFormat('uuid', isUuid);
  ajv.addFormat('date-time', (value: string) => parseTimestamp(value) !== null);
  // A client's time of an event: plausible now (see src/http/time.ts), or a 422.
  ajv.addKeyword({
    keyword: 'x-event-time',
    schemaType: 'boolean',
    errors: false,
    validate: (on: boolean, data: unknown) => !on || typeof data !== 'string' || parseTimestamp(data) === null || isPlausibleEventTime(data),
  });
  ajv.addKeyword({
    keyword: 'x-max-bytes',
    schemaType: 'number',
    errors: false,
    validate: (max: number, data: unknown) => data === undefined || jsonBytes(data) <= max,
  });
  ajv.addKeyword({
    keyword: 'x-max-depth',
    schemaType: 'number',
    errors: false,
    validate: (max: number, data: unknown) => !nestedDeeperThan(data, max),
  });
  // The whole document is registered once so `#/components/...` references resolve.
  ajv.addSchema({ $id: 'openapi', components: spec.components }, 'openapi');
  return ajv;
}
const bodyAjv = createAjv(false);
const queryAjv = createAjv(true);

const rewriteRefs = (schema: unknown): unknown =>
  JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', '"$ref":"openapi#/'));

const MAX_REPORTED_ERRORS = 50;

function describe(error: ErrorObject): FieldError {
  let pointer = error.instancePath;
  let message = error.message ?? 'is invalid';
  switch (error.keyword) {
    case 'required':
      pointer += `/${error.params.missingProperty}`;
      message = 'is required';
      break;
    case 'additionalProperties':
      pointer += `/${error.params.additionalProperty}`;
      message = 'is not a known field';
      break;
    case 'dependentRequired':
      pointer += `/${error.params.missingProperty}`;
      message = `is required with ${error.params.property}`;
      break;
    case 'enum':
      message = `must be one of: ${(error.params.allowedValues as unknown[]).join(', ')}`;
      break;
    case 'x-max-bytes':
      message = `is larger than ${error.schema} bytes of JSON`;
      break;
    case 'format':
      if (error.params.format === 'date-time') message = 'must be an RFC 3339 date-time in the years 0001 to 9999 in UTC';
      break;
    case 'x-event-time':
      message = EVENT_TIME_RULE;
      break;
    case 'x-max-depth':
      message = `is nested deeper than ${error.schema} levels`;
      break;
  }
  return { pointer, message };
}

function toFieldErrors(prefix: string, errors: ErrorObject[] | null | undefined): FieldError[] {
  const seen = new Set<string>();
  const result: FieldError[] = [];
  for (const error of errors ?? []) {
    // `type: [string, null]` failures repeat as anyOf/type noise; keep one line per field.
    if (error.keyword === 'anyOf' || error.keyword === 'oneOf' || error.keyword === 'if') continue;
    const field = describe(error);
    field.pointer = `/${prefix}${field.pointer}`;
    const key = `${field.pointer} ${field.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(field);
    if (result.length === MAX_REPORTED_ERRORS) break;
  }
  return result;
}

/**
 * Strings that PostgreSQL cannot store as they are (NUL characters) or that UTF-8 cannot encode
 * (lone surrogates) are rejected rather than silently altered.
 */
function unstorableString(value: unknown, pointer: string): FieldError | undefined {
  const path: string[] = [];
  const message = unstorable(value, path);
  if (!message) return undefined;
  return { pointer: pointer + path.map((key) => `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`).join(''), message };
}

/** Why the first unstorable string in `value` is refused; `path` is left holding the keys to it. */
function unstorable(value: unknown, path: string[]): string | undefined {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return 'must not contain NUL characters';
    if (!value.isWellFormed()) return 'must be well-formed Unicode';
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  for (const key of Object.keys(value)) {
    path.push(key);
    const message = unstorable(key, path) ?? unstorable((value as Record<string, unknown>)[key], path);
    if (message) return message;
    path.pop();
  }
  return undefined;
}

interface CompiledOperation {
  body?: ValidateFunction;
  bodyRequired: boolean;
  query?: ValidateFunction;
}

function resolveParameter(parameter: ParameterObject): ParameterObject {
  if (!parameter.$ref) return parameter;
  const name = parameter.$ref.split('/').pop()!;
  return spec.components.parameters[name]!;
}

function compile(): Map<string, CompiledOperation> {
  const compiled = new Map<string, CompiledOperation>();
  for (const { path, operationId, operation } of listOperations()) {
    const pathParameters = ((spec.paths[path] as { parameters?: ParameterObject[] }).parameters ?? []).map(resolveParameter);
    const parameters = [...pathParameters, ...(operation.parameters ?? []).map(resolveParameter)];
    const queryParameters = parameters.filter((p) => p.in === 'query');
    const jsonSchema = operation.requestBody?.content['application/json']?.schema;
    compiled.set(operationId, {
      body: jsonSchema ? bodyAjv.compile(rewriteRefs(jsonSchema) as object) : undefined,
      bodyRequired: operation.requestBody?.required ?? false,
      query: queryParameters.length
        ? queryAjv.compile(
            rewriteRefs({
              type: 'object',
              properties: Object.fromEntries(queryParameters.map((p) => [p.name, p.schema ?? {}])),
              required: queryParameters.filter((p) => p.required).map((p) => p.name),
              additionalProperties: false,
            }) as object,
          )
        : undefined,
    });
  }
  return compiled;
}
const operationsById = compile();

/** Validates a request against its operation; throws a 422 listing every failing field. */
export function validateRequest(operationId: OperationId, input: { body: unknown; query: Record<string, unknown> }) {
  const op = operationsById.get(operationId);
  if (!op) throw new Error(`Unknown operation ${operationId}`);
  if (op.query && !op.query(input.query)) throw validationFailed(toFieldErrors('query', op.query.errors));
  const queryProblem = unstorableString(input.query, '/query');
  if (queryProblem) throw validationFailed([queryProblem]);
  if (op.body) {
    if (input.body === undefined || input.body === null) {
      if (op.bodyRequired) throw validationFailed([{ pointer: '/body', message: 'is required' }]);
      return;
    }
    if (!op.body(input.body)) throw validationFailed(toFieldErrors('body', op.body.errors));
    const problem = unstorableString(input.body, '/body');
    if (problem) throw validationFailed([problem]);
  }
}

/**
 * `{ operation: 'createChat' }` on a route validates its body and query against the contract.
 * It runs after the route's authentication, so an anonymous caller learns nothing from 422s and
 * costs no body parsing.
 */
export const contract = new Elysia({ name: 'contract' }).macro({
  operation(operationId: OperationId) {
    if (!operationsById.has(operationId)) throw new Error(`Route names unknown operation ${operationId}`);
    return {
      async beforeHandle(context) {
        // The body is read here, after the route's authentication, never before (src/http/body.ts).
        if (context.body instanceof PendingBody) context.body = await context.body.read();
        validateRequest(operationId, { body: context.body, query: context.query as Record<string, unknown> });
      },
    };
  },
});
