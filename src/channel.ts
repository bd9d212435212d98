/**
 * The broker channel of an event type. Every valid CloudEvents type must be
 * publishable, but brokers take channel names without whitespace or control
 * characters, so types are percent-encoded into channel names.
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

// Visible ASCII but `%`: such a type is its own channel name, as almost all are.
const PLAIN = /^[\x21-\x24\x26-\x7e]*$/;

const utf8 = new TextEncoder();

/**
 * The channel events of `type` travel on: `prefix` followed by `type`, where
 * every character outside visible ASCII, and `%` itself, is percent-encoded
 * as UTF-8 bytes (`"a b"` -> `"a%20b"`). An ordinary type such as
 * `order.created` is unchanged. Distinct types give distinct channels, and
 * the channel never holds whitespace or control characters.
 *
 * @example
 * ```ts
 * import { channelFor } from "./channel.ts";
 * console.log(channelFor("events.", "order.created")); // "events.order.created"
 * console.log(channelFor("events.", "a b"));           // "events.a%20b"
 * ```
 */
export function channelFor(prefix: string, type: string): string {
  if (typeof prefix !== "string") {
    throw new InvalidArgumentError("prefix", `must be a string, got ${typeof prefix}`);
  }
  if (typeof type !== "string" || type.length === 0) {
    throw new InvalidArgumentError("type", "must be a non-empty string");
  }
  if (PLAIN.test(type)) return prefix + type;
  return prefix + encodeType(type);
}

function encodeType(type: string): string {
  let out = "";
  for (const char of type) {
    const code = char.codePointAt(0) as number;
    if (code > 0x20 && code < 0x7f && code !== 0x25) {
      out += char;
      continue;
    }
    // A lone surrogate encodes as U+FFFD; CloudEvent refuses such types anyway.
    for (const byte of utf8.encode(char)) {
      out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out;
}
