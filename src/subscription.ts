/**
 * The subscription a caller holds, on web standards: a handle that an
 * `AbortSignal` or `await using` closes, and the same subscription as a
 * `ReadableStream` of messages (`consume`).
 *
 * @module
 */

import type { ConsumeOptions, Handler, SubscribeOptions, Subscription } from "./broker.ts";
import { InvalidArgumentError } from "./errors.ts";
import { ReleaseMessage } from "./handler_runner.ts";

/**
 * Builds the handle of a subscription: `unsubscribe()` runs `close` once,
 * `await using` unsubscribes, and `signal` (when given) unsubscribes when it
 * aborts.
 *
 * @example
 * ```ts
 * import { subscriptionHandle } from "./subscription.ts";
 * const controller = new AbortController();
 * const sub = subscriptionHandle("jobs", "worker", async () => console.log("closed"), controller.signal);
 * controller.abort(); // logs "closed"
 * await sub.unsubscribe(); // already closed: nothing more happens
 * ```
 */
export function subscriptionHandle(
  channel: string,
  name: string,
  close: () => Promise<void>,
  signal?: AbortSignal,
): Subscription {
  let closing: Promise<void> | undefined;
  const unsubscribe = (): Promise<void> => {
    if (closing === undefined) {
      signal?.removeEventListener("abort", onAbort);
      closing = close();
    }
    return closing;
  };
  const onAbort = (): void => void unsubscribe();
  if (signal !== undefined) {
    if (signal.aborted) unsubscribe();
    else signal.addEventListener("abort", onAbort, { once: true });
  }
  return { channel, name, unsubscribe, [Symbol.asyncDispose]: unsubscribe };
}

/** Checks the `signal` option of `subscribe` and `consume`. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) {
    throw new InvalidArgumentError("signal", "must be an AbortSignal");
  }
  return signal;
}

/** Checks the options of `consume`: a durable `name` is required. */
export function checkConsumeOptions(options: ConsumeOptions | undefined): ConsumeOptions {
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object with a subscription { name }");
  }
  if (typeof options.name !== "string" || options.name.trim() === "") {
    throw new InvalidArgumentError(
      "name",
      "must be a non-empty string: a consumer stream needs a durable subscription name",
    );
  }
  checkSignal(options.signal);
  return options;
}

interface Handed<T> {
  readonly message: T;
  /** The call's `context.signal`: aborted once the broker gave up on the call. */
  readonly signal: AbortSignal;
  readonly ack: () => void;
  readonly release: (error: ReleaseMessage) => void;
}

/**
 * The stream face of a subscription. `subscribe` registers the handler the
 * stream feeds on; each handler call waits until its message was read and
 * the reader asked for the next one (its acknowledgement). Cancelling the
 * stream, leaving a `for await` loop or aborting `options.signal` closes the
 * subscription and gives back, unacknowledged, the message in hand and any
 * waiting. A message whose call the broker gave up on (a stop that timed
 * out) is never handed to the reader: the broker has already counted it as
 * dropped or will deliver it again.
 *
 * @example
 * ```ts
 * import { consumeStream } from "./subscription.ts";
 * import { MemoryBroker } from "./memory_broker.ts";
 * await using broker = new MemoryBroker();
 * const stream = consumeStream<string>(
 *   (handler, options) => broker.subscribe("jobs", handler, options),
 *   { name: "reader" },
 * );
 * await broker.start();
 * await broker.publish("a", "jobs");
 * for await (const job of stream) {
 *   console.log(job); // "a"
 *   break; // unsubscribes
 * }
 * ```
 */
export function consumeStream<T>(
  subscribe: (handler: Handler<T>, options: SubscribeOptions) => Subscription,
  options: ConsumeOptions,
): ReadableStream<T> {
  checkConsumeOptions(options);
  const waiting: Handed<T>[] = [];
  let inHand: Handed<T> | undefined;
  let wake: (() => void) | undefined;
  let closed = false;
  let subscription: Subscription | undefined;
  let controller!: ReadableStreamDefaultController<T>;

  const close = async (why: string): Promise<void> => {
    if (closed) return;
    closed = true;
    options.signal?.removeEventListener("abort", onAbort);
    const release = new ReleaseMessage(why);
    inHand?.release(release);
    inHand = undefined;
    for (const handed of waiting.splice(0)) handed.release(release);
    wake?.();
    await subscription?.unsubscribe();
  };
  const onAbort = (): void => {
    close("the consumer's signal aborted").then(() => {
      try {
        controller.close();
      } catch {
        // already closed or errored
      }
    });
  };

  const handler: Handler<T> = (message, context) =>
    new Promise<void>((ack, release) => {
      if (closed) return release(new ReleaseMessage("the consumer stream is closed"));
      waiting.push({ message, signal: context.signal, ack, release });
      wake?.();
    });
  /** The next waiting message whose call the broker still waits on. */
  const nextLive = (): Handed<T> | undefined => {
    let next = waiting.shift();
    while (next?.signal.aborted) next = waiting.shift();
    return next;
  };
  // The subscription's durable name is the consumer's, not the inner function's.
  Object.defineProperty(handler, "name", { value: options.name });

  return new ReadableStream<T>({
    start(streamController) {
      controller = streamController;
      subscription = subscribe(handler, {
        name: options.name,
        concurrency: options.concurrency,
      });
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener("abort", onAbort, { once: true });
    },
    async pull(streamController) {
      // Asking for the next message acknowledges the one in hand.
      inHand?.ack();
      inHand = undefined;
      let next = nextLive();
      while (next === undefined) {
        if (closed) return;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        next = nextLive();
      }
      inHand = next;
      streamController.enqueue(next.message);
    },
    cancel() {
      return close("the consumer stream was cancelled");
    },
  }, { highWaterMark: 0 });
}
