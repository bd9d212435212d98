/**
 * Module-level registration, the counterpart of the Python library's
 * `@event_handler` and `init_eventbus`: handlers are declared where they are
 * written and attached to the one global bus when it is created.
 *
 * @module
 */

import type { MessageContext, SubscribeOptions, Subscription } from "./broker.ts";
import type { EventDefinition, EventOf } from "./define_event.ts";
import { EventBusStateError, excerpt, InvalidArgumentError } from "./errors.ts";
import { EventBus, type EventBusOptions, type EventHandler } from "./eventbus.ts";
import { checkConcurrency, checkHandler } from "./handler_support.ts";
import {
  instanceNamer,
  type LegacyMethod,
  legacyMethod,
  methodContext,
} from "./method_decorator.ts";
import { noteSubscribedAtConstruction, recordInstanceMethod } from "./instance_subscription.ts";

/**
 * A handler made by {@linkcode eventHandler}: call it with an event instance
 * (passed through) or with a CloudEvents JSON object (converted and validated
 * by the definition, as `Definition.parse` does).
 */
export type RegisteredHandler<E extends EventDefinition, R> = (
  input: EventOf<E> | Record<string, unknown>,
  context?: MessageContext,
) => R;

/**
 * What `eventHandler(Definition)` returns: apply it to a function, or use it
 * as a decorator on a class method, in either protocol TypeScript compiles.
 *
 * @example
 * ```ts
 * import { defineEvent, eventHandler, type EventHandlerDecorator } from "@opensecflow/eventbus";
 * import { z } from "zod";
 *
 * const Ping = defineEvent({ type: "ping", source: "/p", data: z.object({}) });
 * const onPing: EventHandlerDecorator<typeof Ping> = eventHandler(Ping);
 * onPing(function pong(e) {
 *   console.log("ping", e.id);
 * });
 * ```
 */
export interface EventHandlerDecorator<E extends EventDefinition> {
  /** Function form, or a TC39 decorator on a static or instance method. */
  <R>(
    handler: (event: EventOf<E>, context: MessageContext) => R,
    context?: ClassMethodDecoratorContext,
  ): RegisteredHandler<E, R>;
  /**
   * Legacy decorator (`experimentalDecorators`) on a static method (`target`
   * is the class) or an instance method (`target` is the prototype; each
   * instance is subscribed by `subscribeInstance`): returns the descriptor of
   * the converting method.
   */
  <M extends (event: EventOf<E>, context: MessageContext) => unknown>(
    target: object,
    key: string | symbol,
    descriptor: TypedPropertyDescriptor<M>,
  ): TypedPropertyDescriptor<M>;
}

interface Declaration {
  readonly definition: EventDefinition;
  readonly handler: EventHandler;
  readonly options: SubscribeOptions;
  /** Its subscription on the module-level bus, while that bus exists. */
  subscription?: Subscription;
}

const declarations: Declaration[] = [];
let globalBus: EventBus | undefined;

function declare(declaration: Declaration): void {
  // Attach first: a declaration the bus refuses is not kept to break the next init.
  declaration.subscription = globalBus?.subscribe(
    declaration.definition,
    declaration.handler,
    declaration.options,
  );
  declarations.push(declaration);
}

/** Takes a declaration back: off the pending list, and off the bus if attached. */
function withdraw(declaration: Declaration): Promise<void> {
  const index = declarations.indexOf(declaration);
  if (index >= 0) declarations.splice(index, 1);
  const subscription = declaration.subscription;
  declaration.subscription = undefined;
  return subscription?.unsubscribe() ?? Promise.resolve();
}

function checkDeclarationOptions(options: SubscribeOptions | undefined): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", "must be an object such as { name, concurrency }");
  }
  if (options.name !== undefined && (typeof options.name !== "string" || !options.name.trim())) {
    throw new InvalidArgumentError("name", "must be a non-empty string");
  }
  checkConcurrency(options.concurrency);
}

function directContext(event: { id: string }, name: string): MessageContext {
  return {
    channel: "",
    subscription: name,
    messageId: event.id,
    headers: {},
    correlationId: undefined,
    replyTo: undefined,
    attempt: 1,
    signal: new AbortController().signal,
  };
}

