import protobuf from 'protobufjs';
import commonProto from './proto/opentelemetry/proto/common/v1/common.proto' with { type: 'text' };
import resourceProto from './proto/opentelemetry/proto/resource/v1/resource.proto' with { type: 'text' };
import traceProto from './proto/opentelemetry/proto/trace/v1/trace.proto' with { type: 'text' };
import traceServiceProto from './proto/opentelemetry/proto/collector/trace/v1/trace_service.proto' with { type: 'text' };

/*
 * OTLP/HTTP trace export bodies, decoded with protobufjs from the official opentelemetry-proto
 * definitions (v1.11.0, vendored in ./proto and imported as text so a compiled binary embeds
 * them). OTLP/JSON is the protobuf JSON mapping except that trace and span ids are hex: they are
 * turned into the base64 that the mapping expects, and the same protobufjs type reads the rest.
 */

const root = new protobuf.Root();
for (const source of [commonProto, resourceProto, traceProto, traceServiceProto]) protobuf.parse(source, root);
root.resolveAll();
const ExportTraceServiceRequest = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const ExportTraceServiceResponse = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');

/** An attribute value as JavaScript: int64 becomes a number when exact, else its decimal text. */
export type AttributeValue = string | number | boolean | null | AttributeValue[] | { [key: string]: AttributeValue };
export type Attributes = Record<string, AttributeValue>;

export interface SpanEvent {
  name: string;
  timeUnixNano: bigint;
  attributes: Attributes;
}

/** One span with its resource's attributes: everything the conversation mapping reads. */
export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  startUnixNano: bigint;
  endUnixNano: bigint;
  attributes: Attributes;
  events: SpanEvent[];
  resource: Attributes;
}

export type OtlpEncoding = 'protobuf' | 'json';

/** A body that is not an OTLP trace export (the route answers 400). */
export class NotOtlpError extends Error {}

// Attribute values nest (arrays and key-value lists); deeper values than this are dropped, so a
// hostile body cannot make the conversion recurse without bound.
const MAX_VALUE_DEPTH = 16;

interface LongLike {
  toString(): string;
}
interface AnyValueMessage {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | LongLike;
  doubleValue?: number;
  arrayValue?: { values?: AnyValueMessage[] };
  kvlistValue?: { values?: KeyValueMessage[] };
  bytesValue?: Uint8Array;
  value?: string;
}
interface KeyValueMessage {
  key?: string;
  value?: AnyValueMessage | null;
}
interface SpanMessage {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  name?: string;
  startTimeUnixNano?: number | LongLike;
  endTimeUnixNano?: number | LongLike;
  attributes?: KeyValueMessage[];
  events?: { name?: string; timeUnixNano?: number | LongLike; attributes?: KeyValueMessage[] }[];
}
interface RequestMessage {
  resourceSpans?: {
    resource?: { attributes?: KeyValueMessage[] } | null;
    scopeSpans?: { spans?: SpanMessage[] }[];
  }[];
}

function anyValue(value: AnyValueMessage | null | undefined, depth: number): AttributeValue | undefined {
  if (!value || depth > MAX_VALUE_DEPTH) return undefined;
  switch (value.value) {
    case 'stringValue':
      return value.stringValue ?? '';
    case 'boolValue':
      return value.boolValue ?? false;
    case 'intValue': {
      const int = value.intValue ?? 0;
      if (typeof int === 'number') return int;
      const text = int.toString();
      const number = Number(text);
      return Number.isSafeInteger(number) ? number : text;
    }
    case 'doubleValue':
      return value.doubleValue ?? 0;
    case 'arrayValue':
      return (value.arrayValue?.values ?? []).map((item) => anyValue(item, depth + 1) ?? null);
    case 'kvlistValue':
      return keyValues(value.kvlistValue?.values, depth + 1);
    case 'bytesValue':
      return Buffer.from(value.bytesValue ?? new Uint8Array()).toString('base64');
    default:
      return undefined;
  }
}

function keyValues(list: KeyValueMessage[] | undefined, depth = 0): Attributes {
  const attributes: Attributes = {};
  for (const kv of list ?? []) {
    if (!kv.key) continue;
    const value = anyValue(kv.value, depth);
    if (value !== undefined) attributes[kv.key] = value;
  }
  return attributes;
}

