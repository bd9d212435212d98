/**
 * Ids that sort by creation time, so a listing of keys that end with one
 * comes out oldest first.
 *
 * @module
 */

let lastMillis = 0;
let counter = 0;
const instance = crypto.randomUUID().slice(0, 8);

/**
 * A new id: milliseconds since the epoch and a counter, both fixed width in
 * base 36, then a random part that keeps ids of different processes apart.
 */
export function sortableId(): string {
  const now = Date.now();
  if (now > lastMillis) {
    lastMillis = now;
    counter = 0;
  } else {
    counter++;
  }
  return `${lastMillis.toString(36).padStart(9, "0")}-${
    counter.toString(36).padStart(4, "0")
  }-${instance}`;
}
