/**
 * Subscribing the instance methods that legacy decorators
 * (`experimentalDecorators: true`, as NestJS and TypeORM projects compile)
 * decorate. That protocol runs a method decorator once per class, with the
 * prototype, and gives no hook per instance; so `eventHandler(Def)` and
 * `broker.subscriber(channel)` record the method on its class, and one call
 * of {@linkcode subscribeInstance} per instance subscribes it, as
 * metadata-driven frameworks do once their container has built an object.
 *
 * @module
 */

import { excerpt, InvalidArgumentError } from "./errors.ts";
import { defaultLogger } from "./logger.ts";

/**
 * The subscriptions of one instance's decorated methods, made by
 * {@linkcode subscribeInstance}. `unsubscribe()` (or `await using`) ends them
 * all; after that the instance may be subscribed again, under the same names.
 *
 * @example
 * ```ts
 * import { MemoryBroker, type InstanceSubscription, subscribeInstance } from "@opensecflow/eventbus";
 *
 * const broker = new MemoryBroker();
 * class Mailer {
 *   send(to: string) {
 *     console.log("mail to", to);
 *   }
 * }
 * // What `@broker.subscriber("mail")` on `send` does under experimentalDecorators:
 * broker.subscriber("mail")(
 *   Mailer.prototype,
 *   "send",
 *   Object.getOwnPropertyDescriptor(Mailer.prototype, "send")!,
 * );
 * const subscription: InstanceSubscription = subscribeInstance(new Mailer());
 * console.log(subscription.names); // ["Mailer.send"]
 * await subscription.unsubscribe();
 * ```
 */
export interface InstanceSubscription extends AsyncDisposable {
  /** The subscription names, one per decorated method, e.g. `"Mailer.send#2"`. */
  readonly names: readonly string[];
  /** Ends every subscription of the instance. Idempotent; `await using` calls it too. */
  unsubscribe(): Promise<void>;
}

/** One legacy-decorated instance method, waiting for the instances of its class. */
export interface InstanceMethodRecord {
  /** The name the next instance subscribes under: `Class.method`, `Class.method#2`, ... */
  readonly nameFor: (instance: object) => string;
  /** Subscribes the method bound to `instance` under `name`; returns how to undo it. */
  readonly subscribe: (instance: object, name: string) => () => Promise<void>;
}

const recordsByPrototype = new WeakMap<object, InstanceMethodRecord[]>();
const namesByInstance = new WeakMap<object, Map<InstanceMethodRecord, string>>();
const subscribedInstances = new WeakSet<object>();
const constructedSubscribed = new WeakSet<object>();

/** Records a legacy-decorated instance method on the prototype that declares it. */
export function recordInstanceMethod(prototype: object, record: InstanceMethodRecord): void {
  const records = recordsByPrototype.get(prototype);
  if (records === undefined) recordsByPrototype.set(prototype, [record]);
  else records.push(record);
}

/**
 * Notes an instance whose methods TC39 decorators subscribed as it was
 * constructed, so that {@linkcode subscribeInstance} can say it needs no call.
 */
export function noteSubscribedAtConstruction(instance: object): void {
  constructedSubscribed.add(instance);
}

/** The records of every class in the instance's prototype chain, base classes first. */
function recordsOf(instance: object): InstanceMethodRecord[] {
  const chain: InstanceMethodRecord[][] = [];
  for (
    let prototype = Object.getPrototypeOf(instance);
    prototype !== null;
    prototype = Object.getPrototypeOf(prototype)
  ) {
    const records = recordsByPrototype.get(prototype);
    if (records !== undefined) chain.unshift(records);
  }
  return chain.flat();
}

/** What was passed, for messages: `Worker`, `the class Worker`, `the prototype of Worker`. */
function classOf(instance: object): string {
  if (typeof instance === "function") return `the class ${instance.name || "(anonymous)"}`;
  const constructor = (instance as { constructor?: unknown }).constructor;
  const name = typeof constructor === "function" && constructor.name;
  if (!name) return "the object";
  return constructor.prototype === instance ? `the prototype of ${name}` : name;
}

