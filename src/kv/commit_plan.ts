/**
 * What one KV commit of the publisher holds: the publishes grouped by
 * channel, each channel's messages in chunks of what one queue message
 * carries, within KV's limits on one value, on the mutations of one commit
 * and on its size. A plan can take back what was added since a mark, so a
 * batch that does not fit whole is left for the next commit.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import { bodyLength, envelopeOverhead, MAX_BATCH_MESSAGES, MAX_VALUE_BYTES } from "./envelope.ts";
import type { KvKeys } from "./keys.ts";
import type { Target } from "./registry.ts";

/** Bytes one commit may carry; KV's limit is 800 KiB of keys and values. */
const MAX_COMMIT_BYTES = 760_000;
/** Enqueues one commit may carry; KV's limit is 1000 mutations. */
const MAX_COMMIT_ENQUEUES = 900;

/** One encoded message for a channel. */
export interface PlannedPublish {
  /** Channel it is published to. */
  readonly channel: string;
  /** Its record (see `record.ts`). */
  readonly record: string;
  /** UTF-8 bytes of the record. */
  readonly bytes: number;
}

/** The error for a message that no commit holds with its subscriptions. */
export function tooLargeForCommit(targets: readonly Target[]): InvalidArgumentError {
  return new InvalidArgumentError(
    "message",
    `with its ${targets.length} subscription(s) it exceeds what one KV commit holds (${
      Math.min(MAX_VALUE_BYTES, MAX_COMMIT_BYTES)
    } bytes per message and subscription, ${MAX_COMMIT_BYTES} in all)`,
  );
}

/** Messages of one channel that travel as one queue message per subscription. */
interface Chunk {
  readonly records: string[];
  /** UTF-8 bytes of the records. */
  bytes: number;
}

/** The messages of one channel in one commit, in chunks of what one queue message holds. */
export interface ChannelBatch {
  readonly targets: readonly Target[];
  readonly overhead: number;
  readonly chunks: Chunk[];
}

/** What adding one publish to a plan changed, so a batch that does not fit can be taken out. */
interface Step {
  readonly channel: string;
  readonly newBatch: boolean;
  readonly newChunk: boolean;
  readonly recordBytes: number;
  readonly bytes: number;
  readonly enqueues: number;
}

/**
 * The publishes of one commit, grouped by channel: within KV's limits on
 * one value (a chunk of a channel's messages and its routing), on the
 * mutations of one commit (the enqueues) and on its size.
 *
 * @example
 * ```ts
 * import { CommitPlan } from "./commit_plan.ts";
 * import { KvKeys } from "./keys.ts";
 * const plan = new CommitPlan(new KvKeys(["docs"]));
 * const target = { channel: "orders", group: "billing", name: "charge" };
 * const mark = plan.mark();
 * console.log(plan.add({ channel: "orders", record: "{}", bytes: 2 }, [target])); // true
 * plan.undo(mark);
 * console.log(plan.count); // 0
 * ```
 */
export class CommitPlan {
  readonly batches = new Map<string, ChannelBatch>();
  count = 0;
  #bytes = 0;
  #enqueues = 0;
  readonly #steps: Step[] = [];
  readonly #keys: KvKeys;

  constructor(keys: KvKeys) {
    this.#keys = keys;
  }

  /** Chunks of the channel with the most: the enqueue delays the commit spans. */
  get spread(): number {
    let most = 1;
    for (const batch of this.batches.values()) {
      if (batch.targets.length > 0) most = Math.max(most, batch.chunks.length);
    }
    return most;
  }

  /** Adds a publish when the commit still holds it; returns whether it did. */
  add(waiting: PlannedPublish, targets: readonly Target[]): boolean {
    const existing = this.batches.get(waiting.channel);
    const batch = existing ?? {
      targets,
      chunks: [],
      overhead: Math.max(
        0,
        ...targets.map((t) => envelopeOverhead(this.#keys.prefix, t.channel, t.group, t.name)),
      ),
    };
    const tail = batch.chunks.at(-1);
    const fitsTail = tail !== undefined && tail.records.length < MAX_BATCH_MESSAGES &&
      bodyLength(tail.bytes + waiting.bytes, tail.records.length + 1) + batch.overhead <=
        MAX_VALUE_BYTES;
    if (!fitsTail && bodyLength(waiting.bytes, 1) + batch.overhead > MAX_VALUE_BYTES) return false;
    const enqueues = fitsTail ? 0 : targets.length;
    const bytes = (waiting.bytes + 1) * targets.length + enqueues * batch.overhead;
    if (
      this.#enqueues + enqueues > MAX_COMMIT_ENQUEUES || this.#bytes + bytes > MAX_COMMIT_BYTES
    ) {
      return false;
    }
    if (existing === undefined) this.batches.set(waiting.channel, batch);
    if (fitsTail) {
      tail.records.push(waiting.record);
      tail.bytes += waiting.bytes;
    } else {
      batch.chunks.push({ records: [waiting.record], bytes: waiting.bytes });
    }
    this.#bytes += bytes;
    this.#enqueues += enqueues;
    this.count++;
    this.#steps.push({
      channel: waiting.channel,
      newBatch: existing === undefined,
      newChunk: !fitsTail,
      recordBytes: waiting.bytes,
      bytes,
      enqueues,
    });
    return true;
  }

  /** A point {@linkcode CommitPlan.undo} can go back to. */
  mark(): number {
    return this.#steps.length;
  }

  /** Takes out every publish added since `mark`. */
  undo(mark: number): void {
    while (this.#steps.length > mark) {
      const step = this.#steps.pop()!;
      const batch = this.batches.get(step.channel)!;
      if (step.newChunk) batch.chunks.pop();
      else {
        const tail = batch.chunks.at(-1)!;
        tail.records.pop();
        tail.bytes -= step.recordBytes;
      }
      if (step.newBatch) this.batches.delete(step.channel);
      this.#bytes -= step.bytes;
      this.#enqueues -= step.enqueues;
      this.count--;
    }
  }
}
