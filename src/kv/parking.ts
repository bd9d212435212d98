/**
 * Parking: a batch whose subscription runs nowhere at hand (unsubscribed,
 * stopped, or not subscribed on the instance KV gave it to) is stored under
 * the subscription's park prefix instead of being lost or bounced around the
 * queue. Each park bumps a counter every instance watches; an instance that
 * runs the subscription then moves the parked batches back onto the queue,
 * oldest first, each move one commit that checks the entry is still there,
 * so two instances never both move it. A subscription that starts moves its
 * parked batches too.
 *
 * @module
 */

import type { ResolvedBackoff } from "../retry.ts";
import { commit } from "./commit.ts";
import { enqueueOptions } from "./delivery_budget.ts";
import type { Envelope } from "./envelope.ts";
import { sortableId } from "./ids.ts";
import { KvKeys } from "./keys.ts";
import type { KvKey, KvStore, KvStoreEntry } from "./kv_store.ts";
import type { OrderedWriter } from "./ordered_writer.ts";
import type { Target } from "./registry.ts";

/** Entries written or moved by one commit: KV checks at most 10 keys per commit. */
const PER_COMMIT = 8;

/**
 * Parks batches (all of one subscription), in order; resolves once KV has
 * them. The batches keep their attempt and budget.
 */
export async function park(kv: KvStore, envelopes: readonly Envelope[]): Promise<void> {
  for (let i = 0; i < envelopes.length; i += PER_COMMIT) {
    const chunk = envelopes.slice(i, i + PER_COMMIT);
    const keys = new KvKeys(chunk[0].prefix);
    // Keyed by the batch's own id first: parked batches go back in publish order.
    const ids = chunk.map((envelope) => `${envelope.batch}~${sortableId()}`);
    await commit(() => {
      const atomic = kv.atomic();
      chunk.forEach((envelope, i) => {
        const { channel, group, subscription } = envelope;
        atomic.set(keys.parkedEntry(channel, group, subscription, ids[i]), envelope);
      });
      return atomic.sum(keys.parked, 1n);
    });
  }
}

async function parkedEntries(kv: KvStore, keys: KvKeys, target: Target): Promise<KvStoreEntry[]> {
  const entries: KvStoreEntry[] = [];
  const prefix = keys.parkedOf(target.channel, target.group, target.name);
  for await (const entry of kv.list({ prefix }, { limit: PER_COMMIT })) entries.push(entry);
  return entries;
}

/**
 * Moves a subscription's parked batches back onto the queue, oldest first,
 * through the ordered writer so they keep their order. Resolves with the
 * ids of the batches it moved.
 */
export async function unpark(
  kv: KvStore,
  keys: KvKeys,
  target: Target,
  writer: OrderedWriter,
  backoff: ResolvedBackoff,
): Promise<string[]> {
  const moved: string[] = [];
  for (;;) {
    const entries = await parkedEntries(kv, keys, target);
    if (entries.length === 0) return moved;
    const build = (delay: number) => {
      const atomic = kv.atomic();
      entries.forEach((entry, index) => {
        const envelope = entry.value as Envelope;
        const key = [...entry.key] as KvKey;
        atomic.check({ key, versionstamp: entry.versionstamp }).delete(key)
          .enqueue(envelope, enqueueOptions(keys, envelope, backoff, delay + index));
      });
      return atomic;
    };
    const result = await writer.write(entries.length, (delay) => commit(() => build(delay)));
    // A failed check: another instance moved one of them; read again.
    if (result.ok) moved.push(...entries.map((entry) => (entry.value as Envelope).batch));
  }
}
