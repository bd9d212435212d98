/**
 * The event bus: one object that routes CloudEvents by scope, `process`
 * events to an in-process broker and `app` events to a distributed one, and
 * hands typed events to typed handlers.
 *
 * @module
 */

import type {
  BatchEntry,
  Broker,
  BrokerHealth,
  BrokerState,
  ConsumeOptions,
  HandlerFailure,
  MessageContext,
  PublishOptions,
  RequestOptions,
  StopOptions,
  SubscribeOptions,
  Subscription,
} from "./broker.ts";
import { checkNonEmptyString } from "./attributes.ts";
import { renameEntry } from "./batch_entries.ts";
import { publishBatchThrough } from "./batch_chain.ts";
import { DropEvent, HandlerErrorEvent } from "./broker_events.ts";
import { channelFor as typeChannel } from "./channel.ts";
import type { EventDefinition, EventOf } from "./define_event.ts";
import { excerpt, InvalidArgumentError, NotStartedError, ValidationError } from "./errors.ts";
import { CloudEvent, EventScope, type ScopedEvent } from "./event.ts";
import {
  checkHandler,
  checkLogger,
  checkPublishOptions,
  checkStopOptions,
  subscriptionName,
} from "./handler_support.ts";
import { GuardedEventTarget } from "./guarded_event_target.ts";
import { Lifecycle } from "./lifecycle.ts";
import { RejectMessage } from "./outcomes.ts";
import { Reporter } from "./reporter.ts";
import { checkSignal, consumeStream, subscriptionHandle } from "./subscription.ts";
import { defaultLogger, type Logger } from "./logger.ts";
import { MemoryBroker } from "./memory_broker.ts";
import {
  type HandleCall,
  type MayPassThrough,
  type Middleware,
  PASSES_THROUGH,
  type PublishCall,
} from "./middleware.ts";
import { type ChainLink, MiddlewareChain } from "./middleware_chain.ts";

/**
 * Options of {@linkcode EventBus}.
 *
 * @example
 * ```ts
 * import { EventBus, MemoryBroker, silentLogger } from "@opensecflow/eventbus";
 * const bus = new EventBus({ process: new MemoryBroker(), logger: silentLogger, channelPrefix: "shop." });
 * ```
 */
export interface EventBusOptions {
  /** Broker of PROCESS-scope events; default a new `MemoryBroker`. */
  process?: Broker;
  /** Broker of APP-scope events; default a new `MemoryBroker` (single-process). */
  app?: Broker;
  /** Logger of the bus and of the default brokers. */
  logger?: Logger;
  /** Prefix of broker channels: an event of type T goes to `${channelPrefix}${T}`; default `"events."`. */
  channelPrefix?: string;
  /** Failure hook handed to the default brokers. */
  onError?: (failure: HandlerFailure) => void;
}

/**
 * A bus handler: gets the event and the broker's delivery context. Its return
 * value is the reply when the event came through `request()`.
 */
export type EventHandler<E extends CloudEvent = CloudEvent> = (
  event: E,
  context: MessageContext,
) => unknown;

/**
 * One registered handler as {@linkcode EventBus.handlers} lists it.
 */
export interface HandlerInfo {
  /** Handler (subscription) name. */
  readonly name: string;
  /** Scope whose broker delivers to it. */
  readonly scope: EventScope;
}

/**
 * An event definition the bus knows, as {@linkcode EventBus.definitions} lists
 * it: what this service receives (a typed subscription) and sends (declared
 * with {@linkcode EventBus.declare}, or published as a typed event).
 *
 * @example
 * ```ts
 * import { defineEvent, EventBus } from "@opensecflow/eventbus";
 * import { z } from "zod";
 * const Ping = defineEvent({ type: "ping", source: "/p", data: z.object({}) });
 * const bus = new EventBus().declare(Ping);
 * const [info] = bus.definitions();
 * console.log(info.definition.type, info.sends, info.receives); // ping true false
 * ```
 */
export interface DefinitionInfo {
  /** The definition. */
  readonly definition: EventDefinition;
  /** A typed handler of this bus subscribes to it. */
  readonly receives: boolean;
  /** This bus publishes it: declared, or published as a typed event. */
  readonly sends: boolean;
}

/** A bus handler on one broker: what it takes to move it to another broker. */
interface Attachment {
  readonly scope: EventScope;
  readonly channel: string;
  readonly deliver: (message: unknown, context: MessageContext) => unknown;
  readonly options: SubscribeOptions | undefined;
  sub: Subscription;
}

interface Route {
  readonly channel: string;
  /** The definition of this type a typed subscription of this bus uses. */
  known: KnownDefinition | undefined;
  /** An event of this type was published: its definition is noted as sent. */
  sent: boolean;
}

