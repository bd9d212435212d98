/**
 * The value the broker puts on the KV queue: one batch of messages for one
 * subscription of one group, with the routing needed to hand it to the
 * right handler in whichever instance KV gives it to. The messages travel as
 * one UTF-8 JSON array of records (see `record.ts`), so their size is known
 * before the commit and one `JSON.parse` reads them all.
 *
 * @module
 */

import { ValidationError } from "../errors.ts";
import type { KvPrefixPart } from "./options.ts";

/** Marks a queue value written by this broker, and its layout version. */
export const ENVELOPE_MARK = "eventbus.kv/1";

/** Largest value KV accepts. */
export const MAX_VALUE_BYTES = 65_536;

/** Messages in one batch at most: a crash redelivers a whole batch. */
export const MAX_BATCH_MESSAGES = 256;

/** One batch on the queue. */
export interface Envelope {
  /** Always {@linkcode ENVELOPE_MARK}. */
  readonly eventbus: typeof ENVELOPE_MARK;
  /** `keyPrefix` of the broker that wrote it. */
  readonly prefix: readonly KvPrefixPart[];
  /** Channel the messages were published to. */
  readonly channel: string;
  /** Group of the subscription. */
  readonly group: string;
  /** Name of the subscription. */
  readonly subscription: string;
  /** Id of the batch; its dead-letter id if KV gives up delivering it. */
  readonly batch: string;
  /** Delivery attempt of every message in it, from 1. */
  readonly attempt: number;
  /** `maxDeliveries` of the broker that enqueued it. */
  readonly deliveries: number;
  /** UTF-8 JSON array of message records. */
  readonly body: Uint8Array;
}

/** What a queue value turned out to be. */
export type ReadEnvelope =
  | { readonly kind: "envelope"; readonly envelope: Envelope }
  | { readonly kind: "foreign"; readonly reason: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
/** JSON text outside printable ASCII (JSON escapes control characters, so this means non-ASCII). */
const NOT_PRINTABLE_ASCII = /[^ -~]/;

/** UTF-8 length of a JSON text. */
export function utf8Length(text: string): number {
  return NOT_PRINTABLE_ASCII.test(text) ? encoder.encode(text).length : text.length;
}

/** The body of a batch: its records as one JSON array. */
export function encodeBody(records: readonly string[]): Uint8Array {
  return encoder.encode(`[${records.join(",")}]`);
}

/** Bytes of a body holding records of these UTF-8 lengths. */
export function bodyLength(recordBytes: number, count: number): number {
  return recordBytes + Math.max(0, count - 1) + 2;
}

/**
 * Bytes the fields around the body may take once serialized: V8 stores a
 * string in one or two bytes a character, plus tags and lengths.
 */
export function envelopeOverhead(
  prefix: readonly KvPrefixPart[],
  channel: string,
  group: string,
  subscription: string,
): number {
  const names = JSON.stringify(prefix.map(String)).length + channel.length + group.length +
    subscription.length;
  return 512 + 2 * names;
}

/** Parses a body into its records; throws `ValidationError` when it is not a JSON array. */
export function decodeBody(body: Uint8Array): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(body));
  } catch {
    throw new ValidationError([{ path: "body", message: "is not UTF-8 JSON" }], {
      context: "queue message",
    });
  }
  if (!Array.isArray(parsed)) {
    throw new ValidationError([{ path: "body", message: "is not an array" }], {
      context: "queue message",
    });
  }
  return parsed;
}

/** The body's text, for a dead letter of a batch that cannot be parsed. */
export function bodyText(body: Uint8Array): string {
  return new TextDecoder().decode(body);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object without the eventbus mark" : `a ${typeof value}`;
}

const STRINGS = ["channel", "group", "subscription", "batch"] as const;

/** Tells a batch written by this broker from anything else found on the queue. */
export function readEnvelope(value: unknown): ReadEnvelope {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { kind: "foreign", reason: `not a message written by KvBroker: ${describe(value)}` };
  }
  const candidate = value as Record<string, unknown>;
  if (candidate.eventbus !== ENVELOPE_MARK) {
    return { kind: "foreign", reason: `not a message written by KvBroker: ${describe(value)}` };
  }
  const wrong = (field: string, what: string): ReadEnvelope => ({
    kind: "foreign",
    reason: `a KvBroker message with a bad ${field}: ${what}`,
  });
  if (!Array.isArray(candidate.prefix) || candidate.prefix.length === 0) {
    return wrong("prefix", "not a non-empty array");
  }
  for (const field of STRINGS) {
    if (typeof candidate[field] !== "string" || candidate[field] === "") {
      return wrong(field, "not a non-empty string");
    }
  }
  for (const field of ["attempt", "deliveries"] as const) {
    const n = candidate[field];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
      return wrong(field, "not an integer >= 1");
    }
  }
  if (!(candidate.body instanceof Uint8Array)) return wrong("body", "not bytes");
  return { kind: "envelope", envelope: candidate as unknown as Envelope };
}
