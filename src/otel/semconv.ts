/**
 * Names from the OpenTelemetry messaging and CloudEvents semantic
 * conventions, and the few this bus adds under `messaging.eventbus.*` (the
 * conventions put attributes of one messaging system in its own namespace).
 *
 * @module
 */

/** `messaging.system` of every span and metric. */
export const MESSAGING_SYSTEM = "eventbus";

/** Attribute names. */
export const ATTR = {
  system: "messaging.system",
  operationType: "messaging.operation.type",
  operationName: "messaging.operation.name",
  destination: "messaging.destination.name",
  consumerGroup: "messaging.consumer.group.name",
  messageId: "messaging.message.id",
  conversationId: "messaging.message.conversation_id",
  errorType: "error.type",
  eventId: "cloudevents.event_id",
  eventSource: "cloudevents.event_source",
  eventSpecVersion: "cloudevents.event_spec_version",
  eventType: "cloudevents.event_type",
  eventSubject: "cloudevents.event_subject",
  /** Bus scope: `process` or `app` (`shared` for one broker serving both, on broker metrics). */
  scope: "messaging.eventbus.scope",
  /** Delivery attempt of a handler call, from 1; above 1 for a retry or a redelivery. */
  deliveryAttempt: "messaging.eventbus.message.delivery_attempt",
  /** How a handler call ended: `ack`, `nack`, `reject` or `error`. */
  outcome: "messaging.eventbus.outcome",
} as const;

/** Metric names. */
export const METRIC = {
  sent: "messaging.client.sent.messages",
  consumed: "messaging.client.consumed.messages",
  processDuration: "messaging.process.duration",
  operationDuration: "messaging.client.operation.duration",
} as const;

/** Bucket boundaries the conventions advise for messaging durations, in seconds. */
export const DURATION_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
];

/** `error.type` of a failure: the error's class name, as the conventions suggest. */
export function errorType(error: unknown): string {
  if (error instanceof Error && error.name) return error.name;
  return "_OTHER";
}