function converting<E extends EventDefinition, R>(
  definition: E,
  name: string,
  handler: (event: EventOf<E>, context: MessageContext) => R,
): RegisteredHandler<E, R> {
  const wrapped = function (
    this: unknown,
    input: EventOf<E> | Record<string, unknown>,
    context?: MessageContext,
  ): R {
    let event: EventOf<E>;
    if (input instanceof definition) event = input as EventOf<E>;
    else if (input !== null && typeof input === "object" && !Array.isArray(input)) {
      event = definition.parse(input) as EventOf<E>;
    } else {
      throw new InvalidArgumentError(
        "event",
        `handler "${name}" takes a ${definition.name} or a CloudEvents JSON object, got ${
          excerpt(input)
        }`,
      );
    }
    return handler.call(this, event, context ?? directContext(event, name));
  };
  Object.defineProperty(wrapped, "name", { value: name });
  return wrapped;
}

type TypedHandler<E extends EventDefinition, R = unknown> = (
  event: EventOf<E>,
  context: MessageContext,
) => R;

/** A TC39 decorator on a method: attached once for the class, or once per instance. */
function declareMethod<E extends EventDefinition, R>(
  definition: E,
  options: SubscribeOptions | undefined,
  handler: TypedHandler<E, R>,
  context: ClassMethodDecoratorContext,
  nameOf: (base: string) => string,
): RegisteredHandler<E, R> {
  const method = String(context.name);
  const isStatic = context.static;
  context.addInitializer(function (this: unknown) {
    const owner = isStatic ? (this as { name: string }).name : (this as object).constructor.name;
    const base = options?.name ?? `${owner}.${method}`;
    // Each instance is a subscription of its own, with a stable distinct name.
    const name = isStatic ? base : nameOf(base);
    declare({
      definition,
      handler: converting(definition, name, handler).bind(this) as EventHandler,
      options: { ...options, name },
    });
    if (!isStatic) noteSubscribedAtConstruction(this as object);
  });
  return converting(definition, options?.name ?? method, handler);
}

/**
 * A legacy decorator on a method. A static one is attached now, bound to the
 * class; an instance one is recorded on the class, and each instance given
 * to `subscribeInstance` is declared bound to itself, under the TC39 names.
 */
function declareLegacy<E extends EventDefinition>(
  definition: E,
  options: SubscribeOptions | undefined,
  legacy: LegacyMethod,
  nameOf: (base: string) => string,
): PropertyDescriptor {
  const handler = legacy.method as TypedHandler<E>;
  const declareBound = (self: unknown, name: string): Declaration => {
    const declaration: Declaration = {
      definition,
      handler: converting(definition, name, handler).bind(self) as EventHandler,
      options: { ...options, name },
    };
    declare(declaration);
    return declaration;
  };
  if (legacy.isStatic) {
    declareBound(legacy.owner, options?.name ?? `${legacy.owner.name}.${legacy.key}`);
  } else {
    recordInstanceMethod(legacy.target, {
      nameFor: (instance) => nameOf(options?.name ?? `${instance.constructor.name}.${legacy.key}`),
      subscribe: (instance, name) => {
        const declaration = declareBound(instance, name);
        return () => withdraw(declaration);
      },
    });
  }
  // Called directly, the method converts its input as a TC39-decorated one does.
  return {
    ...legacy.descriptor,
    value: converting(definition, options?.name ?? legacy.key, handler),
  };
}

/** The function form: the returned function is the declared handler. */
function declareFunction<E extends EventDefinition, R>(
  definition: E,
  options: SubscribeOptions | undefined,
  handler: TypedHandler<E, R>,
): RegisteredHandler<E, R> {
  const name = options?.name ?? handler.name;
  const registered = converting(definition, name || "anonymous", handler);
  // An anonymous function keeps no name: the broker names it, or refuses it
  // when names must be durable (RedisBroker), with a message saying how to fix it.
  if (!name) Object.defineProperty(registered, "name", { value: "" });
  declare({ definition, handler: registered as EventHandler, options: { ...options } });
  return registered;
}