interface KnownDefinition {
  readonly definition: EventDefinition;
  /** Live typed subscriptions. */
  receives: number;
  sends: boolean;
}

interface Registration {
  readonly type: string;
  readonly info: HandlerInfo;
}

type PublishLink = ChainLink<PublishCall, void, CloudEvent>;
type HandleLink = ChainLink<HandleCall, unknown, never>;
type PublishChain = MiddlewareChain<PublishCall, void, CloudEvent>;
type HandleChain = MiddlewareChain<HandleCall, unknown, never>;

/** The innermost step of a handler call through middleware: the handler itself. */
function callHandler(call: HandleCall, handler: EventHandler): unknown {
  return handler(call.event, call.context);
}

/**
 * The event bus. `new EventBus()` is a working single-process bus; give it a
 * distributed `app` broker (e.g. `RedisBroker`) to reach every instance.
 *
 * @example
 * ```ts
 * import { defineEvent, EventBus } from "@opensecflow/eventbus";
 * import { z } from "zod";
 *
 * const UserSignedUp = defineEvent({
 *   type: "user.signed_up",
 *   source: "/users",
 *   data: z.object({ email: z.string().email() }),
 * });
 *
 * await using bus = new EventBus();
 * bus.subscribe(UserSignedUp, function welcome(e) {
 *   console.log("welcome", e.data.email);
 * });
 * await bus.start();
 * await bus.publish(new UserSignedUp({ data: { email: "ada@example.com" } }));
 * ```
 */
export class EventBus extends GuardedEventTarget {
  #process: Broker;
  #app: Broker;
  readonly #attachments = new Set<Attachment>();
  /** Brokers whose events this bus already re-dispatches: a broker put back is not forwarded twice. */
  readonly #forwarded = new WeakSet<Broker>();
  readonly #middleware: Middleware[] = [];
  /** Prefix of broker channels. */
  readonly channelPrefix: string;
  /** Guarded logging: a logger that throws must not leave the brokers half started. */
  readonly #reporter: Reporter;
  readonly #lifecycle: Lifecycle = new Lifecycle(this);
  /** Per event type: its channel and the definition subscribed to it, if any. */
  readonly #routes = new Map<string, Route>();
  #registrations = new Set<Registration>();
  readonly #definitions = new Map<
    string,
    { definition: EventDefinition; receives: number; sends: boolean }
  >();
  #publishChain: PublishChain = new MiddlewareChain<PublishCall, void, CloudEvent>([], false);
  #handleChain: HandleChain = new MiddlewareChain<HandleCall, unknown, never>([], true);

  /** Creates a bus; both brokers default to `MemoryBroker`. */
  constructor(options: EventBusOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new InvalidArgumentError("options", "must be an object");
    }
    const prefix = options.channelPrefix ?? "events.";
    if (typeof prefix !== "string" || /\s/.test(prefix)) {
      throw new InvalidArgumentError("channelPrefix", "must be a string without whitespace");
    }
    for (const name of ["process", "app"] as const) {
      const broker = options[name];
      if (broker !== undefined && (broker === null || typeof broker.publish !== "function")) {
        throw new InvalidArgumentError(
          name,
          "must be a Broker (e.g. a MemoryBroker or RedisBroker)",
        );
      }
    }
    if (options.logger !== undefined) checkLogger(options.logger);
    super();
    const logger = options.logger ?? defaultLogger;
    this.#reporter = new Reporter(logger, undefined, this);
    const brokerOptions = { logger, onError: options.onError };
    this.#process = options.process ?? new MemoryBroker(brokerOptions);
    this.#app = options.app ?? new MemoryBroker(brokerOptions);
    this.channelPrefix = prefix;
    this.#forwardEvents(this.#process);
    if (this.#app !== this.#process) this.#forwardEvents(this.#app);
    internals.set(this, {
      replaceBrokers: (brokers) => this.#replaceBrokers(brokers),
      removeMiddleware: (middleware) => this.#removeMiddleware(middleware),
    });
  }

  /** A listener's error goes to the bus's logger. */
  protected override reportListenerError(type: string, error: unknown): void {
    this.#reporter.log("error", `a "${type}" event listener threw`, error);
  }

  /** Broker of PROCESS-scope events. */
  get processBroker(): Broker {
    return this.#process;
  }

  /** Broker of APP-scope events (may be the same object as `processBroker`). */
  get appBroker(): Broker {
    return this.#app;
  }

  /** Re-dispatches the brokers' `error` and `drop` events on the bus. */
  #forwardEvents(broker: Broker): void {
    if (typeof broker.addEventListener !== "function" || this.#forwarded.has(broker)) return;
    this.#forwarded.add(broker);
    const current = () => broker === this.#process || broker === this.#app;
    broker.addEventListener("error", (event) => {
      if (event instanceof HandlerErrorEvent && current()) {
        this.dispatchEvent(new HandlerErrorEvent(event.failure));
      }
    });
    broker.addEventListener("drop", (event) => {
      if (event instanceof DropEvent && current()) {
        this.dispatchEvent(
          new DropEvent(event.channel, event.subscription, event.count, event.reason),
        );
      }
    });
  }

