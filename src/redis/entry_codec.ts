/**
 * The mapping of a message onto a Redis stream entry (a flat list of field
 * names and values) and back. There is no official CloudEvents binding for
 * Redis; this one follows the idea of the binary content mode:
 *
 * | field                 | holds                                             |
 * | --------------------- | ------------------------------------------------- |
 * | `specversion`, `id`, `source`, `type` | the required attributes           |
 * | `datacontenttype`, `dataschema`, `subject`, `time` | when present         |
 * | `ext:<name>`          | each extension, JSON-encoded to keep its type     |
 * | `data`                | the data as JSON text                             |
 * | `data_base64`         | binary data (`Uint8Array`), base64, instead of `data` |
 * | `payload`             | a message that is not a CloudEvent, as JSON text (empty for `undefined`) |
 * | `payload_base64`      | a `Uint8Array` message that is not a CloudEvent   |
 * | `h:<name>`            | each header given to `publish`                    |
 * | `correlationid`, `replyto` | transport fields of `publish` and `request`  |
 *
 * A pub/sub message is the same fields as one JSON object, where a `payload`
 * or `data` that is a JSON object, array, number, boolean or null is embedded
 * as that value rather than as JSON text in a string (see
 * {@linkcode toPubSubText}); decoders accept both forms.
 *
 * @module
 */

import type { PublishOptions } from "../broker.ts";
import { decodeBase64, encodeBase64 } from "../base64.ts";
import { InvalidArgumentError, ValidationError } from "../errors.ts";
import { CloudEvent, type ExtensionValue } from "../event.ts";

/** A stream entry's fields, flat: `[name1, value1, name2, value2, ...]`. */
export type EntryFields = string[];

/**
 * A stream entry turned back into a message and its transport fields.
 *
 * @example
 * ```ts
 * import { decodeEntry, encodeEntry } from "./entry_codec.ts";
 * const decoded = decodeEntry(encodeEntry({ n: 1 }, { headers: { a: "b" } }));
 * console.log(decoded.message, decoded.headers); // { n: 1 } { a: "b" }
 * ```
 */
export interface DecodedEntry {
  /** The message: a `CloudEvent`, or the decoded JSON payload. */
  message: unknown;
  /** Headers given to `publish`. */
  headers: Record<string, string>;
  /** Correlation id, when given. */
  correlationId: string | undefined;
  /** Reply channel, when given. */
  replyTo: string | undefined;
}

const OPTIONAL = ["datacontenttype", "dataschema", "subject", "time"] as const;
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * The JSON text of a message or data; throws {@linkcode InvalidArgumentError}
 * when it cannot be encoded. `undefined` is the empty text.
 */