/**
 * Declares a handler of a typed event on the module-level bus. Before
 * {@linkcode initEventBus} it waits in a pending list; `initEventBus` attaches
 * every declared handler exactly once. Works as a function wrapper and as a
 * decorator, in both protocols TypeScript compiles:
 *
 * - TC39 decorators (the default): on static and instance methods. An
 *   instance method is attached for each instance created, under the names
 *   `Class.method`, `Class.method#2`, ... in construction order, and stays
 *   attached (and the instance alive) for the life of the process: prefer
 *   static methods or one instance per class.
 * - Legacy decorators (`experimentalDecorators: true`): a static method is
 *   attached as `Class.method`. An instance method is recorded on its class,
 *   since that protocol gives no hook per instance: `subscribeInstance(obj)`
 *   attaches the methods of one instance, under the same names as TC39
 *   instances, and returns the handle that detaches them.
 *
 * @example
 * ```ts
 * import { defineEvent, eventHandler, EventScope, initEventBus, resetEventBus } from "@opensecflow/eventbus";
 * import { z } from "zod";
 *
 * const OrderCreated = defineEvent({
 *   type: "order.created",
 *   scope: EventScope.PROCESS,
 *   source: "/orders",
 *   data: z.object({ orderId: z.string() }),
 * });
 *
 * const onOrder = eventHandler(OrderCreated)(function onOrder(e) {
 *   console.log("order", e.data.orderId);
 * });
 *
 * class Billing {
 *   @eventHandler(OrderCreated)
 *   static charge(e: InstanceType<typeof OrderCreated>) {
 *     console.log("charge", e.data.orderId);
 *   }
 * }
 *
 * const bus = initEventBus();
 * await bus.start();
 * await bus.publish(new OrderCreated({ data: { orderId: "A1" } }));
 * onOrder({ specversion: "1.0", id: "1", source: "/x", type: "order.created", data: { orderId: "B2" } });
 * await resetEventBus();
 * ```
 */
export function eventHandler<E extends EventDefinition>(
  definition: E,
  options?: SubscribeOptions,
): EventHandlerDecorator<E> {
  if (typeof definition !== "function" || typeof definition.parse !== "function") {
    throw new InvalidArgumentError(
      "definition",
      `eventHandler() takes an event class made by defineEvent(), got ${excerpt(definition)}`,
    );
  }
  checkDeclarationOptions(options);
  const nameOf = instanceNamer();
  const decorate = (...args: unknown[]): unknown => {
    const legacy = legacyMethod(args, "eventHandler()");
    if (legacy !== undefined) return declareLegacy(definition, options, legacy, nameOf);
    const [handler, context] = args;
    checkHandler(handler);
    const method = methodContext(context, "eventHandler()");
    return method === undefined
      ? declareFunction(definition, options, handler as TypedHandler<E>)
      : declareMethod(definition, options, handler as TypedHandler<E>, method, nameOf);
  };
  return decorate as EventHandlerDecorator<E>;
}

/**
 * Creates the module-level bus and attaches every handler declared with
 * {@linkcode eventHandler}, exactly once. A second call throws
 * {@linkcode EventBusStateError}; call {@linkcode resetEventBus} first to
 * build a new one. The bus is returned stopped: call `start()`.
 *
 * @example
 * ```ts
 * import { initEventBus, resetEventBus } from "@opensecflow/eventbus";
 * const bus = initEventBus();
 * await bus.start();
 * await resetEventBus();
 * ```
 */
export function initEventBus(options?: EventBusOptions): EventBus {
  if (globalBus !== undefined) {
    throw new EventBusStateError(
      "ALREADY_INITIALIZED",
      "initEventBus() was already called; use getEventBus(), or resetEventBus() before a new one",
    );
  }
  const bus = new EventBus(options);
  // Nothing becomes global unless every declared handler attached.
  const subscriptions = declarations.map(({ definition, handler, options }) =>
    bus.subscribe(definition, handler, options)
  );
  declarations.forEach((declaration, i) => declaration.subscription = subscriptions[i]);
  globalBus = bus;
  return bus;
}

/**
 * The module-level bus.
 *
 * @example
 * ```ts
 * import { getEventBus, initEventBus, resetEventBus } from "@opensecflow/eventbus";
 * initEventBus();
 * console.log(getEventBus().state); // "stopped"
 * await resetEventBus();
 * ```
 */
export function getEventBus(): EventBus {
  if (globalBus === undefined) {
    throw new EventBusStateError(
      "NOT_INITIALIZED",
      "the event bus is not initialized: call initEventBus() at start-up first",
    );
  }
  return globalBus;
}

/**
 * Stops and forgets the module-level bus. Declared handlers stay declared and
 * are attached again by the next {@linkcode initEventBus}.
 *
 * @example
 * ```ts
 * import { initEventBus, resetEventBus } from "@opensecflow/eventbus";
 * initEventBus();
 * await resetEventBus();
 * initEventBus(); // allowed again
 * await resetEventBus();
 * ```
 */
export async function resetEventBus(): Promise<void> {
  const bus = globalBus;
  globalBus = undefined;
  for (const declaration of declarations) declaration.subscription = undefined;
  await bus?.stop();
}