  /** `"stopped"`, `"starting"`, `"started"` or `"stopping"`. */
  get state(): BrokerState {
    return this.#lifecycle.state;
  }

  /**
   * The broker channel events of `type` travel on. Channels are kept per type,
   * so each publish hands the broker the same string and its lookups stay cheap.
   */
  channelFor(type: string): string {
    return this.#route(type).channel;
  }

  #route(type: string): Route {
    let route = this.#routes.get(type);
    if (route === undefined) {
      route = { channel: typeChannel(this.channelPrefix, type), known: undefined, sent: false };
      // Beyond the bound, odd usage builds routes per call rather than growing forever.
      if (this.#routes.size < MAX_CACHED_CHANNELS) this.#routes.set(type, route);
    }
    return route;
  }

  /**
   * Subscribes a typed handler to an event definition, on the broker of the
   * definition's scope. Payloads that fail the schema never reach the handler.
   */
  subscribe<E extends EventDefinition>(
    definition: E,
    handler: EventHandler<EventOf<E>>,
    options?: SubscribeOptions,
  ): Subscription;
  /**
   * Subscribes a handler to every event of a type, whatever its scope: the
   * handler is registered on both brokers and gets plain `CloudEvent`s.
   */
  subscribe(
    type: string,
    handler: EventHandler<CloudEvent>,
    options?: SubscribeOptions,
  ): Subscription;
  /**
   * Subscribes a handler to a definition or to a type string.
   *
   * @example
   * ```ts
   * import { EventBus } from "@opensecflow/eventbus";
   * const bus = new EventBus();
   * const sub = bus.subscribe("audit.logged", function audit(e) {
   *   console.log(e.type, e.id);
   * });
   * await sub.unsubscribe();
   * ```
   */
  subscribe(
    target: EventDefinition | string,
    handler: EventHandler<never>,
    options?: SubscribeOptions,
  ): Subscription {
    checkHandler(handler);
    const name = subscriptionName(handler, options);
    const signal = checkSignal(options?.signal);
    if (signal !== undefined) options = { ...options, signal: undefined };
    let type: string;
    let routes: [Broker, EventScope][];
    let convert: (message: unknown) => CloudEvent;
    if (typeof target === "string") {
      const problem = checkNonEmptyString(target);
      if (problem) throw new InvalidArgumentError("type", `${problem}, got ${excerpt(target)}`);
      type = target;
      routes = [[this.#process, EventScope.PROCESS], [this.#app, EventScope.APP]];
      convert = (message) => message instanceof CloudEvent ? message : CloudEvent.fromJSON(message);
    } else {
      if (!isDefinition(target)) {
        throw new InvalidArgumentError(
          "definition",
          `must be an event class from defineEvent() or an event type string, got ${
            excerpt(target)
          }`,
        );
      }
      const definition = target;
      type = definition.type;
      this.#checkDefinitionType(definition);
      routes = [[
        definition.scope === EventScope.PROCESS ? this.#process : this.#app,
        definition.scope,
      ]];
      convert = (message) =>
        (message as { constructor?: unknown } | null)?.constructor === definition ||
          message instanceof definition
          ? message as CloudEvent
          : parseForHandler(definition, message, name);
    }
    const attachments: Attachment[] = [];
    const registrations: Registration[] = [];
    try {
      for (const [broker, scope] of routes) {
        // One broker serving both scopes gets one subscription, so nothing arrives twice.
        const existing = routes.findIndex(([other]) => other === broker);
        const attachment = existing < attachments.length
          ? attachments[existing]
          : this.#attach(broker, scope, type, convert, handler as EventHandler, name, options);
        if (existing === attachments.length) attachments.push(attachment);
        registrations.push(this.#register(type, { name: attachment.sub.name, scope }));
      }
    } catch (error) {
      // All or nothing: a broker refusing the second subscription undoes the first.
      for (const registration of registrations) this.#registrations.delete(registration);
      for (const attachment of attachments) {
        this.#attachments.delete(attachment);
        attachment.sub.unsubscribe().catch((e) =>
          this.#reporter.log("error", "undoing a subscription failed", e)
        );
      }
      throw error;
    }
    const known = typeof target === "string" ? undefined : this.#know(target);
    if (known !== undefined) known.receives++;
    return this.#combine(type, attachments, registrations, known, signal);
  }

  /**
   * The events of a definition (typed) or of a type string (plain
   * `CloudEvent`s, from both scopes) as a `ReadableStream`; `for await`
   * works on it. An event is acknowledged when the loop asks for the next
   * one; leaving the loop unsubscribes, and the event in hand is not
   * acknowledged (a durable broker delivers it again).
   *
   * @example
   * ```ts
   * import { defineEvent, EventBus, EventScope } from "@opensecflow/eventbus";
   * import { z } from "zod";
   * const OrderCreated = defineEvent({
   *   type: "order.created", scope: EventScope.PROCESS, source: "/orders",
   *   data: z.object({ orderId: z.string() }),
   * });
   * await using bus = new EventBus();
   * const orders = bus.consume(OrderCreated, { name: "audit" });
   * await bus.start();
   * await bus.publish(new OrderCreated({ data: { orderId: "A1" } }));
   * for await (const order of orders) {
   *   console.log(order.data.orderId); // "A1"
   *   break;
   * }
   * ```
   */
  consume<E extends EventDefinition>(
    target: E,
    options: ConsumeOptions,
  ): ReadableStream<EventOf<E>>;
  /** The events of a type string, from both scopes, as plain `CloudEvent`s. */
  consume(target: string, options: ConsumeOptions): ReadableStream<CloudEvent>;
  /** The events of a definition or a type string as a stream. */
  consume(target: EventDefinition | string, options: ConsumeOptions): ReadableStream<CloudEvent> {
    return consumeStream<CloudEvent>(
      (handler, subscribe) =>
        this.subscribe(target as string, handler as EventHandler<CloudEvent>, subscribe),
      options,
    );
  }

  /** The entry of a definition, created on first sight. */
  #know(definition: EventDefinition): KnownDefinition {
    let known = this.#definitions.get(definition.type);
    if (known === undefined) {
      known = { definition, receives: 0, sends: false };
      this.#definitions.set(definition.type, known);
      this.#route(definition.type).known = known;
    }
    return known;
  }

  /** One definition per event type: two schemas for one type would make the contract ambiguous. */
  #checkDefinitionType(definition: EventDefinition): void {
    const known = this.#definitions.get(definition.type);
    if (known !== undefined && known.definition !== definition) {
      throw new InvalidArgumentError(
        "definition",
        `another definition of type "${definition.type}" is already on this bus`,
      );
    }
  }

  /**
   * Declares definitions of the events this service sends, for contract
   * documents such as AsyncAPI. Publishing a typed event declares its
   * definition too. Returns the bus for chaining.
   *
   * @example
   * ```ts
   * import { defineEvent, EventBus } from "@opensecflow/eventbus";
   * import { z } from "zod";
   * const OrderShipped = defineEvent({ type: "order.shipped", source: "/s", data: z.object({ id: z.string() }) });
   * const bus = new EventBus().declare(OrderShipped);
   * ```
   */
  declare(...definitions: EventDefinition[]): this {
    for (const definition of definitions) {
      if (!isDefinition(definition)) {
        throw new InvalidArgumentError(
          "definition",
          `must be an event class from defineEvent(), got ${excerpt(definition)}`,
        );
      }
      this.#checkDefinitionType(definition);
    }
    for (const definition of definitions) this.#know(definition).sends = true;
    return this;
  }

  /**
   * The definitions this bus receives (typed subscriptions) or sends
   * (declared or published), in the order it first saw them.
   *
   * @example
   * ```ts
   * import { defineEvent, EventBus } from "@opensecflow/eventbus";
   * import { z } from "zod";
   * const Ping = defineEvent({ type: "ping", source: "/p", data: z.object({}) });
   * const bus = new EventBus();
   * bus.subscribe(Ping, function pong() {});
   * console.log(bus.definitions().map((d) => [d.definition.type, d.receives])); // [["ping", true]]
   * ```
   */
  definitions(): DefinitionInfo[] {
    const out: DefinitionInfo[] = [];
    for (const known of this.#definitions.values()) {
      if (known.receives === 0 && !known.sends) continue;
      out.push({ definition: known.definition, receives: known.receives > 0, sends: known.sends });
    }
    return out;
  }

  #attach(
    broker: Broker,
    scope: EventScope,
    type: string,
    convert: (message: unknown) => CloudEvent,
    handler: EventHandler,
    name: string | undefined,
    options: SubscribeOptions | undefined,
  ): Attachment {
    const channel = this.channelFor(type);
    let subscription = "";
    const deliver = (message: unknown, context: MessageContext): unknown => {
      const event = convert(message);
      const chain = this.#handleChain;
      if (chain.passesThrough()) return handler(event, context);
      const call: HandleCall = { event, scope, channel, subscription, context };
      return chain.run(call, callHandler, handler);
    };
    // The broker names anonymous handlers (or refuses them, when names must be
    // durable): it must not mistake the wrapper's own name for the user's.
    Object.defineProperty(deliver, "name", { value: name ?? "" });
    const sub = broker.subscribe(channel, deliver, options);
    subscription = sub.name;
    const attachment: Attachment = { scope, channel, deliver, options, sub };
    this.#attachments.add(attachment);
    return attachment;
  }

