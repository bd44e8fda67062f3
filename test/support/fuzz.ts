/**
 * A contract-driven generator of hostile requests. Every operation of openapi.yaml, with its
 * path parameters, query parameters and request body schema, is the starting point of a valid
 * request, which is then broken in one or two ways: wrong types, missing and unknown fields,
 * strings and arrays above their limits, deep nesting, NUL characters, lone surrogates, invalid
 * UTF-8, out-of-range and non-UUID ids, injection strings, wrong content types, empty and
 * truncated bodies, duplicate headers, bad credentials, huge query strings.
 *
 * Deterministic: the same seed gives the same cases (ids and timestamps included).
 */
import { listOperations, spec } from '../../src/http/contract.ts';

type Schema = Record<string, unknown>;
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** mulberry32: small, fast and good enough to pick mutations. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
    chance: (p: number) => next() < p,
    uuid: () => {
      const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16)).join('');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    },
  };
}
export type Rng = ReturnType<typeof prng>;

// ---- the contract ----------------------------------------------------------------------------

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
}

export interface Target {
  operationId: string;
  method: string;
  /** Path template, `{name}` placeholders. */
  path: string;
  pathParams: Parameter[];
  queryParams: Parameter[];
  body?: Schema;
  security: 'apiKey' | 'session' | 'none';
}

function resolve(schema: unknown): Schema {
  let current = (schema ?? {}) as Schema;
  while (typeof current.$ref === 'string') {
    const name = current.$ref.split('/').pop()!;
    current = { ...(spec.components.schemas[name] as Schema), ...Object.fromEntries(Object.entries(current).filter(([k]) => k !== '$ref')) };
  }
  if (Array.isArray(current.allOf)) {
    const parts = current.allOf.map(resolve);
    return {
      ...current,
      type: 'object',
      properties: Object.assign({}, ...parts.map((p) => p.properties ?? {})),
      required: parts.flatMap((p) => (p.required as string[] | undefined) ?? []),
    };
  }
  return current;
}

function resolveParameter(parameter: unknown): Parameter {
  const p = parameter as Parameter & { $ref?: string };
  if (!p.$ref) return p;
  return spec.components.parameters[p.$ref.split('/').pop()!] as unknown as Parameter;
}

/** Every operation of the contract, as something to fuzz. */
export function fuzzTargets(): Target[] {
  return listOperations().map(({ operationId, path, method, operation }) => {
    const item = spec.paths[path] as { parameters?: unknown[] };
    const parameters = [...(item.parameters ?? []), ...((operation.parameters as unknown[] | undefined) ?? [])].map(resolveParameter);
    const security = (operation.security as Record<string, unknown>[] | undefined) ?? [];
    const schemes = security.flatMap((s) => Object.keys(s));
    const body = operation.requestBody?.content['application/json']?.schema;
    return {
      operationId,
      method: method.toUpperCase(),
      path,
      pathParams: parameters.filter((p) => p.in === 'path'),
      queryParams: parameters.filter((p) => p.in === 'query'),
      body: body ? resolve(body) : undefined,
      security: schemes.includes('apiKey') ? 'apiKey' : schemes.length ? 'session' : 'none',
    };
  });
}

// ---- valid values ------------------------------------------------------------------------------

const typeOf = (schema: Schema): string | undefined => {
  if (Array.isArray(schema.type)) return (schema.type as string[]).find((t) => t !== 'null');
  if (typeof schema.type === 'string') return schema.type;
  if (schema.properties) return 'object';
  return undefined;
};

