/**
 * Identity of an event for de-duplication in Redis: a digest of its
 * (`source`, `id`), short and free of any character a key name would not
 * want, and the script that writes an event only when its identity was not
 * written within `dedupeWindow` (the check and the XADD in one atomic step,
 * so a resend of the same command cannot write it twice).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { CloudEvent } from "../event.ts";
import { idempotencyKey } from "../idempotency.ts";

/** Hex SHA-1 of the event's `source` + NUL + `id`. */
export function eventDigest(event: CloudEvent): string {
  return createHash("sha1").update(idempotencyKey(event)).digest("hex");
}

/** Name under which the publish script is defined on a connection. */
export const DEDUPE_XADD = "eventbusDedupeXadd";

/**
 * KEYS[1] the stream, KEYS[2] the event's `seen` key; ARGV[1] the window in
 * ms, ARGV[2] the MAXLEN (0: no trimming), then the entry's fields. Returns
 * the new entry id, or nil when the event was already written within the
 * window.
 */
export const DEDUPE_XADD_LUA = `
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return false end
local written
if ARGV[2] ~= '0' then
  written = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
else
  written = redis.pcall('XADD', KEYS[1], '*', unpack(ARGV, 3))
end
if type(written) == 'table' and written.err then
  -- Not written: a retry must be able to write it.
  redis.call('DEL', KEYS[2])
  return redis.error_reply(written.err)
end
return written
`;
