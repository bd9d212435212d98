/**
 * Pieces every broker shares: naming subscriptions, checking arguments, and
 * the subscriber and publisher decorators.
 *
 * @module
 */

import type {
  Broker,
  Handler,
  PublisherDecorator,
  PublishOptions,
  RequestOptions,
  StopOptions,
  SubscribeOptions,
  SubscriberDecorator,
} from "./broker.ts";
import { InvalidArgumentError } from "./errors.ts";
import { CloudEvent } from "./event.ts";
import { checkSignal } from "./subscription.ts";
import { instanceNamer, legacyMethod, methodContext } from "./method_decorator.ts";
import { noteSubscribedAtConstruction, recordInstanceMethod } from "./instance_subscription.ts";

/**
 * Checks a channel name: a non-empty string without whitespace or control
 * characters.
 */
export function checkChannel(channel: unknown, argument = "channel"): string {
  if (typeof channel !== "string" || channel.length === 0 || /[\s\p{Cc}]/u.test(channel)) {
    throw new InvalidArgumentError(
      argument,
      `must be a non-empty string without whitespace, got ${
        typeof channel === "string" ? JSON.stringify(channel.slice(0, 60)) : typeof channel
      }`,
    );
  }
  return channel;
}

/** Checks a handler is a function. */
export function checkHandler(handler: unknown): asserts handler is Handler {
  if (typeof handler !== "function") {
    throw new InvalidArgumentError("handler", `must be a function, got ${typeof handler}`);
  }
}

/**
 * The subscription name: `options.name`, else the handler's function name, else
 * `undefined` (an anonymous handler).
 */
export function subscriptionName(handler: Handler, options?: SubscribeOptions): string | undefined {
  if (options?.name !== undefined) {
    if (typeof options.name !== "string" || options.name.trim() === "") {
      throw new InvalidArgumentError("name", "must be a non-empty string");
    }
    return options.name;
  }
  return handler.name && handler.name !== "anonymous"
    ? handler.name.replace(/^bound /, "")
    : undefined;
}

/**
 * Checks the arguments of `subscribe()`: channel, handler and options.
 * Returns the subscription name (`undefined` for an anonymous handler without
 * `name`, which each broker names or refuses) and the concurrency.
 */
export function checkSubscribeArgs(
  channel: unknown,
  handler: unknown,
  options: SubscribeOptions | undefined,
): { name: string | undefined; concurrency: number; signal: AbortSignal | undefined } {
  checkChannel(channel);
  checkHandler(handler);
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new InvalidArgumentError("options", "must be an object");
  }
  return {
    name: subscriptionName(handler, options),
    concurrency: checkConcurrency(options?.concurrency),
    signal: checkSignal(options?.signal),
  };
}

/** Checks the options of `stop()` and returns the timeout to use. */
export function checkStopOptions(options: StopOptions | undefined, fallback: number): number {
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new InvalidArgumentError("options", "must be an object");
  }
  return checkTimeout(options?.timeout, fallback);
}

/** The error for a second subscription of one name on one channel. */
export function duplicateNameError(channel: string, name: string): InvalidArgumentError {
  return new InvalidArgumentError(
    "name",
    `channel "${channel}" already has a subscription named "${name}": pass a different { name }`,
  );
}