  /**
   * Moves every subscription onto other brokers (the bus must be stopped),
   * keeping names and options. Used by `./testing` to run a bus wired to
   * Redis in memory without changing application code.
   */
  #replaceBrokers(brokers: { process: Broker; app: Broker }): void {
    if (this.#lifecycle.state !== "stopped") {
      throw new InvalidArgumentError("bus", "must be stopped to change its brokers");
    }
    this.#process = brokers.process;
    this.#app = brokers.app;
    this.#forwardEvents(this.#process);
    if (this.#app !== this.#process) this.#forwardEvents(this.#app);
    for (const attachment of this.#attachments) {
      const old = attachment.sub;
      old.unsubscribe().catch((e) =>
        this.#reporter.log("error", "moving a subscription failed", e)
      );
      const broker = attachment.scope === EventScope.PROCESS ? this.#process : this.#app;
      attachment.sub = broker.subscribe(attachment.channel, attachment.deliver, {
        ...attachment.options,
        name: old.name,
      });
    }
  }

  #register(type: string, info: HandlerInfo): Registration {
    const registration = { type, info: Object.freeze(info) };
    this.#registrations.add(registration);
    return registration;
  }

  #combine(
    type: string,
    attachments: Attachment[],
    registrations: Registration[],
    known: KnownDefinition | undefined,
    signal: AbortSignal | undefined,
  ): Subscription {
    const registry = this.#registrations;
    return subscriptionHandle(this.channelFor(type), attachments[0].sub.name, async () => {
      if (known !== undefined) known.receives--;
      for (const registration of registrations) registry.delete(registration);
      for (const attachment of attachments) this.#attachments.delete(attachment);
      await Promise.all(attachments.map((attachment) => attachment.sub.unsubscribe()));
    }, signal);
  }

  /**
   * Publishes an event on the broker of its scope (a plain `CloudEvent`
   * counts as APP). Resolves once the broker accepted it.
   *
   * @example
   * ```ts
   * import { CloudEvent, EventBus } from "@opensecflow/eventbus";
   * await using bus = new EventBus();
   * await bus.start();
   * await bus.publish(new CloudEvent({ type: "ping", source: "/health" }));
   * ```
   */
  publish(event: CloudEvent, options?: PublishOptions): Promise<void> {
    const broker = this.#brokerFor(event, "publish");
    if (broker instanceof Error) return Promise.reject(broker);
    const route = this.#route(event.type);
    const known = route.known;
    if (!route.sent || (known !== undefined && event.constructor !== known.definition)) {
      const refused = this.#checkOutgoing(event, route);
      if (refused !== undefined) return Promise.reject(refused);
    }
    const channel = route.channel;
    const chain = this.#publishChain;
    if (chain.passesThrough()) return broker.publish(event, channel, options);
    const call: PublishCall = { event, scope: scopeOf(event), channel };
    return chain.run(call, this.#send, options);
  }

  /**
   * Publishes events in order, all or nothing as far as the brokers allow,
   * each routed as {@linkcode EventBus.publish} would. The bus checks every
   * event first (the bus is started, each is a CloudEvent with a broker for
   * its scope and matches the definition its type is received with); publish
   * middleware then runs for each event, and a hook refusing one refuses the
   * batch. Then each broker gets its events in one `publishBatch` call,
   * which checks every message (channel, options, encoding, size) before
   * writing any: a refusal rejects the batch with nothing of it published,
   * with an `InvalidArgumentError` naming the event (`events[3].message`).
   *
   * What a failure of the write itself leaves behind is the broker's:
   * `MemoryBroker` queues all at once; `RedisBroker` writes a batch in one
   * `MULTI`/`EXEC` (one per channel on a cluster); `KvBroker` in one atomic
   * commit when the batch fits in one (else in several, in order). A batch
   * spanning both scopes goes to the app broker first, then to the process
   * broker: a refusal of the process broker then leaves the app events
   * published. A broker without `publishBatch` gets one publish at a time.
   *
   * @example
   * ```ts
   * import { CloudEvent, EventBus } from "@opensecflow/eventbus";
   * await using bus = new EventBus();
   * await bus.start();
   * await bus.publishBatch([
   *   new CloudEvent({ type: "stock.reserved", source: "/stock" }),
   *   new CloudEvent({ type: "stock.shipped", source: "/stock" }),
   * ]);
   * ```
   */
  async publishBatch(events: readonly CloudEvent[], options?: PublishOptions): Promise<void> {
    if (!Array.isArray(events)) {
      throw new InvalidArgumentError(
        "events",
        `must be an array of CloudEvent, got ${excerpt(events)}`,
      );
    }
    const calls: PublishCall[] = new Array(events.length);
    for (let index = 0; index < events.length; index++) {
      const event = events[index];
      if (!(event instanceof CloudEvent)) {
        throw new InvalidArgumentError(
          `events[${index}]`,
          `must be a CloudEvent (e.g. new OrderCreated({...})), got ${excerpt(event)}`,
        );
      }
      const broker = this.#brokerFor(event, "publish");
      if (broker instanceof Error) throw broker;
      const route = this.#route(event.type);
      const refused = this.#checkOutgoing(event, route);
      if (refused !== undefined) throw refused;
      calls[index] = { event, scope: scopeOf(event), channel: route.channel };
    }
    checkPublishOptions(options);
    if (calls.length === 0) return;
    const chain = this.#publishChain;
    if (chain.passesThrough()) return await this.#writeBatch(calls, options);
    await publishBatchThrough(chain, calls, (finals) => this.#writeBatch(finals, options));
  }

  /**
   * Hands each broker its calls in one batch: the app broker first, since
   * its refusals (sizes, the network) are the likely ones.
   */
  async #writeBatch(
    calls: readonly PublishCall[],
    options: PublishOptions | undefined,
  ): Promise<void> {
    const brokers = this.#app === this.#process ? [this.#app] : [this.#app, this.#process];
    for (const broker of brokers) {
      const entries: BatchEntry[] = [];
      const indexes: number[] = [];
      for (let index = 0; index < calls.length; index++) {
        const call = calls[index];
        if (this.#brokerOf(call.scope) !== broker) continue;
        entries.push({ message: call.event, channel: call.channel });
        indexes.push(index);
      }
      if (entries.length === 0) continue;
      try {
        await publishEntries(broker, entries, options);
      } catch (error) {
        throw renameEntry(error, indexes, "events");
      }
    }
  }

  /**
   * Sends an event as a request through its scope's broker and resolves with
   * the first handler's return value. Publish middleware runs around it too.
   *
   * @example
   * ```ts
   * import { defineEvent, EventBus, EventScope } from "@opensecflow/eventbus";
   * import { z } from "zod";
   * const Quote = defineEvent({ type: "quote.requested", scope: EventScope.PROCESS, source: "/q", data: z.object({ sku: z.string() }) });
   * await using bus = new EventBus();
   * bus.subscribe(Quote, function price(e) { return { sku: e.data.sku, price: 9.5 }; });
   * await bus.start();
   * console.log(await bus.request(new Quote({ data: { sku: "X" } }), { timeout: 500 }));
   * ```
   */
  async request<R = unknown>(event: CloudEvent, options?: RequestOptions): Promise<R> {
    const broker = this.#brokerFor(event, "request");
    if (broker instanceof Error) throw broker;
    const route = this.#route(event.type);
    const refused = this.#checkOutgoing(event, route);
    if (refused !== undefined) throw refused;
    const channel = route.channel;
    const chain = this.#publishChain;
    if (chain.passesThrough()) return broker.request<R>(event, channel, options);
    let reply: R | undefined;
    const call: PublishCall = { event, scope: scopeOf(event), channel };
    await chain.run(call, async (final) => {
      reply = await this.#brokerOf(final.scope).request<R>(final.event, final.channel, options);
    }, undefined);
    return reply as R;
  }

  /** The innermost step of a publish through middleware: the broker of the (final) event's scope. */
  readonly #send = (call: PublishCall, options: PublishOptions | undefined): Promise<void> =>
    this.#brokerOf(call.scope).publish(call.event, call.channel, options);

  /**
   * The call a publish middleware's replacement event makes: checked and
   * routed like a fresh publish.
   */
  readonly #replaceEvent = (_call: PublishCall, event: CloudEvent): PublishCall => {
    if (!(event instanceof CloudEvent)) {
      throw new InvalidArgumentError(
        "event",
        `a publish middleware passed next() a replacement that is not a CloudEvent: ${
          excerpt(event)
        }`,
      );
    }
    const route = this.#route(event.type);
    const refused = this.#checkOutgoing(event, route);
    if (refused !== undefined) throw refused;
    return { event, scope: scopeOf(event), channel: route.channel };
  };

  #brokerOf(scope: EventScope): Broker {
    return scope === EventScope.PROCESS ? this.#process : this.#app;
  }

  /**
   * Notes a typed event's definition as sent, and checks a plain event whose
   * type a definition on this bus receives against that definition, so a
   * payload its handlers would refuse is refused here, at the caller.
   */
  #checkOutgoing(event: CloudEvent, route: Route): ValidationError | undefined {
    if (!route.sent) {
      route.sent = true;
      const definition = event.constructor;
      if (definition !== CloudEvent && isDefinition(definition)) {
        try {
          this.#checkDefinitionType(definition);
          this.#know(definition).sends = true;
        } catch {
          // A second definition of the type: the receiving one stays the contract.
        }
      }
    }
    const known = route.known;
    if (known === undefined || known.receives === 0 || event instanceof known.definition) return;
    try {
      known.definition.parse(event);
    } catch (error) {
      if (error instanceof ValidationError) {
        return new ValidationError(error.issues, {
          context: `event ${event.id} does not match the definition of "${event.type}"`,
        });
      }
      throw error;
    }
  }

  /** The broker of an event's scope, or the error refusing the call. */
  #brokerFor(event: CloudEvent, action: string): Broker | Error {
    const state = this.#lifecycle.state;
    if (state !== "started") return new NotStartedError("EventBus", state, action);
    if (!(event instanceof CloudEvent)) {
      return new InvalidArgumentError(
        "event",
        `must be a CloudEvent (e.g. new OrderCreated({...})), got ${excerpt(event)}`,
      );
    }
    // A ScopedEvent carries its scope; a plain CloudEvent has none and goes to APP.
    return (event as Partial<ScopedEvent>).scope === EventScope.PROCESS ? this.#process : this.#app;
  }

  /**
   * Starts the process broker, then the app broker. When the app broker fails
   * to start, the process broker is stopped again and the error is thrown.
   * Calls are serialized with `stop()`: the last call decides the final state.
   */
  start(): Promise<void> {
    return this.#lifecycle.start(async () => {
      await this.#process.start();
      if (this.#app !== this.#process) {
        try {
          await this.#app.start();
        } catch (error) {
          await this.#process.stop().catch((stopError) =>
            this.#reporter.log(
              "error",
              "process broker failed to stop after the app broker failed to start",
              stopError,
            )
          );
          throw error;
        }
      }
      this.#reporter.log("info", "event bus started");
    });
  }

  /**
   * Stops both brokers, even when one fails; failures are thrown together as
   * one `AggregateError`. Publishes are refused from the moment of the call.
   */
  stop(options?: StopOptions): Promise<void> {
    try {
      checkStopOptions(options, 0);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#lifecycle.stop(async () => {
      const brokers = this.#app === this.#process ? [this.#process] : [this.#process, this.#app];
      const results = await Promise.allSettled(brokers.map((broker) => broker.stop(options)));
      const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
      if (failures.length > 0) {
        throw new AggregateError(
          failures,
          `event bus: ${failures.length} broker(s) failed to stop`,
        );
      }
      this.#reporter.log("info", "event bus stopped");
    });
  }

  /** Stops the bus at the end of an `await using` scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  /**
   * Readiness of both brokers, for liveness and readiness probes: `ok` when
   * the bus is started and both brokers are healthy. A broker without a
   * `health()` of its own is judged by its state. Never rejects.
   *
   * @example
   * ```ts
   * import { EventBus } from "@opensecflow/eventbus";
   * await using bus = new EventBus();
   * await bus.start();
   * const health = await bus.health();
   * console.log(health.ok, health.process.state, health.app.state); // true "started" "started"
   * ```
   */
  async health(): Promise<BusHealth> {
    const [process, app] = await Promise.all([
      brokerHealth(this.#process),
      this.#app === this.#process ? undefined : brokerHealth(this.#app),
    ]);
    const appHealth = app ?? process;
    return {
      ok: this.#lifecycle.state === "started" && process.ok && appHealth.ok,
      state: this.#lifecycle.state,
      process,
      app: appHealth,
    };
  }

  /**
   * Registered handlers by event type.
   *
   * @example
   * ```ts
   * import { EventBus } from "@opensecflow/eventbus";
   * const bus = new EventBus();
   * bus.subscribe("ping", function pong() {});
   * console.log(bus.handlers()); // { ping: [{ name: "pong", scope: "process" }, { name: "pong", scope: "app" }] }
   * ```
   */
  handlers(): Record<string, HandlerInfo[]> {
    const out: Record<string, HandlerInfo[]> = {};
    for (const { type, info } of this.#registrations) {
      if (!Object.hasOwn(out, type)) {
        Object.defineProperty(out, type, { value: [], enumerable: true, writable: true });
      }
      out[type].push(info);
    }
    return out;
  }

  /**
   * Adds middleware around publishes and handler calls; the first added runs
   * outermost. Returns the bus for chaining.
   */
  use(middleware: Middleware): this {
    if (middleware === null || typeof middleware !== "object") {
      throw new InvalidArgumentError(
        "middleware",
        "must be an object with publish() and/or handle()",
      );
    }
    const { publish, handle } = middleware;
    if (publish === undefined && handle === undefined) {
      throw new InvalidArgumentError("middleware", "needs a publish() or handle() hook");
    }
    if (publish !== undefined && typeof publish !== "function") {
      throw new InvalidArgumentError("middleware.publish", "must be a function");
    }
    if (handle !== undefined && typeof handle !== "function") {
      throw new InvalidArgumentError("middleware.handle", "must be a function");
    }
    this.#middleware.push(middleware);
    this.#rebuildHooks();
    return this;
  }

  #removeMiddleware(middleware: Middleware): void {
    const index = this.#middleware.indexOf(middleware);
    if (index === -1) return;
    this.#middleware.splice(index, 1);
    this.#rebuildHooks();
  }

  /** New chains rather than edits: a call running now keeps the hooks it started with. */
  #rebuildHooks(): void {
    const publish: PublishLink[] = [];
    const handle: HandleLink[] = [];
    for (const middleware of this.#middleware) {
      const asks = typeof (middleware as MayPassThrough)[PASSES_THROUGH] === "function"
        ? middleware as Required<MayPassThrough>
        : undefined;
      if (middleware.publish) publish.push({ hook: middleware.publish.bind(middleware), asks });
      if (middleware.handle) handle.push({ hook: middleware.handle.bind(middleware), asks });
    }
    this.#publishChain = new MiddlewareChain<PublishCall, void, CloudEvent>(
      publish,
      false,
      this.#replaceEvent,
    );
    this.#handleChain = new MiddlewareChain<HandleCall, unknown, never>(handle, true);
  }
}

