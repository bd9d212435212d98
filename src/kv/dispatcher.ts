/**
 * The one queue listener of a database handle. KV hands every message of a
 * database to whichever listener it picks, so all the brokers sharing a
 * handle share one `listenQueue` and the dispatcher routes each batch to the
 * broker of its key prefix and group. A batch no broker here runs the
 * subscription of is parked (it waits in KV for an instance that runs it); a
 * value no `KvBroker` wrote is dead-lettered with the reason. The listener
 * callback resolves only once the batch is settled, so a process that dies
 * mid-handler leaves it to KV to deliver again.
 *
 * @module
 */

import { deadLetterForeign } from "./dead_letters.ts";
import { type Envelope, readEnvelope } from "./envelope.ts";
import type { KvKeys } from "./keys.ts";
import type { KvStore } from "./kv_store.ts";
import { prefixIdentity } from "./options.ts";
import { park } from "./parking.ts";

/** A broker as the dispatcher sees it. */
export interface QueueConsumer {
  /** Its keys (and key prefix). */
  readonly keys: KvKeys;
  /** Its group. */
  readonly group: string;
  /**
   * Takes a batch of its prefix and group: resolves once every message is
   * settled; `undefined` when it does not run that subscription now.
   */
  receive(envelope: Envelope): Promise<void> | undefined;
  /** Where failures of the listener are reported. */
  report(message: string, error: unknown): void;
}

const dispatchers = new WeakMap<KvStore, Dispatcher>();

function route(prefix: readonly unknown[], group: string): string {
  return `${prefixIdentity(prefix)}\u0000${group}`;
}

/**
 * Routes the queue of one database handle.
 *
 * @example
 * ```ts
 * import { Dispatcher } from "./dispatcher.ts";
 * const kv = await Deno.openKv(":memory:");
 * const dispatcher = Dispatcher.of(kv);
 * console.assert(Dispatcher.of(kv) === dispatcher);
 * kv.close();
 * ```
 */
export class Dispatcher {
  readonly #kv: KvStore;
  readonly #consumers = new Map<string, Set<QueueConsumer>>();
  readonly #inFlight = new Set<Promise<void>>();
  #listening = false;
  /** The consumer that dead-letters foreign values: the last one attached. */
  #fallback: QueueConsumer | undefined;
  #idleWaiters: (() => void)[] = [];

  private constructor(kv: KvStore) {
    this.#kv = kv;
  }

  /** The dispatcher of a handle (one per handle). */
  static of(kv: KvStore): Dispatcher {
    let dispatcher = dispatchers.get(kv);
    if (dispatcher === undefined) {
      dispatcher = new Dispatcher(kv);
      dispatchers.set(kv, dispatcher);
    }
    return dispatcher;
  }

  /** Batches being handled now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Routes the batches of `consumer`'s prefix and group to it; starts listening. */
  attach(consumer: QueueConsumer): void {
    const key = route(consumer.keys.prefix, consumer.group);
    let set = this.#consumers.get(key);
    if (set === undefined) this.#consumers.set(key, set = new Set());
    set.add(consumer);
    this.#fallback = consumer;
    if (this.#listening) return;
    this.#listening = true;
    this.#kv.listenQueue((value) => this.#dispatch(value)).catch((error) => {
      this.#listening = false;
      this.#fallback?.report("the KV queue listener stopped", error);
    });
  }

  /** Stops routing to `consumer`: its batches arriving from now on are parked. */
  detach(consumer: QueueConsumer): void {
    const key = route(consumer.keys.prefix, consumer.group);
    const set = this.#consumers.get(key);
    set?.delete(consumer);
    if (set?.size === 0) this.#consumers.delete(key);
  }

  /** Resolves once no batch is being handled. */
  whenIdle(): Promise<void> {
    if (this.#inFlight.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  #dispatch(value: unknown): Promise<void> {
    const settled = this.#handle(value);
    this.#inFlight.add(settled);
    return settled.finally(() => {
      this.#inFlight.delete(settled);
      if (this.#inFlight.size > 0) return;
      for (const resolve of this.#idleWaiters.splice(0)) resolve();
    });
  }

  async #handle(value: unknown): Promise<void> {
    const read = readEnvelope(value);
    if (read.kind === "foreign") {
      const keys = this.#fallback?.keys;
      if (keys !== undefined) await deadLetterForeign(this.#kv, keys, value, read.reason);
      return;
    }
    const envelope = read.envelope;
    const consumers = this.#consumers.get(route(envelope.prefix, envelope.group));
    if (consumers !== undefined) {
      for (const consumer of consumers) {
        const settled = consumer.receive(envelope);
        if (settled !== undefined) return await settled;
      }
    }
    await park(this.#kv, [envelope]);
  }
}
