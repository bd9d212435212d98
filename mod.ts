/**
 * A CloudEvents v1.0 event bus with two scopes: `process` (in memory) and
 * `app` (every instance of the application, through a distributed broker
 * such as `RedisBroker` from `@opensecflow/eventbus/redis`).
 *
 * @example
 * ```ts
 * import { defineEvent, EventBus, EventScope } from "@opensecflow/eventbus";
 * import { z } from "zod";
 *
 * const OrderCreated = defineEvent({
 *   type: "order.created",
 *   scope: EventScope.PROCESS,
 *   source: "/orders",
 *   data: z.object({ orderId: z.string() }),
 * });
 *
 * await using bus = new EventBus();
 * bus.subscribe(OrderCreated, function logOrder(e) {
 *   console.log("order", e.data.orderId);
 * });
 * await bus.start();
 * await bus.publish(new OrderCreated({ data: { orderId: "A1" } }));
 * ```
 *
 * @module
 */

export {
  BrokerError,
  EventBusError,
  EventBusStateError,
  InvalidArgumentError,
  NoSubscribersError,
  NotStartedError,
  QueueFullError,
  RequestFailedError,
  RequestTimeoutError,
  ValidationError,
  type ValidationIssue,
} from "./src/errors.ts";
export { defaultLogger, type Logger, silentLogger } from "./src/logger.ts";
export { AckMessage, NackMessage, type NackOptions, RejectMessage } from "./src/outcomes.ts";
export { DropEvent, HandlerErrorEvent, StateChangeEvent } from "./src/broker_events.ts";
export { BrokerBase } from "./src/broker_base.ts";
export { GuardedEventTarget } from "./src/guarded_event_target.ts";
export {
  CloudEvent,
  type CloudEventInit,
  type CloudEventJSON,
  type CloudEventOptions,
  DEFAULT_MAX_DATA_DEPTH,
  EventScope,
  type ExtensionValue,
  type FromJSONOptions,
  ScopedEvent,
  type ScopedEventInit,
} from "./src/event.ts";
export type { AttributeType } from "./src/attributes.ts";
export {
  defineEvent,
  type DefineEventOptions,
  type EventDefinition,
  type EventOf,
  type TypedEvent,
  type TypedEventInit,
} from "./src/define_event.ts";
export type {
  BatchEntry,
  Broker,
  BrokerDelivery,
  BrokerHealth,
  BrokerOptions,
  BrokerState,
  BrokerStats,
  ConsumeOptions,
  Handler,
  HandlerFailure,
  MessageContext,
  PublisherDecorator,
  PublishOptions,
  RequestOptions,
  RetryBackoff,
  StopOptions,
  SubscribeOptions,
  SubscriberDecorator,
  Subscription,
  SubscriptionHealth,
} from "./src/broker.ts";
export type { DeadLetter, DeadLettersOptions, ReplayOptions } from "./src/dead_letter.ts";
export {
  type BusHealth,
  type DefinitionInfo,
  EventBus,
  type EventBusOptions,
  type EventHandler,
  type HandlerInfo,
} from "./src/eventbus.ts";
export type { HandleCall, Middleware, PublishCall } from "./src/middleware.ts";
export {
  eventHandler,
  type EventHandlerDecorator,
  getEventBus,
  initEventBus,
  type RegisteredHandler,
  resetEventBus,
} from "./src/global_bus.ts";
export { type InstanceSubscription, subscribeInstance } from "./src/instance_subscription.ts";
export {
  AsyncQueueBroker,
  MemoryBroker,
  type MemoryBrokerOptions,
  type MemoryBrokerStats,
  type MemorySubscriptionStats,
} from "./src/memory_broker.ts";
