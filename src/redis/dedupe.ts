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

/** Identities up to this length go into key names as they are; longer ones are hashed. */
const MAX_RAW_IDENTITY = 200;

/**
 * The event's `source` + NUL + `id` as a key suffix: as it is when short
 * (`r:` prefix; hashing costs more than the rest of a mark), else its hex
 * SHA-1 (`h:` prefix), so a huge id never makes a huge key. The prefixes keep
 * the two forms apart. Redis keys are binary-safe, and the channel's hash tag
 * comes earlier in the key, so nothing here can move the key's slot.
 */
export function eventDigest(event: CloudEvent): string {
  const identity = idempotencyKey(event);
  return identity.length <= MAX_RAW_IDENTITY
    ? `r:${identity}`
    : `h:${createHash("sha1").update(identity).digest("hex")}`;
}

/** Name under which the publish script is defined on a connection. */
export const DEDUPE_XADD = "eventbusDedupeXadd";

/**
 * Writes the de-duplicated publishes of one stream, in order. KEYS[1] the
 * stream, then one `seen` key per publish; ARGV[1] the window in ms, ARGV[2]
 * the MAXLEN (0: no trimming), then per publish its field count and fields.
 * Answers per publish: the new entry id, 0 when the event was written within
 * the window, or "ERR <message>" when Redis refused the XADD (its `seen` key
 * is removed, so a retry can write it).
 */
export const DEDUPE_XADD_LUA = `
local replies = {}
local at = 3
for i = 2, #KEYS do
  local first = at + 1
  local last = at + tonumber(ARGV[at])
  at = last + 1
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[1]) then
    local written
    if ARGV[2] ~= '0' then
      written = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, first, last))
    else
      written = redis.pcall('XADD', KEYS[1], '*', unpack(ARGV, first, last))
    end
    if type(written) == 'table' and written.err then
      redis.call('DEL', KEYS[i])
      written = 'ERR ' .. written.err
    end
    replies[i - 1] = written
  else
    replies[i - 1] = 0
  end
end
return replies
`;