/**
 * What {@linkcode EventBus.health} returns.
 *
 * @example
 * ```ts
 * import { EventBus, type BusHealth } from "@opensecflow/eventbus";
 * const health: BusHealth = await new EventBus().health();
 * console.log(health.ok); // false: not started
 * ```
 */
export interface BusHealth {
  /** The bus is started and both brokers are healthy. */
  readonly ok: boolean;
  /** The bus's lifecycle state. */
  readonly state: BrokerState;
  /** The process broker's readiness. */
  readonly process: BrokerHealth;
  /** The app broker's readiness (the same object when one broker serves both scopes). */
  readonly app: BrokerHealth;
}

async function brokerHealth(broker: Broker): Promise<BrokerHealth> {
  if (typeof broker.health === "function") {
    try {
      return await broker.health();
    } catch (error) {
      return {
        ok: false,
        state: broker.state,
        subscriptions: [],
        error: error instanceof Error ? error.message : String(error),
      };
    }
  }
  return { ok: broker.state === "started", state: broker.state, subscriptions: [] };
}

/** What `./testing` may do to a bus that the public API does not offer. */
export interface BusInternals {
  /** Moves every subscription onto other brokers; the bus must be stopped. */
  replaceBrokers(brokers: { process: Broker; app: Broker }): void;
  /** Removes a middleware added with `use`. */
  removeMiddleware(middleware: Middleware): void;
}