/** A value the schema accepts (the base that mutations break). */
export function validValue(input: unknown, rng: Rng, name = ''): Json {
  const schema = resolve(input);
  if (Array.isArray(schema.enum)) return schema.enum[0] as Json;
  switch (typeOf(schema)) {
    case 'string': {
      if (schema.format === 'uuid') return rng.uuid();
      if (schema.format === 'date-time') return new Date(Date.UTC(2026, 0, 1 + rng.int(300))).toISOString();
      if (schema.format === 'date') return '2026-01-02';
      if (schema.format === 'email' || name === 'email') return `fuzz-${rng.uuid().slice(0, 8)}@example.test`;
      if (typeof schema.pattern === 'string' && schema.pattern.includes('a-z0-9')) return `fz-${rng.uuid().slice(0, 8)}`;
      const min = Number(schema.minLength ?? 1);
      const text = name.toLowerCase().includes('password') ? 'fuzz-password-1' : `fuzz ${name}`;
      return text.padEnd(min, 'x').slice(0, Number(schema.maxLength ?? 1e9));
    }
    case 'integer':
      return Math.min(Math.max(Number(schema.minimum ?? 1), 1), Number(schema.maximum ?? 1e9));
    case 'number':
      return Math.min(Math.max(Number(schema.minimum ?? 0.5), 0.5), Number(schema.maximum ?? 1e9));
    case 'boolean':
      return true;
    case 'array': {
      const count = Math.max(Number(schema.minItems ?? 0), 1);
      return Array.from({ length: count }, (_, i) => {
        const item = validValue(schema.items, rng, name);
        return typeof item === 'string' ? `${item}${i}`.slice(0, Number(resolve(schema.items).maxLength ?? 1e9)) : item;
      });
    }
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, unknown>;
      const result: Record<string, Json> = {};
      for (const [key, child] of Object.entries(properties)) result[key] = validValue(child, rng, key);
      return result;
    }
    default:
      // Free-form JSON (toolCalls): any value; objects are the common case.
      return { name: 'lookup', arguments: { q: 'x' } };
  }
}

// ---- hostile values ------------------------------------------------------------------------------

export const INJECTIONS = [
  "' OR '1'='1",
  "'; DROP TABLE messages; --",
  '" OR ""="',
  "1; select pg_sleep(10) --",
  "$$; select 1; $$",
  "\\'; --",
  '%s%s%s%n',
  '{{7*7}}${7*7}<%= 7*7 %>',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '\u202egnp.exe',
  '𝕏👍🏽\u0301',
  '","role":"superadmin","x":"',
  '\\u0000',
  '*',
  '%',
  '_',
  'NaN',
  'null',
  'undefined',
  '__proto__',
  'constructor',
];

/** Path parameter values that must never reach SQL as they are. */
export const BAD_IDS = [
  'abc',
  '1',
  '0',
  '-1',
  '1e30',
  '1000000000000000000000000000000',
  '-99999999999999999999',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '{a1b2c3d4-0000-4000-8000-000000000000}',
  'a1b2c3d4-0000-4000-8000-0000000000001',
  'a1b2c3d4000040008000000000000000',
  'A1B2C3D4-0000-4000-8000-00000000000G',
  '%00',
  '%ZZ',
  '%E0%A4%A',
  '%C0%AF',
  '%ED%A0%80',
  '%2F..%2F..',
  '%27%20OR%201%3D1--',
  '..',
  'me',
  'system',
  'null',
  '__proto__',
  'constructor',
  '%F0%9F%98%80',
  'ü',
  'x'.repeat(5000),
  '%20',
  '+',
];

/** Cursors as a client could forge them: base64url JSON of the wrong shape or with hostile parts. */
const FORGED_CURSORS = [
  ['x\u0000y'],
  ['\ud800'],
  ['2026-01-01 00:00:00+00', 'x\u0000'],
  ['2026-01-01 00:00:00+00', '\udfff'],
  ['9999-12-31 23:59:59.999999-15', 'ffffffff-ffff-ffff-ffff-ffffffffffff'],
  ['0001-01-01 00:00:00+15', '00000000-0000-0000-0000-000000000000'],
  ["' OR 1=1 --"],
  ['x'.repeat(100)],
  [1, 2],
  [null],
  { a: 1 },
  [],
].map((key) => Buffer.from(JSON.stringify(key)).toString('base64url'));

const WRONG_TYPES: Json[] = [null, true, false, 0, -1, 1.5, 1e30, '', 'x', [], [1, 'a'], {}, { $gt: '' }, JSON.parse('{"__proto__":{"admin":true}}') as Json];

function deepJsonText(depth: number, rng: Rng): string {
  const open = rng.chance(0.5) ? '[' : '{"a":';
  const close = open === '[' ? ']' : '}';
  return open.repeat(depth) + '1' + close.repeat(depth);
}

