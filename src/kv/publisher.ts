/**
 * The publishing side: publishes are gathered while a commit is in flight
 * and committed together. One commit holds, for each subscription of each
 * channel published to, one queue message with that channel's messages in
 * publish order (the fan-out), plus a check that the registry is still the
 * one the fan-out was computed from. A publish resolves once its commit
 * succeeded, so every subscription registered before it gets it. Commits go
 * through the ordered writer: batches of one publisher reach a subscription
 * in publish order.
 *
 * @module
 */

import type { ResolvedBackoff } from "../retry.ts";
import { BrokerError, InvalidArgumentError } from "../errors.ts";
import { commit } from "./commit.ts";
import { enqueueOptions } from "./delivery_budget.ts";
import {
  bodyLength,
  encodeBody,
  type Envelope,
  ENVELOPE_MARK,
  envelopeOverhead,
  MAX_BATCH_MESSAGES,
  MAX_VALUE_BYTES,
} from "./envelope.ts";
import { sortableId } from "./ids.ts";
import type { KvKeys } from "./keys.ts";
import type { KvStore, KvStoreAtomic } from "./kv_store.ts";
import type { OrderedWriter } from "./ordered_writer.ts";
import type { Registry, RegistrySnapshot, Target } from "./registry.ts";

/** Bytes one commit may carry; KV's limit is 800 KiB of keys and values. */
const MAX_COMMIT_BYTES = 760_000;
/** Enqueues one commit may carry; KV's limit is 1000 mutations. */
const MAX_COMMIT_ENQUEUES = 900;

/** One publish waiting for its commit. */
interface Waiting {
  readonly channel: string;
  readonly record: string;
  readonly bytes: number;
  readonly resolve: (targets: number) => void;
  readonly reject: (error: unknown) => void;
}

/** The messages of one channel in one commit. */
interface ChannelBatch {
  readonly targets: readonly Target[];
  readonly records: string[];
  bytes: number;
  readonly overhead: number;
}

/** What the publisher needs from its broker. */
export interface PublisherHost {
  readonly kv: () => KvStore;
  readonly keys: KvKeys;
  readonly registry: Registry;
  readonly writer: OrderedWriter;
  readonly maxDeliveries: number;
  readonly backoff: ResolvedBackoff;
  /** Resolves once the subscriptions being started are registered. */
  readonly ready: () => Promise<void>;
}

/**
 * Batches publishes into commits.
 *
 * @example
 * ```ts
 * import { KvKeys } from "./keys.ts";
 * import { OrderedWriter } from "./ordered_writer.ts";
 * import { Publisher } from "./publisher.ts";
 * import { Registry } from "./registry.ts";
 * import { DEFAULT_BACKOFF } from "../retry.ts";
 * const kv = await Deno.openKv(":memory:");
 * const keys = new KvKeys(["docs"]);
 * const registry = new Registry(kv, keys);
 * const publisher = new Publisher({
 *   kv: () => kv, keys, registry, writer: new OrderedWriter(),
 *   maxDeliveries: 5, backoff: DEFAULT_BACKOFF, ready: () => Promise.resolve(),
 * });
 * const record = '{"p":1,"i":"m-1"}';
 * console.log(await publisher.publish("orders", record, record.length)); // 0: nobody subscribed
 * kv.close();
 * ```
 */
export class Publisher {
  readonly #host: PublisherHost;
  #queue: Waiting[] = [];
  #running: Promise<void> | undefined;

  /** Creates the publisher of a broker. */
  constructor(host: PublisherHost) {
    this.#host = host;
  }

