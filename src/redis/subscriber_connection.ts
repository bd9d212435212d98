/**
 * The one connection in subscriber mode a broker holds, shared by every
 * pub/sub channel it listens to (subscriptions in pub/sub mode and the reply
 * channel of requests).
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { Reporter } from "../reporter.ts";
import { closeConnection, connectWithin, createConnection } from "./connection.ts";
import type { ResolvedRedisOptions } from "./options.ts";

/** Receives the raw text of each message on a channel. */
export type Listener = (text: string) => void;

/** One ioredis connection in subscriber mode, shared by listeners of many channels. */
export class SubscriberConnection {
  readonly #options: ResolvedRedisOptions;
  readonly #reporter: Reporter;
  readonly #listeners = new Map<string, Listener[]>();
  /** SUBSCRIBE of each channel, confirmed once its promise resolves. */
  readonly #subscribed = new Map<string, Promise<void>>();
  #client: Redis | undefined;
  #connecting: Promise<Redis> | undefined;
  readonly #sharded: boolean;

  /** Creates the holder; the connection opens on the first listener. */
  constructor(options: ResolvedRedisOptions, reporter: Reporter) {
    this.#options = options;
    this.#reporter = reporter;
    this.#sharded = options.cluster !== undefined;
  }

  #connect(): Promise<Redis> {
    this.#connecting ??= (async () => {
      const client = createConnection(this.#options, this.#reporter, "subscriber", {
        enableAutoPipelining: false,
      });
      // A cluster uses sharded pub/sub: each channel lives on the master owning its slot.
      client.on(this.#sharded ? "smessage" : "message", (channel: string, text: string) => {
        const listeners = this.#listeners.get(channel);
        if (listeners === undefined) return;
        if (listeners.length === 1) return listeners[0](text);
        for (const listener of listeners) listener(text);
      });
      try {
        await connectWithin(client, this.#options, "subscriber");
      } catch (error) {
        this.#connecting = undefined;
        throw error;
      }
      this.#client = client;
      return client;
    })();
    return this.#connecting;
  }

  /**
   * Adds a listener (once: adding it again changes nothing); resolves once
   * Redis confirmed the subscription of its channel.
   */
  listen(key: string, listener: Listener): Promise<void> {
    const listeners = this.#listeners.get(key);
    if (listeners === undefined) this.#listeners.set(key, [listener]);
    // Copy on write: a message being dispatched keeps the list it started with.
    else if (!listeners.includes(listener)) this.#listeners.set(key, [...listeners, listener]);
    let subscribed = this.#subscribed.get(key);
    if (subscribed === undefined) {
      subscribed = this.#connect().then((client) =>
        this.#sharded ? client.ssubscribe(key) : client.subscribe(key)
      ).then(() => {});
      this.#subscribed.set(key, subscribed);
      // A failed SUBSCRIBE is tried again by the next listener.
      subscribed.catch(() => {
        if (this.#subscribed.get(key) === subscribed) this.#subscribed.delete(key);
      });
    }
    return subscribed;
  }

  /** Removes a listener; unsubscribes the channel when it was the last. */
  async unlisten(key: string, listener: Listener): Promise<void> {
    const listeners = this.#listeners.get(key);
    if (listeners === undefined || !listeners.includes(listener)) return;
    const rest = listeners.filter((other) => other !== listener);
    if (rest.length > 0) {
      this.#listeners.set(key, rest);
      return;
    }
    this.#listeners.delete(key);
    this.#subscribed.delete(key);
    const client = this.#client;
    if (client?.status !== "ready") return;
    await (this.#sharded ? client.sunsubscribe(key) : client.unsubscribe(key)).catch(() => {});
  }

  /** Closes the connection; every listener is dropped. */
  async close(): Promise<void> {
    this.#listeners.clear();
    this.#subscribed.clear();
    const connecting = this.#connecting;
    this.#connecting = undefined;
    this.#client = undefined;
    if (connecting === undefined) return;
    const client = await connecting.catch(() => undefined);
    if (client) await closeConnection(client);
  }
}
