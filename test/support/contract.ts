import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { listOperations, spec } from '../../src/http/contract.ts';

/**
 * Checks a response against openapi.yaml: its status must be documented for the operation, and
 * its body must have the documented media type and match the documented schema.
 */
const ajv = new Ajv2020({ allErrors: true, strictSchema: false });
addFormats(ajv);
ajv.addSchema({ $id: 'openapi', components: spec.components }, 'openapi');

type ResponseSpec = { content?: Record<string, { schema?: unknown }>; $ref?: string };
const validators = new Map<string, ValidateFunction>();

function responseSpec(ref: ResponseSpec): ResponseSpec {
  if (!ref.$ref) return ref;
  const name = ref.$ref.split('/').pop()!;
  return (spec.components as unknown as { responses: Record<string, ResponseSpec> }).responses[name]!;
}

export function operationFor(method: string, path: string) {
  return listOperations().find((op) => op.method === method.toLowerCase() && op.path === path);
}

export async function checkResponse(method: string, schemaPath: string, response: Response): Promise<void> {
  const op = operationFor(method, schemaPath);
  if (!op) throw new Error(`${method} ${schemaPath} is not in openapi.yaml`);
  const responses = op.operation.responses as Record<string, ResponseSpec>;
  const documented = responses[String(response.status)];
  if (!documented) {
    throw new Error(`${method} ${schemaPath} answered ${response.status}, which openapi.yaml does not document (body: ${await response.clone().text()})`);
  }
  const content = responseSpec(documented).content;
  if (!content) return;
  const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
  const entry = content[mediaType];
  if (!entry) throw new Error(`${method} ${schemaPath} ${response.status} has content-type "${mediaType}", expected one of ${Object.keys(content).join(', ')}`);
  // Only JSON bodies are checked against a schema (CSV and NDJSON downloads are text).
  if (!entry.schema || !/^application\/([\w.-]+\+)?json$/.test(mediaType)) return;
  const key = `${method} ${schemaPath} ${response.status} ${mediaType}`;
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile(JSON.parse(JSON.stringify(entry.schema).replaceAll('"$ref":"#/', '"$ref":"openapi#/')));
    validators.set(key, validate);
  }
  const body = await response.clone().json();
  if (!validate(body)) {
    throw new Error(`${key} does not match openapi.yaml: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
  }
}
