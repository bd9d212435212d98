/**
 * One message as the broker stores it: a compact JSON object.
 *
 * | member | holds                                                           |
 * | ------ | --------------------------------------------------------------- |
 * | `e`    | a CloudEvent in the structured JSON format (`data_base64` for bytes) |
 * | `p`    | any other message, as a JSON value (absent for `undefined`)     |
 * | `b`    | a `Uint8Array` message, base64                                  |
 * | `i`    | the id the broker gave a message that is not a CloudEvent       |
 * | `h`    | headers given to `publish`                                      |
 * | `c`    | correlation id                                                  |
 * | `r`    | reply channel                                                   |
 *
 * @module
 */

import type { PublishOptions } from "../broker.ts";
import { decodeBase64, encodeBase64 } from "../base64.ts";
import { InvalidArgumentError, ValidationError } from "../errors.ts";
import { CloudEvent } from "../event.ts";

/** A stored message turned back into what a handler gets. */
export interface DecodedRecord {
  /** A `CloudEvent`, or the decoded payload. */
  readonly message: unknown;
  /** The CloudEvent id, or the id the broker gave the message. */
  readonly messageId: string;
  /** Headers given to `publish`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Correlation id, when given. */
  readonly correlationId: string | undefined;
  /** Reply channel, when given. */
  readonly replyTo: string | undefined;
}

interface RecordShape {
  e?: unknown;
  p?: unknown;
  b?: string;
  i?: string;
  h?: Record<string, string>;
  c?: string;
  r?: string;
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

function unencodable(reason: string): InvalidArgumentError {
  return new InvalidArgumentError("message", `cannot be encoded as JSON: ${reason}`);
}

/**
 * Encodes a message and its publish options as JSON text; throws
 * `InvalidArgumentError` when it is not JSON-encodable.
 */
export function encodeRecord(message: unknown, id: string, options?: PublishOptions): string {
  const record: RecordShape = {};
  if (message instanceof CloudEvent) {
    record.e = message.toJSON();
  } else if (message instanceof Uint8Array) {
    record.b = encodeBase64(message);
    record.i = id;
  } else {
    const kind = typeof message;
    if (kind === "function" || kind === "symbol" || kind === "bigint") {
      throw unencodable(`got a ${kind}`);
    }
    if (message !== undefined) record.p = message;
    record.i = id;
  }
  if (options !== undefined) {
    if (options.headers !== undefined && Object.keys(options.headers).length > 0) {
      record.h = options.headers;
    }
    if (options.correlationId !== undefined) record.c = options.correlationId;
    if (options.replyTo !== undefined) record.r = options.replyTo;
  }
  try {
    return JSON.stringify(record);
  } catch (error) {
    throw unencodable(error instanceof Error ? error.message : String(error));
  }
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError([{ path, message }], { context: "stored message" });
}

function optionalString(value: unknown, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw invalid(path, "must be a string");
  return value;
}

function headersOf(value: unknown): Readonly<Record<string, string>> {
  if (value === undefined) return NO_HEADERS;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid("h", "must be an object of strings");
  }
  for (const [name, header] of Object.entries(value)) {
    if (typeof header !== "string") throw invalid(`h.${name}`, "must be a string");
  }
  return Object.freeze({ ...value as Record<string, string> });
}

/**
 * Decodes one stored message (already parsed from JSON); throws
 * `ValidationError` naming what is wrong (such a message is dead-lettered).
 */
export function decodeRecord(value: unknown): DecodedRecord {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid("", "must be an object");
  }
  const record = value as RecordShape;
  const headers = headersOf(record.h);
  const correlationId = optionalString(record.c, "c");
  const replyTo = optionalString(record.r, "r");
  if (record.e !== undefined) {
    const event = CloudEvent.fromJSON(record.e);
    return { message: event, messageId: event.id, headers, correlationId, replyTo };
  }
  const messageId = optionalString(record.i, "i");
  if (messageId === undefined) throw invalid("i", "is missing");
  let message: unknown = record.p;
  if (record.b !== undefined) {
    if (typeof record.b !== "string") throw invalid("b", "must be base64 text");
    message = decodeBase64(record.b);
    if (message === undefined) throw invalid("b", "must be base64 text");
  }
  return { message, messageId, headers, correlationId, replyTo };
}