export function payloadText(message: unknown): string {
  if (message === undefined) return "";
  let json: string | undefined;
  try {
    json = JSON.stringify(message);
  } catch (error) {
    throw new InvalidArgumentError(
      "message",
      `cannot be encoded as JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (json === undefined) {
    throw new InvalidArgumentError(
      "message",
      `cannot be encoded as JSON (got ${typeof message})`,
    );
  }
  return json;
}

/**
 * Encodes a message and its publish options as stream entry fields; throws
 * {@linkcode InvalidArgumentError} when the message cannot be encoded.
 *
 * @example
 * ```ts
 * import { CloudEvent } from "@opensecflow/eventbus";
 * import { encodeEntry } from "./entry_codec.ts";
 * const e = new CloudEvent({ type: "t", source: "/s", extensions: { tenant: "acme" } });
 * const fields = encodeEntry(e, { correlationId: "c1" });
 * console.log(fields.includes("ext:tenant")); // true
 * ```
 */
export function encodeEntry(message: unknown, options?: PublishOptions): EntryFields {
  const fields: EntryFields = [];
  if (message instanceof CloudEvent) {
    fields.push(
      "specversion",
      "1.0",
      "id",
      message.id,
      "source",
      message.source,
      "type",
      message.type,
    );
    for (const name of OPTIONAL) {
      const value = message[name];
      if (value !== undefined) fields.push(name, value);
    }
    const extensions = message.extensions;
    for (const name in extensions) fields.push(`ext:${name}`, JSON.stringify(extensions[name]));
    const data = message.data;
    if (data instanceof Uint8Array) fields.push("data_base64", encodeBase64(data));
    else if (data !== undefined) fields.push("data", payloadText(data));
  } else if (message instanceof Uint8Array) {
    fields.push("payload_base64", encodeBase64(message));
  } else {
    fields.push("payload", payloadText(message));
  }
  if (options !== undefined) {
    const headers = options.headers;
    if (headers !== undefined) {
      for (const name in headers) fields.push(`h:${name}`, headers[name]);
    }
    if (options.correlationId !== undefined) fields.push("correlationid", options.correlationId);
    if (options.replyTo !== undefined) fields.push("replyto", options.replyTo);
  }
  return fields;
}

function invalid(path: string, message: string): ValidationError {
  return new ValidationError([{ path, message }], { context: "stream entry" });
}

function parseJSON(text: string, path: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw invalid(path, "is not valid JSON");
  }
}

/**
 * Decodes stream entry fields written by {@linkcode encodeEntry}. Throws
 * {@linkcode ValidationError} when the entry is malformed (unknown layout, bad
 * JSON, invalid CloudEvent attributes): such an entry is dead-lettered.
 *
 * @example
 * ```ts
 * import { decodeEntry } from "./entry_codec.ts";
 * const d = decodeEntry(["specversion", "1.0", "id", "1", "source", "/s", "type", "t", "data", "42"]);
 * console.log(d.message); // a CloudEvent with data 42
 * ```
 */
export function decodeEntry(fields: readonly string[]): DecodedEntry {
  return decodeFields(fields, undefined, {
    message: undefined,
    headers: NO_HEADERS,
    correlationId: undefined,
    replyTo: undefined,
  });
}

/**
 * {@linkcode decodeEntry} writing into an object the caller already holds
 * (a delivery), so decoding allocates nothing beyond the message itself.
 * Returns `target`.
 */
export function decodeEntryInto<T extends DecodedEntry>(fields: readonly string[], target: T): T {
  return decodeFields(fields, undefined, target);
}

/** `payload` and `data` values a pub/sub message carried as JSON values, already parsed. */
interface Parsed {
  payload?: unknown;
  data?: unknown;
}

function jsonField(parsed: Parsed | undefined, name: "payload" | "data", text: string): unknown {
  return parsed !== undefined && Object.hasOwn(parsed, name) ? parsed[name] : parseJSON(text, name);
}

function decodeFields<T extends DecodedEntry>(
  fields: readonly string[],
  parsed: Parsed | undefined,
  target: T,
): T {
  if (!Array.isArray(fields) || fields.length % 2 !== 0) {
    throw invalid("", "fields must be name/value pairs");
  }
  // The common case, a plain payload without transport fields, skips the general walk.
  if (fields.length === 2 && fields[0] === "payload") {
    target.message = jsonField(parsed, "payload", fields[1]);
    target.headers = NO_HEADERS;
    target.correlationId = undefined;
    target.replyTo = undefined;
    return target;
  }
  const headers: Record<string, string> = {};
  const attributes: Record<string, string> = {};
  let extensions: Record<string, ExtensionValue> | undefined;
  let correlationId: string | undefined;
  let replyTo: string | undefined;
  let payload: string | undefined;
  let payloadBase64: string | undefined;
  let data: string | undefined;
  let dataBase64: string | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    switch (name) {
      case "payload":
        payload = value;
        break;
      case "payload_base64":
        payloadBase64 = value;
        break;
      case "data":
        data = value;
        break;
      case "data_base64":
        dataBase64 = value;
        break;
      case "correlationid":
        correlationId = value;
        break;
      case "replyto":
        replyTo = value;
        break;
      default:
        if (name.startsWith("h:")) headers[name.slice(2)] = value;
        else if (name.startsWith("ext:")) {
          extensions ??= {};
          const parsed = parseJSON(value, name);
          Object.defineProperty(extensions, name.slice(4), {
            value: parsed,
            enumerable: true,
          });
        } else attributes[name] = value;
    }
  }
  let message: unknown;
  if (attributes.specversion !== undefined) {
    if (attributes.specversion !== "1.0") {
      throw invalid("specversion", `must be "1.0", got ${JSON.stringify(attributes.specversion)}`);
    }
    let eventData: unknown;
    if (dataBase64 !== undefined) {
      if (data !== undefined) throw invalid("data_base64", "data and data_base64 are exclusive");
      eventData = decodeBase64(dataBase64);
      if (eventData === undefined) throw invalid("data_base64", "must be base64 text");
    } else if (data !== undefined) {
      eventData = jsonField(parsed, "data", data);
    }
    message = new CloudEvent({
      id: attributes.id,
      source: attributes.source,
      type: attributes.type,
      datacontenttype: attributes.datacontenttype,
      dataschema: attributes.dataschema,
      subject: attributes.subject,
      time: attributes.time ?? null,
      data: eventData,
      extensions,
    });
  } else if (payload !== undefined) {
    message = jsonField(parsed, "payload", payload);
  } else if (payloadBase64 !== undefined) {
    message = decodeBase64(payloadBase64);
    if (message === undefined) throw invalid("payload_base64", "must be base64 text");
  } else {
    throw invalid("", "has neither a specversion nor a payload field");
  }
  target.message = message;
  target.headers = headers;
  target.correlationId = correlationId;
  target.replyTo = replyTo;
  return target;
}

/**
 * Size of the encoded fields in UTF-8 bytes; stops counting once `limit` is
 * passed (the result is then some value above `limit`).
 *
 * @example
 * ```ts
 * import { entryBytes } from "./entry_codec.ts";
 * console.log(entryBytes(["payload", "\"é\""], 1_000)); // 11
 * ```
 */
export function entryBytes(fields: readonly string[], limit: number): number {
  let bytes = 0;
  for (const field of fields) {
    for (let i = 0; i < field.length; i++) {
      const code = field.charCodeAt(i);
      if (code < 0x80) bytes += 1;
      else if (code < 0x800) bytes += 2;
      else if (code >= 0xd800 && code <= 0xdbff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    }
    if (bytes > limit) return bytes;
  }
  return bytes;
}

/**
 * The pub/sub form of an entry: its fields as one JSON object.
 *
 * @example
 * ```ts
 * import { fieldsToJSON } from "./entry_codec.ts";
 * console.log(fieldsToJSON(["payload", "1"])); // '{"payload":"1"}'
 * ```
 */
export function fieldsToJSON(fields: readonly string[]): string {
  // A null prototype keeps a field named "__proto__" an ordinary member.
  const object: Record<string, string> = Object.create(null);
  for (let i = 0; i < fields.length; i += 2) object[fields[i]] = fields[i + 1];
  return JSON.stringify(object);
}

/**
 * Parses the pub/sub form back to fields; throws {@linkcode ValidationError}
 * when the text is not a JSON object of strings.
 *
 * @example
 * ```ts
 * import { fieldsFromJSON } from "./entry_codec.ts";
 * console.log(fieldsFromJSON('{"payload":"1"}')); // ["payload", "1"]
 * ```
 */
export function fieldsFromJSON(text: string): EntryFields {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid("", "pub/sub message is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid("", "pub/sub message must be a JSON object");
  }
  const fields: EntryFields = [];
  for (const [name, field] of Object.entries(value)) {
    if (typeof field !== "string") throw invalid(name, "must be a string");
    fields.push(name, field);
  }
  return fields;
}

/**
 * Turns flat fields into an object, e.g. to show a dead letter's raw entry.
 *
 * @example
 * ```ts
 * import { fieldsToObject } from "./entry_codec.ts";
 * console.log(fieldsToObject(["a", "1"])); // { a: "1" }
 * ```
 */
export function fieldsToObject(fields: readonly string[]): Record<string, string> {
  return JSON.parse(fieldsToJSON(fields));
}

/**
 * The pub/sub form of an entry: its fields as one JSON object, except that a
 * `payload` or `data` holding a JSON object, array, number, boolean or null is
 * embedded as that JSON value instead of as JSON text in a string, which
 * saves an escape on the way out and a parse on the way in. A string or
 * absent value keeps the string form. Only fields made by
 * {@linkcode encodeEntry} may be given: their `payload`/`data` are JSON text.
 */
export function toPubSubText(fields: readonly string[]): string {
  let out = "{";
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    if (i > 0) out += ",";
    out += JSON.stringify(name);
    out += ":";
    // JSON text not starting with a quote is an object, array, number, boolean or null.
    out += (name === "payload" || name === "data") && value.length > 0 &&
        value.charCodeAt(0) !== 34
      ? value
      : JSON.stringify(value);
  }
  return `${out}}`;
}

/** A pub/sub message parsed once: its fields and the embedded JSON values. */
export interface PubSubMessage {
  /** Fields; an embedded `payload`/`data` appears with an empty string. */
  fields: EntryFields;
  /** Embedded `payload`/`data` values. */
  parsed: Parsed;
}

/**
 * Parses the pub/sub form (either form of `payload`/`data`); throws
 * {@linkcode ValidationError} when it is not a JSON object of strings.
 */
export function parsePubSubText(text: string): PubSubMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid("", "pub/sub message is not valid JSON");
  }
  return pubSubMessageOf(value);
}

function pubSubMessageOf(value: unknown): PubSubMessage {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid("", "pub/sub message must be a JSON object");
  }
  const fields: EntryFields = [];
  const parsed: Parsed = {};
  for (const name of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[name];
    if (typeof field === "string") fields.push(name, field);
    else if (name === "payload" || name === "data") {
      parsed[name] = field;
      fields.push(name, "");
    } else throw invalid(name, "must be a string");
  }
  return { fields, parsed };
}

/**
 * Decodes a pub/sub message's text; throws {@linkcode ValidationError} like
 * {@linkcode decodeEntry}. A message with nothing but a payload is decoded
 * without building its field list.
 */
export function decodePubSubText(text: string): DecodedEntry {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalid("", "pub/sub message is not valid JSON");
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    let names = 0;
    let payloadOnly = true;
    for (const name in value) {
      if (++names > 1 || name !== "payload") {
        payloadOnly = false;
        break;
      }
    }
    if (payloadOnly && names === 1) {
      const payload = (value as { payload: unknown }).payload;
      return {
        message: typeof payload === "string" ? parseJSON(payload, "payload") : payload,
        headers: NO_HEADERS,
        correlationId: undefined,
        replyTo: undefined,
      };
    }
  }
  return decodePubSubMessage(pubSubMessageOf(value));
}

/** Decodes a parsed pub/sub message; throws {@linkcode ValidationError} like {@linkcode decodeEntry}. */
export function decodePubSubMessage(message: PubSubMessage): DecodedEntry {
  return decodeFields(message.fields, message.parsed, {
    message: undefined,
    headers: NO_HEADERS,
    correlationId: undefined,
    replyTo: undefined,
  });
}
