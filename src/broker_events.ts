/**
 * The events brokers and the bus dispatch as `EventTarget`s, so web-standard
 * code can observe them with `addEventListener` next to the `logger` and
 * `onError` options: `error` (a handler failed), `drop` (a message was
 * dropped) and `statechange` (a lifecycle transition).
 *
 * A listener that throws is treated by the runtime like any event listener
 * (reported as an uncaught exception); keep listeners simple.
 *
 * @module
 */

import type { BrokerState, HandlerFailure } from "./broker.ts";

/**
 * Dispatched as `"error"` when a handler call failed (after it was logged and
 * passed to `onError`).
 *
 * @example
 * ```ts
 * import { type HandlerErrorEvent, MemoryBroker } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker();
 * broker.addEventListener("error", (event) => {
 *   const { failure } = event as HandlerErrorEvent;
 *   console.log(failure.subscription, failure.messageId, failure.error);
 * });
 * ```
 */
export class HandlerErrorEvent extends Event {
  /** What failed, where, and the error. */
  readonly failure: HandlerFailure;

  /** Creates the event. */
  constructor(failure: HandlerFailure) {
    super("error");
    this.failure = failure;
  }
}

/**
 * Dispatched as `"drop"` when accepted messages are given up on: still queued
 * when a stop timed out or a subscription closed, refused by `RejectMessage`,
 * out of deliveries on a broker without dead letters, or undecodable.
 *
 * @example
 * ```ts
 * import { type DropEvent, MemoryBroker } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker();
 * broker.addEventListener("drop", (event) => {
 *   const drop = event as DropEvent;
 *   console.log(`${drop.count} dropped on ${drop.channel}: ${drop.reason}`);
 * });
 * ```
 */
export class DropEvent extends Event {
  /** Channel of the dropped messages. */
  readonly channel: string;
  /** Subscription they were meant for, when known. */
  readonly subscription: string | undefined;
  /** How many messages. */
  readonly count: number;
  /** Why they were dropped. */
  readonly reason: string;

  /** Creates the event. */
  constructor(channel: string, subscription: string | undefined, count: number, reason: string) {
    super("drop");
    this.channel = channel;
    this.subscription = subscription;
    this.count = count;
    this.reason = reason;
  }
}

/**
 * Dispatched as `"statechange"` on every lifecycle transition.
 *
 * @example
 * ```ts
 * import { MemoryBroker, type StateChangeEvent } from "@opensecflow/eventbus";
 * const broker = new MemoryBroker();
 * broker.addEventListener("statechange", (event) => {
 *   console.log((event as StateChangeEvent).state);
 * });
 * await broker.start(); // logs "starting", then "started"
 * await broker.stop();
 * ```
 */
export class StateChangeEvent extends Event {
  /** The new state. */
  readonly state: BrokerState;
  /** The state before. */
  readonly previous: BrokerState;

  /** Creates the event. */
  constructor(state: BrokerState, previous: BrokerState) {
    super("statechange");
    this.state = state;
    this.previous = previous;
  }
}
