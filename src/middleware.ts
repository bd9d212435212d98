/**
 * Bus middleware: code that runs around every publish and around every
 * handler call, for logging, tracing and metrics. The first middleware added
 * is the outermost, as in Koa or Hono.
 *
 * @module
 */

import type { MessageContext } from "./broker.ts";
import { EventBusError } from "./errors.ts";
import type { CloudEvent, EventScope } from "./event.ts";

/**
 * A publish going through the bus.
 */
export interface PublishCall {
  /** The event being published. */
  readonly event: CloudEvent;
  /** Scope it is routed by. */
  readonly scope: EventScope;
  /** Broker channel it goes to. */
  readonly channel: string;
}

/**
 * A handler call going through the bus.
 */
export interface HandleCall {
  /** The event, already converted to the handler's type. */
  readonly event: CloudEvent;
  /** Scope of the broker that delivered it. */
  readonly scope: EventScope;
  /** Broker channel it arrived on. */
  readonly channel: string;
  /** Name of the subscription running the handler. */
  readonly subscription: string;
  /** The broker's delivery context. */
  readonly context: MessageContext;
}

/**
 * Middleware around publishes and handler calls. Either hook is optional.
 * A `publish` hook must call `next()` once (or throw to stop). A `handle`
 * hook may also return without calling `next()`: the handler is skipped and
 * the message acknowledged, which is what a de-duplication or feature-flag
 * middleware needs; it may throw `AckMessage`, `NackMessage` or
 * `RejectMessage` like a handler. Calling `next()` twice is an error.
 *
 * @example
 * ```ts
 * import { EventBus, type Middleware } from "@opensecflow/eventbus";
 * const timing: Middleware = {
 *   async handle(call, next) {
 *     const started = performance.now();
 *     try {
 *       return await next();
 *     } finally {
 *       console.log(call.subscription, call.event.type, performance.now() - started, "ms");
 *     }
 *   },
 * };
 * const bus = new EventBus().use(timing);
 * ```
 */
export interface Middleware {
  /** Runs around `bus.publish`. */
  publish?(call: PublishCall, next: () => Promise<void>): Promise<void>;
  /** Runs around each handler call; resolves with the handler's result. */
  handle?(call: HandleCall, next: () => Promise<unknown>): Promise<unknown>;
}

type Hook<C, R> = (call: C, next: () => Promise<R>) => Promise<R>;

/**
 * Runs `hooks` as an onion around `last`, the first hook outermost. A hook
 * may call `next()` once. With `mayShortCircuit` (handler calls) a hook that
 * returns without calling it skips the rest and its result stands; without
 * (publishes, which must never be swallowed silently) that is an error.
 */
export async function runChain<C, R>(
  hooks: readonly Hook<C, R>[],
  call: C,
  last: () => Promise<R>,
  mayShortCircuit = false,
): Promise<R> {
  const step = async (index: number): Promise<R> => {
    if (index === hooks.length) return await last();
    let called = false;
    const result = await hooks[index](call, () => {
      if (called) {
        return Promise.reject(
          new EventBusError("MIDDLEWARE", `middleware #${index + 1} called next() twice`),
        );
      }
      called = true;
      return step(index + 1);
    });
    if (!called && !mayShortCircuit) {
      throw new EventBusError(
        "MIDDLEWARE",
        `middleware #${index + 1} returned without calling next(); throw to stop a call instead`,
      );
    }
    return result;
  };
  return await step(0);
}