// ---- cases ---------------------------------------------------------------------------------------

export interface FuzzCase {
  n: number;
  operationId: string;
  /** With the real credential of the operation (API key or superadmin session), or without. */
  authenticated: boolean;
  mutations: string[];
  method: string;
  /** Path and query, already encoded as they are to be sent. */
  url: string;
  headers: [string, string][];
  body?: string | Uint8Array;
  /** The body is certainly invalid for the operation's schema: a 2xx would be a bug. */
  mustReject: boolean;
}

export interface FuzzContext {
  /** A valid value for a path parameter (a real slug, chat, user...). */
  pathValue(target: Target, name: string): string;
  /** Headers of the real credential of the operation. */
  credentials(target: Target): [string, string][];
  /** Broken credentials of every kind: forged, expired, other secret, malformed. */
  badCredentials: [string, string][][];
  maxBodyBytes: number;
  /** Adjusts an operation's valid base body (to keep a fixture usable, say). */
  baseBody?(target: Target, body: Json): Json;
}

const encoder = new TextEncoder();

type BodyMutation = (body: Json, schema: Schema, rng: Rng) => { text?: string; bytes?: Uint8Array; value?: Json; invalid: boolean; name: string };

/** Paths to every value inside a JSON value, with the schema that governs it. */
function slots(value: Json, schema: Schema, prefix: (string | number)[] = []): { path: (string | number)[]; schema: Schema }[] {
  const result = [{ path: prefix, schema }];
  if (value === null || typeof value !== 'object') return result;
  if (Array.isArray(value)) {
    value.forEach((item, i) => result.push(...slots(item, resolve(schema.items), [...prefix, i])));
  } else {
    const properties = (schema.properties ?? {}) as Record<string, unknown>;
    for (const [key, child] of Object.entries(value)) result.push(...slots(child, resolve(properties[key]), [...prefix, key]));
  }
  return result;
}

