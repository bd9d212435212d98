/**
 * The onion of middleware hooks a publish or a handler call runs through,
 * composed once when middleware is added and run per call.
 *
 * @module
 */

import { EventBusError } from "./errors.ts";
import { type MayPassThrough, PASSES_THROUGH } from "./middleware.ts";

/** A middleware hook: `publish` or `handle` of one middleware. */
export type Hook<C, R, A> = (call: C, next: (replacement?: A) => Promise<R>) => Promise<R>;

/** What runs inside the innermost hook: the broker publish, or the handler. */
export type Terminal<C, R, X> = (call: C, extra: X) => R | Promise<R>;

/**
 * One hook of the chain, and the middleware to ask whether it would only pass
 * the call through right now (then the hook is not called).
 */
export interface ChainLink<C, R, A> {
  /** The hook, bound to its middleware. */
  readonly hook: Hook<C, R, A>;
  /**
   * The middleware, when it has a {@linkcode PASSES_THROUGH} method. Called
   * as its method rather than through a bound copy: every instance of one
   * class then shares the call target, which the JIT can inline.
   */
  readonly asks: Required<MayPassThrough> | undefined;
}

/**
 * Hooks run as an onion around a terminal, the first hook outermost. A hook
 * may call `next()` once. With `mayShortCircuit` (handler calls) a hook that
 * returns without calling it skips the rest and its result stands; without
 * (publishes, which must never be swallowed silently) that is an error. A
 * hook that passes `next` a replacement gets it folded into the call by
 * `replace`, which also checks it; without `replace` a replacement is refused.
 *
 * The chain is immutable: adding or removing middleware builds a new one, so
 * a call running now keeps the hooks it started with.
 *
 * @example
 * ```ts
 * import { MiddlewareChain } from "./middleware_chain.ts";
 * const chain = new MiddlewareChain<string, string, never>([{
 *   hook: (_call, next) => next().then((result) => `[${result}]`),
 *   asks: undefined,
 * }], true);
 * console.assert(await chain.run("a", (call, suffix) => call + suffix, "!") === "[a!]");
 * ```
 */
export class MiddlewareChain<C, R, A> {
  readonly #links: readonly ChainLink<C, R, A>[];
  /**
   * The middleware of every link, when each can pass through: then a call
   * skips the chain altogether while all of them say so. Null otherwise.
   */
  readonly #askers: readonly Required<MayPassThrough>[] | null;
  /** The middleware of the one link, when the chain has one and it can pass through. */
  readonly #sole: Required<MayPassThrough> | undefined;
  /** Some link can pass through: each step asks before calling a hook. */
  readonly #mayPass: boolean;
  readonly #mayShortCircuit: boolean;
  readonly #replace: ((call: C, replacement: A) => C) | undefined;

  /** Composes `links`; see the class for `mayShortCircuit` and `replace`. */
  constructor(
    links: readonly ChainLink<C, R, A>[],
    mayShortCircuit: boolean,
    replace?: (call: C, replacement: A) => C,
  ) {
    this.#links = links;
    this.#askers = links.every((link) => link.asks !== undefined)
      ? links.map((link) => link.asks!)
      : null;
    this.#sole = links.length === 1 ? links[0].asks : undefined;
    this.#mayPass = links.some((link) => link.asks !== undefined);
    this.#mayShortCircuit = mayShortCircuit;
    this.#replace = replace;
  }

  /**
   * True when no hook would do anything for a call made now: none was
   * added, or each says it passes through. The caller then skips the chain
   * and builds no call object. Kept small (the usual cases, none or one
   * middleware, need no loop): it is inlined into every publish and delivery,
   * where it competes with the broker's code for the JIT's inlining budget.
   */
  passesThrough(): boolean {
    const sole = this.#sole;
    if (sole !== undefined) return sole[PASSES_THROUGH]();
    const askers = this.#askers;
    return askers !== null && (askers.length === 0 || allPassThrough(askers));
  }

  /**
   * Runs `call` through every hook, then `terminal(call, extra)`. `extra`
   * spares callers a closure per call for what the terminal needs beyond the
   * call (the publish options, the handler).
   */
  run<X>(call: C, terminal: Terminal<C, R, X>, extra: X): Promise<R> {
    return this.#step(0, call, terminal, extra);
  }

  // No async functions here: a pass-through hook costs one call and one
  // closure (its `next`), never a promise of its own or an extra microtask.
  #step<X>(from: number, current: C, terminal: Terminal<C, R, X>, extra: X): Promise<R> {
    const links = this.#links;
    let index = from;
    if (this.#mayPass) {
      while (index < links.length && links[index].asks?.[PASSES_THROUGH]() === true) index++;
    }
    if (index === links.length) {
      try {
        return settled(terminal(current, extra));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    let called = false;
    const next = (replacement?: A): Promise<R> => {
      if (called) {
        return Promise.reject(
          new EventBusError("MIDDLEWARE", `middleware #${index + 1} called next() twice`),
        );
      }
      called = true;
      if (replacement === undefined) return this.#step(index + 1, current, terminal, extra);
      return this.#replaced(index, current, replacement, terminal, extra);
    };
    let result: Promise<R>;
    try {
      result = settled(links[index].hook(current, next));
    } catch (error) {
      return Promise.reject(error);
    }
    // A handle hook may skip the rest; a publish hook must have called next()
    // by the time it settles. One that already did (a pass-through, or any
    // hook calling next() before its first await) needs no check, and no
    // extra promise for it.
    if (called || this.#mayShortCircuit) return result;
    return result.then((value) => {
      if (!called) {
        throw new EventBusError(
          "MIDDLEWARE",
          `middleware #${index + 1} returned without calling next(); throw to stop a call instead`,
        );
      }
      return value;
    });
  }

  #replaced<X>(
    index: number,
    current: C,
    replacement: A,
    terminal: Terminal<C, R, X>,
    extra: X,
  ): Promise<R> {
    const replace = this.#replace;
    if (replace === undefined) {
      return Promise.reject(
        new EventBusError(
          "MIDDLEWARE",
          `middleware #${index + 1} passed a value to next(); this hook takes none`,
        ),
      );
    }
    try {
      return this.#step(index + 1, replace(current, replacement), terminal, extra);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** `value` as a promise; a native promise is returned as is, without `Promise.resolve`'s lookups. */
function settled<R>(value: R | Promise<R>): Promise<R> {
  return value instanceof Promise ? value : Promise.resolve(value);
}

/** Whether each of several middleware says it passes the call through. */
function allPassThrough(askers: readonly Required<MayPassThrough>[]): boolean {
  for (let index = 0; index < askers.length; index++) {
    if (!askers[index][PASSES_THROUGH]()) return false;
  }
  return true;
}