const internals = new WeakMap<EventBus, BusInternals>();

/** The internals of a bus, for `./testing`; not part of the public API. */
export function busInternals(bus: EventBus): BusInternals {
  const found = internals.get(bus);
  if (found === undefined) {
    throw new InvalidArgumentError("bus", "must be an EventBus");
  }
  return found;
}

/** Event types whose channel name is remembered; beyond it names are built per call. */
const MAX_CACHED_CHANNELS = 10_000;

function isDefinition(value: unknown): value is EventDefinition {
  return typeof value === "function" &&
    typeof (value as EventDefinition).parse === "function" &&
    typeof (value as EventDefinition).type === "string" && (value as EventDefinition).type !== "";
}

/** A broker's part of a batch: in one call, or one publish at a time on a broker without it. */
async function publishEntries(
  broker: Broker,
  entries: readonly BatchEntry[],
  options: PublishOptions | undefined,
): Promise<void> {
  if (typeof broker.publishBatch === "function") return await broker.publishBatch(entries, options);
  for (const { message, channel } of entries) await broker.publish(message, channel, options);
}

/**
 * An event's scope: its own for a ScopedEvent, APP for a plain CloudEvent
 * (which has no `scope`). Read as a property, not by `instanceof`, which walks
 * the prototype chain of every typed event class on each publish.
 */
function scopeOf(event: CloudEvent): EventScope {
  return (event as Partial<ScopedEvent>).scope === EventScope.PROCESS
    ? EventScope.PROCESS
    : EventScope.APP;
}

function parseForHandler(
  definition: EventDefinition,
  message: unknown,
  name: string | undefined,
): CloudEvent {
  try {
    return definition.parse(message);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    const id = message instanceof CloudEvent ? message.id : "(unknown id)";
    // The bus's own schema check refuses the payload for good: no retry can fix it.
    throw new RejectMessage(
      `event ${id} does not match "${definition.type}" of handler "${
        name ?? "anonymous"
      }": ${error.message}`,
      { cause: error },
    );
  }
}