/** Checks `concurrency`: a whole number from 1. */
export function checkConcurrency(value: unknown): number {
  if (value === undefined) return 1;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new InvalidArgumentError("concurrency", `must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

/** Checks a logger has the four console-compatible methods. */
export function checkLogger(logger: unknown, argument = "logger"): void {
  for (const level of ["debug", "info", "warn", "error"] as const) {
    if (typeof (logger as Record<string, unknown> | null)?.[level] !== "function") {
      throw new InvalidArgumentError(argument, `must have a ${level}() method (console works)`);
    }
  }
}

/** Longest timer delay; `setTimeout` turns anything longer into 1 ms. */
const MAX_TIMEOUT = 2_147_483_647;

/** Checks a timeout in milliseconds: a finite number >= 0. */
export function checkTimeout(value: unknown, fallback: number, argument = "timeout"): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_TIMEOUT) {
    throw new InvalidArgumentError(
      argument,
      `must be a number of milliseconds from 0 to ${MAX_TIMEOUT} (about 24.8 days), got ${
        String(value)
      }`,
    );
  }
  return value;
}

/** Checks publish options: string headers, string correlation id and reply channel. */
export function checkPublishOptions(options: PublishOptions | undefined): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object");
  }
  if (options.headers !== undefined) {
    if (options.headers === null || typeof options.headers !== "object") {
      throw new InvalidArgumentError("headers", "must be an object of string values");
    }
    for (const [key, value] of Object.entries(options.headers)) {
      if (typeof value !== "string") {
        throw new InvalidArgumentError(`headers.${key}`, `must be a string, got ${typeof value}`);
      }
    }
  }
  if (options.correlationId !== undefined && typeof options.correlationId !== "string") {
    throw new InvalidArgumentError("correlationId", "must be a string");
  }
  if (options.replyTo !== undefined) checkChannel(options.replyTo, "replyTo");
}

/**
 * Checks the options of `request()`: channel, timeout (default `fallback`),
 * headers, correlation id and signal (an aborted one throws its reason).
 * Returns the timeout to use.
 */
export function checkRequestOptions(
  channel: unknown,
  options: RequestOptions | undefined,
  fallback: number,
): number {
  checkChannel(channel);
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new InvalidArgumentError("options", "must be an object");
  }
  const timeout = checkTimeout(options?.timeout, fallback);
  checkPublishOptions({ headers: options?.headers, correlationId: options?.correlationId });
  if (options?.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError("signal", "must be an AbortSignal");
  }
  if (options?.signal?.aborted) throw options.signal.reason;
  return timeout;
}

/** The event id and type of a message that is a CloudEvent. */
export function describeMessage(message: unknown): { id?: string; type?: string } {
  return message instanceof CloudEvent ? { id: message.id, type: message.type } : {};
}

/**
 * Builds `broker.subscriber(channel, options)`: the function form returns the
 * handler unchanged. As a decorator it works in both protocols TypeScript
 * compiles: on a static method it subscribes the method bound to the class;
 * on an instance method it subscribes each instance's method, under the
 * names `Class.method`, `Class.method#2`, ... (`name`, `name#2`, ... when
 * `options.name` is given): with TC39 decorators as each instance is
 * constructed, with legacy ones when `subscribeInstance(instance)` is called
 * (that protocol gives no hook per instance).
 */
export function subscriberDecorator(
  broker: Broker,
  channel: string,
  options?: SubscribeOptions,
): SubscriberDecorator {
  checkChannel(channel);
  const nameOf = instanceNamer();
  const decorate = (...args: unknown[]): unknown => {
    const legacy = legacyMethod(args, "broker.subscriber()");
    if (legacy?.isStatic) {
      const name = options?.name ?? qualifiedName(legacy.owner, legacy.key);
      broker.subscribe(channel, legacy.method.bind(legacy.owner) as Handler, { ...options, name });
      return undefined;
    }
    if (legacy !== undefined) {
      recordInstanceMethod(legacy.target, {
        nameFor: (instance) =>
          nameOf(options?.name ?? qualifiedName(instance.constructor, legacy.key)),
        subscribe: (instance, name) => {
          const handler = legacy.method.bind(instance) as Handler;
          const subscription = broker.subscribe(channel, handler, { ...options, name });
          return () => subscription.unsubscribe();
        },
      });
      return undefined;
    }
    const [handler, context] = args;
    checkHandler(handler);
    const method = methodContext(context, "broker.subscriber()");
    if (method !== undefined) {
      const isStatic = method.static;
      method.addInitializer(function (this: unknown) {
        const owner = isStatic ? this : (this as object).constructor;
        const base = options?.name ?? qualifiedName(owner, String(method.name));
        const name = isStatic ? base : nameOf(base);
        broker.subscribe(channel, handler.bind(this), { ...options, name });
        if (!isStatic) noteSubscribedAtConstruction(this as object);
      });
      return handler;
    }
    broker.subscribe(channel, handler, options);
    return handler;
  };
  return decorate as SubscriberDecorator;
}

/** `Class.method`, or the method's name alone when the class has no name. */
function qualifiedName(owner: unknown, method: string): string {
  const className = typeof owner === "function" ? owner.name : "";
  return className ? `${className}.${method}` : method;
}

/**
 * Builds `broker.publisher(channel)`: wraps a function so that each call's
 * non-undefined result is published to `channel` before the call resolves.
 * The wrapped function works as a handler and when called directly.
 */
export function publisherDecorator(
  broker: Broker,
  channel: string,
  options?: PublishOptions,
): PublisherDecorator {
  checkChannel(channel);
  checkPublishOptions(options);
  return <A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => Promise<Awaited<R>> => {
    checkHandler(fn as unknown);
    const wrapped = async function (this: unknown, ...args: A): Promise<Awaited<R>> {
      const result = await fn.apply(this, args);
      if (result !== undefined) await broker.publish(result, channel, options);
      return result;
    };
    Object.defineProperty(wrapped, "name", { value: fn.name });
    return wrapped;
  };
}
