/**
 * The publishing side: publishes are gathered while a commit is in flight
 * and committed together. One commit holds, for each subscription of each
 * channel published to, queue messages with that channel's messages in
 * publish order (the fan-out; up to 256 messages each, due one millisecond
 * apart), plus a check that the registry is still the one the fan-out was
 * computed from. A batch (`publishAll`) goes into one commit whole when one
 * holds it. A publish resolves once its commit
 * succeeded, so every subscription registered before it gets it. Commits go
 * through the ordered writer: batches of one publisher reach a subscription
 * in publish order.
 *
 * @module
 */

import type { ResolvedBackoff } from "../retry.ts";
import { entryError } from "../batch_entries.ts";
import { BrokerError } from "../errors.ts";
import { commit } from "./commit.ts";
import {
  type ChannelBatch,
  CommitPlan,
  type PlannedPublish,
  tooLargeForCommit,
} from "./commit_plan.ts";
import { enqueueOptions } from "./delivery_budget.ts";
import { encodeBody, type Envelope, ENVELOPE_MARK } from "./envelope.ts";
import { sortableId } from "./ids.ts";
import type { KvKeys } from "./keys.ts";
import type { KvStore, KvStoreAtomic } from "./kv_store.ts";
import type { OrderedWriter } from "./ordered_writer.ts";
import type { Registry, RegistrySnapshot } from "./registry.ts";

/** The publishes of one `publishAll`: committed together when one commit holds them. */
interface PublishBatch {
  readonly size: number;
  /** Too large for one commit: its publishes go in several, in order. */
  split: boolean;
}

/** One publish waiting for its commit. */
interface Waiting extends PlannedPublish {
  readonly resolve: (targets: number) => void;
  readonly reject: (error: unknown) => void;
  /** The batch it is part of, if any, and its index there. */
  readonly batch?: PublishBatch;
  readonly index?: number;
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
      this.#start();
    });
  }

  /**
   * Queues encoded messages as one batch, in order: they go into one commit
   * when one holds them all (nothing else of the queue is split across
   * theirs), else, once each was found to fit a commit on its own, into
   * consecutive commits; a failed commit then rejects the rest of the batch
   * too. One that fits no commit with its subscriptions refuses the whole
   * batch before any of it is committed. Resolves with the number of
   * subscriptions each was enqueued for.
   */
  publishAll(publishes: readonly PlannedPublish[]): Promise<number[]> {
    if (publishes.length === 0) return Promise.resolve([]);
    const batch: PublishBatch = { size: publishes.length, split: false };
    const accepted = publishes.map(({ channel, record, bytes }, index) =>
      new Promise<number>((resolve, reject) => {
        this.#queue.push({ channel, record, bytes, resolve, reject, batch, index });
      })
    );
    this.#start();
    return Promise.all(accepted);
  }

  /** Resolves once every queued publish is committed or failed. */
  async whenIdle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  #start(): void {
    this.#running ??= this.#run().finally(() => (this.#running = undefined));
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
      const plan = this.#plan(snapshot);
      if (plan.count === 0) continue; // the head was refused as too large
      const versionstamp = snapshot.versionstamp;
      let ok: boolean;
      try {
        const result = await host.writer.write(plan.spread, (delay) =>
          commit(() => {
            const atomic = host.kv().atomic().check({ key: host.keys.registry, versionstamp });
            this.#enqueue(atomic, plan.batches, delay);
            return atomic;
          }));
        ok = result.ok;
      } catch (error) {
        const cause = error instanceof Error ? error : new Error(String(error));
        const failure = new BrokerError(`publish failed: ${cause.message}`, { cause });
        const taken = this.#queue.splice(0, plan.count);
        for (const waiting of taken) waiting.reject(failure);
        this.#dropRestOf(taken, failure);
        return;
      }
      if (ok) {
        for (const waiting of this.#queue.splice(0, plan.count)) {
          waiting.resolve(plan.batches.get(waiting.channel)?.targets.length ?? 0);
        }
        return;
      }
      // A subscription was registered since the snapshot: fan out again.
      snapshot = await host.registry.reload();
    }
  }

  /**
   * Plans the next commit from the head of the queue: as many publishes as
   * one commit holds, a batch whole or not at all unless it is too large for
   * any commit. Refuses the head when it cannot be committed at all (a
   * publish, or a whole batch holding such a publish): the plan is empty.
   */
  #plan(snapshot: RegistrySnapshot): CommitPlan {
    const plan = new CommitPlan(this.#host.keys);
    const queue = this.#queue;
    const targetsOf = (waiting: Waiting) => snapshot.byChannel.get(waiting.channel) ?? [];
    let at = 0;
    while (at < queue.length) {
      const waiting = queue[at];
      const batch = waiting.batch;
      if (batch !== undefined && !batch.split && waiting.index === 0) {
        const members = queue.slice(at, at + batch.size);
        const mark = plan.mark();
        if (members.every((member) => plan.add(member, targetsOf(member)))) {
          at += members.length;
          continue;
        }
        plan.undo(mark);
        if (plan.count > 0) break;
        // Too large for one commit: each must fit one, then they go in parts.
        const refused = members.findIndex((member) =>
          !new CommitPlan(this.#host.keys).add(member, targetsOf(member))
        );
        if (refused >= 0) {
          const error = entryError(tooLargeForCommit(targetsOf(members[refused])), refused);
          for (const member of queue.splice(at, members.length)) member.reject(error);
          return plan;
        }
        batch.split = true;
      }
      if (!plan.add(waiting, targetsOf(waiting))) {
        if (plan.count > 0) break;
        // Alone and still too large: refuse this publish, keep the others. A
        // batch being committed in parts (its subscriptions grew since it was
        // checked) stops here rather than go on with a hole.
        queue.shift();
        const error = tooLargeForCommit(targetsOf(waiting));
        const named = waiting.batch === undefined ? error : entryError(error, waiting.index!);
        waiting.reject(named);
        this.#dropRestOf([waiting], named);
        return plan;
      }
      at++;
    }
    return plan;
  }

  /** Rejects what is still queued of the batches a failed commit held part of. */
  #dropRestOf(failed: readonly Waiting[], error: unknown): void {
    const batches = new Set(failed.flatMap((waiting) => waiting.batch ?? []));
    if (batches.size === 0) return;
    const kept: Waiting[] = [];
    for (const waiting of this.#queue) {
      if (waiting.batch !== undefined && batches.has(waiting.batch)) waiting.reject(error);
      else kept.push(waiting);
    }
    this.#queue = kept;
  }

  /** Adds one queue message per subscription and chunk, due after `delay` ms (plus the chunk's place). */
  #enqueue(
    atomic: KvStoreAtomic,
    batches: ReadonlyMap<string, ChannelBatch>,
    delay: number,
  ): void {
    const host = this.#host;
    for (const batch of batches.values()) {
      batch.chunks.forEach((chunk, place) => {
        const body = encodeBody(chunk.records);
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
          atomic.enqueue(
            envelope,
            enqueueOptions(host.keys, envelope, host.backoff, delay + place),
          );
        }
      });
    }
  }
}
