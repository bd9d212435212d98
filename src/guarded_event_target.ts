/**
 * An `EventTarget` whose listeners cannot take the process down. A listener
 * that throws (or returns a promise that rejects) would otherwise reach the
 * runtime's uncaught-error handling, which ends a Deno or Node process: a
 * `drop` listener with a bug would stop every consumer of the service.
 *
 * @module
 */

/**
 * Runs each listener inside a guard and hands what it throws to
 * {@linkcode GuardedEventTarget.reportListenerError}, which brokers and the
 * bus route to their logger. Removing a listener works as on any
 * `EventTarget`.
 *
 * @example
 * ```ts
 * import { GuardedEventTarget } from "@opensecflow/eventbus";
 * const target = new GuardedEventTarget();
 * target.addEventListener("ping", () => {
 *   throw new Error("a bug in a listener");
 * });
 * target.dispatchEvent(new Event("ping")); // logged with console.error; the process goes on
 * ```
 */
export class GuardedEventTarget extends EventTarget {
  readonly #guards = new WeakMap<EventListenerOrEventListenerObject, EventListener>();

  /**
   * Adds `listener`, guarded. The same listener added twice for one type is
   * one listener, as on any `EventTarget`.
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    if (listener === null || (typeof listener !== "function" && typeof listener !== "object")) {
      return super.addEventListener(type, listener, options);
    }
    let guard = this.#guards.get(listener);
    if (guard === undefined) {
      guard = this.#guard(listener);
      this.#guards.set(listener, guard);
    }
    super.addEventListener(type, guard, options);
  }

  /** Removes `listener` added with {@linkcode GuardedEventTarget.addEventListener}. */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    const guard = listener === null ? undefined : this.#guards.get(listener);
    super.removeEventListener(type, guard ?? listener, options);
  }

  /**
   * Where a listener's error goes; subclasses send it to their logger. Must
   * not throw.
   */
  protected reportListenerError(type: string, error: unknown): void {
    try {
      console.error(`a "${type}" event listener threw`, error);
    } catch {
      // Nowhere left to report to.
    }
  }

  #guard(listener: EventListenerOrEventListenerObject): EventListener {
    const guarded: EventListener = (event) => {
      try {
        // Loose types: with Node's typings loaded too, two unrelated `Event` types exist.
        const result: unknown = typeof listener === "function"
          ? (listener as (this: unknown, event: unknown) => unknown).call(this, event)
          : (listener as { handleEvent(event: unknown): unknown }).handleEvent(event);
        if (isThenable(result)) {
          result.then(undefined, (error) => this.reportListenerError(event.type, error));
        }
      } catch (error) {
        this.reportListenerError(event.type, error);
      }
    };
    return guarded;
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === "object" &&
    typeof (value as PromiseLike<unknown>).then === "function";
}