function setAt(root: Json, path: (string | number)[], value: Json | undefined): Json {
  if (path.length === 0) return value ?? null;
  const copy = structuredClone(root) as Record<string | number, Json>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  if (value === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = value;
  return copy;
}

const strict = (schema: Schema) => schema.additionalProperties === false;

const bodyMutations: Record<string, BodyMutation> = {
  wrongType(body, schema, rng) {
    const slot = rng.pick(slots(body, schema).filter((s) => s.path.length > 0));
    if (!slot) return { value: rng.pick(WRONG_TYPES), invalid: strict(schema), name: 'wrongType(/)' };
    return { value: setAt(body, slot.path, rng.pick(WRONG_TYPES)), invalid: false, name: `wrongType(/${slot.path.join('/')})` };
  },
  missingField(body, schema, rng) {
    const required = (schema.required as string[] | undefined) ?? [];
    const keys = body && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body) : [];
    const key = required.length && rng.chance(0.7) ? rng.pick(required) : rng.pick(keys);
    if (key === undefined) return { value: {}, invalid: false, name: 'missingField(none)' };
    return { value: setAt(body, [key], undefined), invalid: required.includes(key), name: `missingField(${key})` };
  },
  unknownField(body, schema, rng) {
    const key = rng.pick(['organizationId', 'isAdmin', '__proto__', 'constructor', 'prototype', '$where', 'role ', '', 'id\u0000', 'ＩＤ']);
    const objects = slots(body, schema).filter((s) => s.schema.additionalProperties === false && typeof body === 'object');
    const slot = rng.pick(objects.length ? objects : [{ path: [], schema }]);
    const text = JSON.stringify(body);
    // "__proto__" must be a real own key of the JSON text, not a prototype assignment.
    const target = slot.path.reduce<Json>((node, k) => (node as Record<string | number, Json>)[k]!, body);
    if (target === null || typeof target !== 'object' || Array.isArray(target)) return { text, invalid: false, name: 'unknownField(none)' };
    const inner = JSON.stringify(target);
    const injected = inner.length > 2 ? `{${JSON.stringify(key)}:${JSON.stringify(rng.pick(WRONG_TYPES))},${inner.slice(1)}` : `{${JSON.stringify(key)}:1}`;
    return { text: text.replace(inner, injected), invalid: strict(slot.schema), name: `unknownField(${JSON.stringify(key)})` };
  },
  hugeString(body, schema, rng) {
    const strings = slots(body, schema).filter((s) => s.path.length > 0 && (typeof s.schema.maxLength === 'number' || typeOf(s.schema) === 'string'));
    const slot = rng.pick(strings);
    if (!slot) return { value: 'x'.repeat(300_000), invalid: true, name: 'hugeString(/)' };
    const max = typeof slot.schema.maxLength === 'number' ? slot.schema.maxLength : 100_000;
    const length = rng.pick([max + 1, max * 2 + 7, 1_100_000]);
    const char = rng.pick(['x', 'é', '😀', ' ']);
    return {
      value: setAt(body, slot.path, char.repeat(length)),
      invalid: typeof slot.schema.maxLength === 'number',
      name: `hugeString(/${slot.path.join('/')}, ${length})`,
    };
  },
  hugeArray(body, schema, rng) {
    const arrays = slots(body, schema).filter((s) => s.path.length > 0 && typeOf(s.schema) === 'array');
    const slot = rng.pick(arrays);
    const count = slot && typeof slot.schema.maxItems === 'number' ? rng.pick([slot.schema.maxItems + 1, 50_000]) : 50_000;
    const item = slot ? ((body as Record<string, Json[]>)[slot.path[0]!]?.[0] ?? 'x') : 1;
    const huge = Array.from({ length: count }, (_, i) => (typeof item === 'string' ? `${item}${i}`.slice(0, 60) : item));
    if (!slot) return { value: huge, invalid: true, name: `hugeArray(/, ${count})` };
    return { value: setAt(body, slot.path, huge), invalid: typeof slot.schema.maxItems === 'number', name: `hugeArray(/${slot.path.join('/')}, ${count})` };
  },
  deepNesting(body, schema, rng) {
    const depth = rng.pick([9, 17, 65, 200, 5000, 100_000]);
    const keys = body && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body) : [];
    const key = rng.pick([...keys, 'metadata']);
    // Without the key's valid value: JSON's last duplicate key would win.
    const text = JSON.stringify(keys.includes(key) ? setAt(body, [key], undefined) : body);
    const inner = `{${JSON.stringify(key)}:${deepJsonText(depth, rng)}`;
    return { text: text.length > 2 ? `${inner},${text.slice(1)}` : `${inner}}`, invalid: depth >= 65, name: `deepNesting(${key}, ${depth})` };
  },
  nul(body, schema, rng) {
    const strings = slots(body, schema).filter((s) => s.path.length > 0 && typeOf(s.schema) === 'string');
    const slot = rng.pick(strings);
    if (!slot) return { text: '{"a\\u0000":"\\u0000"}', invalid: true, name: 'nul(/)' };
    // Every string of a body is checked: NUL anywhere is refused.
    return { value: setAt(body, slot.path, `a\u0000b`), invalid: true, name: `nul(/${slot.path.join('/')})` };
  },
  loneSurrogate(body, schema, rng) {
    const text = JSON.stringify(body);
    const escape = rng.pick(['\\ud800', '\\udfff', '\\ud83d', '\\udc00\\ud800']);
    const place = rng.chance(0.5) ? /"([^"\\]*)"(?=[,}\]])/ : /"([^"\\]*)"(?=:)/;
    const replaced = text.replace(place, `"$1${escape}"`);
    return { text: replaced === text ? `{"x${escape}":1}` : replaced, invalid: true, name: `loneSurrogate(${escape})` };
  },
  invalidUtf8(body, _schema, rng) {
    const text = JSON.stringify(body);
    const bad = rng.pick([[0xff], [0xfe, 0xff], [0xc0, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80]]);
    const at = Math.max(text.indexOf('"') + 1, 0);
    const bytes = new Uint8Array([...encoder.encode(text.slice(0, at)), ...bad, ...encoder.encode(text.slice(at))]);
    return { bytes, invalid: true, name: `invalidUtf8(${bad.map((b) => b.toString(16)).join(' ')})` };
  },
  numbers(body, schema, rng) {
    const numeric = slots(body, schema).filter((s) => s.path.length > 0 && ['integer', 'number'].includes(typeOf(s.schema) ?? ''));
    const slot = rng.pick(numeric.length ? numeric : slots(body, schema).filter((s) => s.path.length > 0));
    const literal = rng.pick(['1e30', '-1', '2147483648', '9007199254740993', '1.5', '-0', '1e308', '1e999', '-1e999', '1e-320', '0.1e1', '123456789012345678901234567890']);
    if (!slot) return { text: literal, invalid: true, name: `numbers(/, ${literal})` };
    const marker = '"__fuzz_number__"';
    const text = JSON.stringify(setAt(body, slot.path, '__fuzz_number__')).replace(marker, literal);
    return { text, invalid: false, name: `numbers(/${slot.path.join('/')}, ${literal})` };
  },
  injection(body, schema, rng) {
    const strings = slots(body, schema).filter((s) => s.path.length > 0 && typeOf(s.schema) === 'string');
    const slot = rng.pick(strings);
    const value = rng.pick(INJECTIONS);
    if (!slot) return { value: { [value]: value }, invalid: strict(schema), name: 'injection(/)' };
    return { value: setAt(body, slot.path, value), invalid: false, name: `injection(/${slot.path.join('/')})` };
  },
  notJson(body, _schema, rng) {
    const text = JSON.stringify(body);
    const variants = [
      '',
      ' ',
      'null',
      '[]',
      '0',
      '"x"',
      'true',
      '{',
      '}',
      "{'a':1}",
      '{"a":1,}',
      '{"a":NaN}',
      '{"a":undefined}',
      '/* c */{}',
      `${text}${text}`,
      `${text},`,
      text.slice(0, Math.max(1, Math.floor(text.length * rng.next()))),
      '\ufeff' + text,
      '\u0000',
      'a=1&b=2',
      '<?xml version="1.0"?><a/>',
    ];
    const choice = rng.pick(variants);
    // Empty means "no body": valid for operations whose body is optional.
    return { text: choice, invalid: choice.trim() !== '' && choice !== '\ufeff' + text, name: `notJson(${JSON.stringify(choice.slice(0, 20))})` };
  },
};