function nothingRecorded(instance: object): InvalidArgumentError {
  const name = classOf(instance);
  if (constructedSubscribed.has(instance)) {
    return new InvalidArgumentError(
      "instance",
      `${name} was subscribed when it was constructed (TC39 decorators): ` +
        "subscribeInstance() is only needed with legacy decorators (experimentalDecorators); " +
        "drop the call",
    );
  }
  return new InvalidArgumentError(
    "instance",
    `${name} has no instance method decorated with @eventHandler() or @broker.subscriber() ` +
      "under legacy decorators (experimentalDecorators): decorate one, and pass an instance " +
      "(not the class or its prototype)",
  );
}

function undoAll(undos: readonly (() => Promise<void>)[]): Promise<void> {
  return Promise.all(undos.map((undo) => undo())).then(() => undefined);
}

/**
 * Subscribes the instance methods of `instance` that `eventHandler(Def)` or
 * `broker.subscriber(channel)` decorated under legacy decorators
 * (`experimentalDecorators: true`), each bound to `instance`, including those
 * its base classes decorated (each as it was decorated: an override that is
 * not decorated itself does not replace it, as with TC39 decorators). Call
 * it once per instance, e.g. in the constructor or in a framework's init hook
 * (NestJS `onModuleInit`).
 *
 * Names follow the TC39 rule: `Class.method`, `Class.method#2`, ... in the
 * order instances are subscribed (`name`, `name#2`, ... with `{ name }`),
 * where `Class` is the instance's own class. `eventHandler` methods go to the
 * module-level bus (now if it exists, else at `initEventBus`), like every
 * declared handler. Subscribing is all or nothing: when one method is
 * refused (e.g. a duplicate name), the ones before it are undone.
 *
 * Throws `InvalidArgumentError` for an instance that is already subscribed
 * (unsubscribe it first), and for an object with no such method, including
 * an instance whose methods TC39 decorators already subscribed at
 * construction: under TC39 decorators no call is needed.
 *
 * @example
 * ```ts
 * import { MemoryBroker, subscribeInstance } from "@opensecflow/eventbus";
 *
 * await using broker = new MemoryBroker();
 * class Orders {
 *   handle(order: string) {
 *     console.log("order", order);
 *   }
 * }
 * // Compiled with experimentalDecorators, `@broker.subscriber("orders")` on
 * // `handle` makes this call:
 * broker.subscriber("orders")(
 *   Orders.prototype,
 *   "handle",
 *   Object.getOwnPropertyDescriptor(Orders.prototype, "handle")!,
 * );
 * await using orders = subscribeInstance(new Orders());
 * console.log(orders.names); // ["Orders.handle"]
 * await broker.start();
 * await broker.publish("A-1", "orders");
 * ```
 */
export function subscribeInstance(instance: object): InstanceSubscription {
  if (instance === null || (typeof instance !== "object" && typeof instance !== "function")) {
    throw new InvalidArgumentError(
      "instance",
      `must be an object whose class has decorated methods, got ${excerpt(instance)}`,
    );
  }
  const records = recordsOf(instance);
  if (records.length === 0) throw nothingRecorded(instance);
  if (subscribedInstances.has(instance)) {
    throw new InvalidArgumentError(
      "instance",
      `${classOf(instance)} is already subscribed: call unsubscribe() on what ` +
        "subscribeInstance() returned before subscribing it again",
    );
  }
  // An instance keeps its names, so subscribing it again reuses them.
  let names = namesByInstance.get(instance);
  if (names === undefined) namesByInstance.set(instance, names = new Map());
  const undos: (() => Promise<void>)[] = [];
  const subscribed: string[] = [];
  try {
    for (const record of records) {
      let name = names.get(record);
      if (name === undefined) names.set(record, name = record.nameFor(instance));
      undos.push(record.subscribe(instance, name));
      subscribed.push(name);
    }
  } catch (error) {
    undoAll(undos).catch((undoError) =>
      defaultLogger.error("undoing a subscription of a refused instance failed", undoError)
    );
    throw error;
  }
  subscribedInstances.add(instance);
  let closing: Promise<void> | undefined;
  const unsubscribe = (): Promise<void> => {
    if (closing === undefined) {
      subscribedInstances.delete(instance);
      closing = undoAll(undos);
    }
    return closing;
  };
  return { names: Object.freeze(subscribed), unsubscribe, [Symbol.asyncDispose]: unsubscribe };
}