  /** Publishes waiting for their commit. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Queues one encoded message for `channel`; resolves with the number of
   * subscriptions it was enqueued for once KV committed it.
   */
  publish(channel: string, record: string, bytes: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#queue.push({ channel, record, bytes, resolve, reject });
      this.#running ??= this.#run().finally(() => (this.#running = undefined));
    });
  }

  /** Resolves once every queued publish is committed or failed. */
  async whenIdle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #run(): Promise<void> {
    // Publishes made in the same turn join the first commit.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      try {
        await this.#host.ready();
        await this.#commitNext();
      } catch (error) {
        const failed = this.#queue;
        this.#queue = [];
        const cause = error instanceof Error ? error : new Error(String(error));
        for (const waiting of failed) {
          waiting.reject(new BrokerError(`publish failed: ${cause.message}`, { cause }));
        }
      }
    }
  }

  /** Commits the publishes at the head of the queue that fit into one commit. */
  async #commitNext(): Promise<void> {
    const host = this.#host;
    let snapshot = await host.registry.snapshot();
    for (;;) {
      if (this.#queue.length === 0) return;
      const taken = this.#plan(snapshot);
      if (taken.count === 0) continue; // the head was refused as too large
      const versionstamp = snapshot.versionstamp;
      let ok: boolean;
      try {
        const result = await host.writer.write(1, (delay) =>
          commit(() => {
            const atomic = host.kv().atomic().check({ key: host.keys.registry, versionstamp });
            this.#enqueue(atomic, taken.batches, delay);
            return atomic;
          }));
        ok = result.ok;
      } catch (error) {
        const cause = error instanceof Error ? error : new Error(String(error));
        for (const waiting of this.#queue.splice(0, taken.count)) {
          waiting.reject(new BrokerError(`publish failed: ${cause.message}`, { cause }));
        }
        return;
      }
      if (ok) {
        for (const waiting of this.#queue.splice(0, taken.count)) {
          waiting.resolve(taken.batches.get(waiting.channel)?.targets.length ?? 0);
        }
        return;
      }
      // A subscription was registered since the snapshot: fan out again.
      snapshot = await host.registry.reload();
    }
  }

  /** Groups the head of the queue by channel, as much as one commit holds. */
  #plan(snapshot: RegistrySnapshot): { count: number; batches: Map<string, ChannelBatch> } {
    const batches = new Map<string, ChannelBatch>();
    const keys = this.#host.keys;
    let bytes = 0;
    let enqueues = 0;
    let count = 0;
    for (const waiting of this.#queue) {
      const targets = snapshot.byChannel.get(waiting.channel) ?? [];
      let batch = batches.get(waiting.channel);
      const grows = batch === undefined ? targets.length : 0;
      if (batch === undefined) {
        const overhead = Math.max(
          0,
          ...targets.map((t) => envelopeOverhead(keys.prefix, t.channel, t.group, t.name)),
        );
        batch = { targets, records: [], bytes: 0, overhead };
      }
      const body = bodyLength(batch.bytes + waiting.bytes, batch.records.length + 1);
      const fits = body + batch.overhead <= MAX_VALUE_BYTES &&
        batch.records.length < MAX_BATCH_MESSAGES &&
        enqueues + grows <= MAX_COMMIT_ENQUEUES &&
        bytes + (waiting.bytes + 1) * targets.length + grows * batch.overhead <= MAX_COMMIT_BYTES;
      if (!fits) {
        if (count > 0) break;
        // Alone and still too large: refuse this publish, keep the others.
        this.#queue.shift();
        waiting.reject(
          new InvalidArgumentError(
            "message",
            `with its ${targets.length} subscription(s) it exceeds what one KV commit holds (${
              Math.min(MAX_VALUE_BYTES, MAX_COMMIT_BYTES)
            } bytes per message and subscription, ${MAX_COMMIT_BYTES} in all)`,
          ),
        );
        return { count: 0, batches };
      }
      if (!batches.has(waiting.channel)) batches.set(waiting.channel, batch);
      batch.records.push(waiting.record);
      batch.bytes += waiting.bytes;
      bytes += (waiting.bytes + 1) * targets.length + grows * batch.overhead;
      enqueues += grows;
      count++;
    }
    return { count, batches };
  }

  /** Adds one queue message per subscription, due after `delay` ms. */
  #enqueue(
    atomic: KvStoreAtomic,
    batches: ReadonlyMap<string, ChannelBatch>,
    delay: number,
  ): void {
    const host = this.#host;
    for (const batch of batches.values()) {
      if (batch.targets.length === 0) continue;
      const body = encodeBody(batch.records);
      for (const target of batch.targets) {
        const envelope: Envelope = {
          eventbus: ENVELOPE_MARK,
          prefix: host.keys.prefix,
          channel: target.channel,
          group: target.group,
          subscription: target.name,
          batch: sortableId(),
          attempt: 1,
          deliveries: host.maxDeliveries,
          body,
        };
        atomic.enqueue(envelope, enqueueOptions(host.keys, envelope, host.backoff, delay));
      }
    }
  }
}