type RequestMutation = (req: Draft, target: Target, rng: Rng, ctx: FuzzContext) => string;

interface Draft {
  pathValues: Record<string, string>;
  query: [string, string][];
  headers: [string, string][];
  bodyText?: string;
  bodyBytes?: Uint8Array;
  invalidBody: boolean;
  /** The content type as last set is not JSON (a later mutation may set it again). */
  badContentType?: boolean;
  /** A raw query string replacing the generated one. */
  rawQuery?: string;
}

function setHeader(draft: Draft, name: string, value: string | undefined) {
  draft.headers = draft.headers.filter(([n]) => n.toLowerCase() !== name.toLowerCase());
  if (value !== undefined) draft.headers.push([name, value]);
}

const requestMutations: Record<string, RequestMutation> = {
  badPathId(draft, target, rng) {
    const param = rng.pick(target.pathParams);
    if (!param) return 'badPathId(none)';
    const value = rng.pick([...BAD_IDS, ...INJECTIONS.map(encodeURIComponent)]);
    draft.pathValues[param.name] = value;
    return `badPathId(${param.name}=${value.slice(0, 24)})`;
  },
  badQuery(draft, target, rng) {
    const param = rng.pick(target.queryParams);
    const name = param?.name ?? rng.pick(['limit', 'cursor', 'q']);
    const value = rng.pick([
      'abc', '-1', '0', '1e30', '99999999999999999999', '1.5', '', ' 1', '0x10', 'true', 'null', '[]',
      '2024-13-45T99:99:99Z', '9999-12-31T23:59:59Z', '0000-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '2026-02-30',
      'Mars/Phobos', 'Etc/GMT+14', '../../../etc/passwd', 'UTC\u0000', 'x'.repeat(600), '\u{1F600}', '%', 'eyJ4IjoxfQ', 'AAAA', '!!!',
      ...INJECTIONS,
      ...(name === 'cursor' ? FORGED_CURSORS : []),
    ]);
    draft.query = draft.query.filter(([n]) => n !== name);
    draft.query.push([name, value]);
    return `badQuery(${name}=${value.slice(0, 24)})`;
  },
  forgedCursor(draft, _target, rng) {
    const cursor = rng.pick(FORGED_CURSORS);
    draft.query = draft.query.filter(([n]) => n !== 'cursor');
    draft.query.push(['cursor', cursor]);
    return `forgedCursor(${Buffer.from(cursor, 'base64url').toString('utf8').slice(0, 40)})`;
  },
  repeatedQuery(draft, target, rng) {
    const name = rng.pick(target.queryParams)?.name ?? 'limit';
    draft.query.push([name, '1'], [name, '2'], [`${name}[]`, 'x']);
    return `repeatedQuery(${name})`;
  },
  unknownQuery(draft, _target, rng) {
    const name = rng.pick(['__proto__', 'constructor', 'organizationId', 'limit[$gt]', 'a'.repeat(300), 'x']);
    draft.query.push([name, '1']);
    return `unknownQuery(${name.slice(0, 24)})`;
  },
  hugeQuery(draft, target, rng) {
    const name = rng.pick(target.queryParams)?.name ?? 'q';
    const size = rng.pick([2_100, 9_000, 100_000]);
    draft.query.push([name, 'q'.repeat(size)]);
    return `hugeQuery(${name}, ${size})`;
  },
  malformedQuery(draft, _target, rng) {
    draft.rawQuery = rng.pick(['%', '%ZZ=1', 'limit=%E0%A4%A', '&&&=&=', '=1', 'limit=1%00', 'a=%F0%9F', '?&?', 'tags=%2C%2C%2C', `q=${'%25'.repeat(3000)}`]);
    return `malformedQuery(${draft.rawQuery.slice(0, 24)})`;
  },
  contentType(draft, _target, rng) {
    const value = rng.pick([
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'application/vnd.api+json',
      'application/jsonx',
      'APPLICATION/JSON',
      'application/json, text/plain',
      '',
      ';;;',
      'application/json; boundary="',
    ]);
    setHeader(draft, 'content-type', value);
    if (draft.bodyText === undefined && draft.bodyBytes === undefined) draft.bodyText = '{}';
    const json = value !== undefined && /^application\/([\w.+-]+\+)?json\s*(;|$)/i.test(value.trim());
    draft.badContentType = !json && (draft.bodyText ?? 'x') !== '';
    return `contentType(${value})`;
  },
  bodyOnBodyless(draft, _target, rng) {
    draft.bodyText = rng.pick(['{"a":1}', 'garbage', '\u0000', 'x'.repeat(70_000)]);
    setHeader(draft, 'content-type', rng.pick(['application/json', 'text/plain']));
    return 'bodyOnBodyless';
  },
  oversizeBody(draft, _target, rng, ctx) {
    draft.bodyText = `{"content":"${'x'.repeat(ctx.maxBodyBytes + 1 + rng.int(100))}"}`;
    draft.invalidBody = true;
    return 'oversizeBody';
  },
  duplicateHeaders(draft, _target, rng) {
    const name = rng.pick(['x-organization-api-key', 'authorization', 'content-type', 'cookie']);
    const existing = draft.headers.find(([n]) => n === name)?.[1];
    const extra = rng.pick([existing ?? 'x', 'x', 'application/json', 'Bearer x', 'chatlogger_session=x']);
    draft.headers.push([name, extra]);
    if (name === 'content-type') draft.badContentType = true;
    return `duplicateHeaders(${name})`;
  },
  badCredentials(draft, target, rng, ctx) {
    for (const name of ['authorization', 'cookie', 'x-organization-api-key']) setHeader(draft, name, undefined);
    const credential = rng.pick(ctx.badCredentials);
    draft.headers.push(...credential);
    return `badCredentials(${credential.map(([n, v]) => `${n}: ${v.slice(0, 16)}`).join('; ')})`;
  },
};

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/**
 * Bodies of another protocol, whose rules decide: an OTLP/JSON receiver must ignore unknown
 * fields, and text it cannot store is made storable rather than refused (a 2xx is not a bug).
 */