const nanos = (value: number | LongLike | undefined): bigint => (value === undefined ? 0n : BigInt(typeof value === 'number' ? Math.trunc(value) : value.toString()));
// An unset bytes field reads as protobufjs's shared empty array, not as a Uint8Array.
const hex = (bytes: Uint8Array | undefined): string =>
  bytes instanceof Uint8Array && bytes.byteLength ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex') : '';

function spansOf(message: RequestMessage): Span[] {
  const spans: Span[] = [];
  for (const resourceSpans of message.resourceSpans ?? []) {
    const resource = keyValues(resourceSpans.resource?.attributes ?? undefined);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        const parent = hex(span.parentSpanId);
        spans.push({
          traceId: hex(span.traceId),
          spanId: hex(span.spanId),
          parentSpanId: parent === '' ? null : parent,
          name: span.name ?? '',
          startUnixNano: nanos(span.startTimeUnixNano),
          endUnixNano: nanos(span.endTimeUnixNano),
          attributes: keyValues(span.attributes),
          events: (span.events ?? []).map((event) => ({ name: event.name ?? '', timeUnixNano: nanos(event.timeUnixNano), attributes: keyValues(event.attributes) })),
          resource,
        });
      }
    }
  }
  return spans;
}

const HEX = /^[0-9a-f]*$/i;

/** OTLP/JSON ids are hex; the protobuf JSON mapping (and so protobufjs) expects base64. */
function hexIdsToBase64(document: unknown): void {
  const convert = (holder: Record<string, unknown>, field: string) => {
    const value = holder[field];
    if (value === undefined || value === null || value === '') return;
    if (typeof value !== 'string' || value.length % 2 !== 0 || !HEX.test(value)) throw new NotOtlpError(`${field} must be a hex string`);
    holder[field] = Buffer.from(value, 'hex').toString('base64');
  };
  const records = (value: unknown): Record<string, unknown>[] => (Array.isArray(value) ? value.filter((item): item is Record<string, unknown> => typeof item === 'object' && item !== null) : []);
  if (typeof document !== 'object' || document === null || Array.isArray(document)) throw new NotOtlpError('the body must be a JSON object');
  for (const resourceSpans of records((document as Record<string, unknown>).resourceSpans)) {
    for (const scopeSpans of records(resourceSpans.scopeSpans)) {
      for (const span of records(scopeSpans.spans)) {
        convert(span, 'traceId');
        convert(span, 'spanId');
        convert(span, 'parentSpanId');
        for (const link of records(span.links)) {
          convert(link, 'traceId');
          convert(link, 'spanId');
        }
      }
    }
  }
}

/** Decodes an ExportTraceServiceRequest; throws NotOtlpError when the bytes are not one. */
export function decodeTraceRequest(body: Uint8Array, encoding: OtlpEncoding): Span[] {
  let message: RequestMessage;
  try {
    if (encoding === 'protobuf') {
      message = ExportTraceServiceRequest.decode(body) as unknown as RequestMessage;
    } else {
      const document: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
      hexIdsToBase64(document);
      message = ExportTraceServiceRequest.fromObject(document as Record<string, unknown>) as unknown as RequestMessage;
    }
    return spansOf(message);
  } catch (error) {
    if (error instanceof NotOtlpError) throw error;
    // protobufjs reports wire-format and type errors as plain Errors; nesting deep enough to
    // exhaust the stack is a RangeError. Either way the body is not a trace export we can read.
    throw new NotOtlpError(error instanceof Error ? error.message : String(error));
  }
}

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** An ExportTraceServiceResponse in the request's encoding; empty when everything was accepted. */
export function encodeTraceResponse(encoding: OtlpEncoding, partial?: PartialSuccess): Uint8Array {
  const partialSuccess = partial && (partial.rejectedSpans > 0 || partial.errorMessage) ? partial : undefined;
  if (encoding === 'protobuf') {
    return ExportTraceServiceResponse.encode(ExportTraceServiceResponse.fromObject(partialSuccess ? { partialSuccess } : {})).finish();
  }
  // The JSON mapping writes int64 as a string.
  const json = partialSuccess ? { partialSuccess: { rejectedSpans: String(partialSuccess.rejectedSpans), errorMessage: partialSuccess.errorMessage } } : {};
  return new TextEncoder().encode(JSON.stringify(json));
}