const PROTOCOL_BODIES = new Set(['exportOtlpTraces']);

function encodePath(target: Target, values: Record<string, string>): string {
  return target.path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? 'x');
}

/**
 * `count` cases over every operation, half of them with the operation's real credentials
 * (those an anonymous caller would be refused before anything else is looked at).
 */
export function* generateCases(seed: number, count: number, ctx: FuzzContext): Generator<FuzzCase> {
  const rng = prng(seed);
  const targets = fuzzTargets();
  for (let n = 0; n < count; n++) {
    const target = targets[n % targets.length]!;
    const authenticated = target.security !== 'none' && rng.chance(0.6);
    const draft: Draft = {
      pathValues: Object.fromEntries(target.pathParams.map((p) => [p.name, ctx.pathValue(target, p.name)])),
      query: target.queryParams.filter(() => rng.chance(0.3)).map((p) => [p.name, String(validValue(p.schema, rng, p.name))]),
      headers: authenticated ? [...ctx.credentials(target)] : [],
      invalidBody: false,
    };
    const mutations: string[] = [];
    let base: Json | undefined;
    if (target.body) {
      base = validValue(target.body, rng);
      if (ctx.baseBody) base = ctx.baseBody(target, base);
      draft.bodyText = JSON.stringify(base);
      draft.headers.push(['content-type', 'application/json']);
    }
    const rounds = rng.chance(0.25) ? 2 : 1;
    // Once the body is text or bytes (not a value any more), later rounds leave it alone.
    let bodyIsText = false;
    for (let round = 0; round < rounds; round++) {
      const useBody = target.body !== undefined && base !== undefined && !bodyIsText && rng.chance(0.6);
      if (useBody) {
        const name = rng.pick(Object.keys(bodyMutations));
        const result = bodyMutations[name]!(base!, target.body!, rng);
        mutations.push(result.name);
        draft.invalidBody ||= result.invalid;
        // A later value mutation could repair an invalid body: it is left as it is.
        bodyIsText = result.value === undefined || result.invalid;
        if (result.bytes) {
          draft.bodyBytes = result.bytes;
          draft.bodyText = undefined;
        } else {
          draft.bodyText = result.text ?? JSON.stringify(result.value);
          draft.bodyBytes = undefined;
          if (result.value !== undefined) base = result.value;
        }
      } else {
        const choices = Object.keys(requestMutations).filter((m) => {
          if (m === 'bodyOnBodyless') return !target.body && BODY_METHODS.has(target.method);
          if (m === 'contentType') return BODY_METHODS.has(target.method);
          // Rare: each of them builds a string larger than MAX_BODY_BYTES.
          if (m === 'oversizeBody') return BODY_METHODS.has(target.method) && rng.chance(0.1);
          if (m === 'badPathId') return target.pathParams.length > 0;
          if (m === 'forgedCursor') return target.queryParams.some((p) => p.name === 'cursor');
          return true;
        });
        mutations.push(requestMutations[rng.pick(choices)]!(draft, target, rng, ctx));
      }
    }
    const query = draft.rawQuery ?? new URLSearchParams(draft.query).toString();
    const url = encodePath(target, draft.pathValues) + (query ? `?${query}` : '');
    const body = BODY_METHODS.has(target.method) ? (draft.bodyBytes ?? draft.bodyText) : undefined;
    yield {
      n,
      operationId: target.operationId,
      authenticated,
      mutations,
      method: target.method,
      url,
      headers: draft.headers,
      body,
      mustReject: ((draft.invalidBody && !PROTOCOL_BODIES.has(target.operationId)) || draft.badContentType === true) && target.body !== undefined,
    };
  }
}

/** One line that says what a case was, for failure messages. */
export function describeCase(c: FuzzCase): string {
  const body = c.body === undefined ? '' : typeof c.body === 'string' ? ` body=${JSON.stringify(c.body.slice(0, 120))}` : ` body=<${c.body.byteLength} bytes>`;
  return `#${c.n} ${c.operationId} ${c.authenticated ? 'auth' : 'anon'} [${c.mutations.join(', ')}] ${c.method} ${c.url.slice(0, 160)}${body}`;
}
