/**
 * Observable instruments fed by the brokers' `stats()`: how much is queued
 * now, and how many messages were dropped, retried, claimed or dead-lettered
 * so far. Each collection reads `stats()` once per broker.
 *
 * @module
 */

import type {
  Attributes,
  BatchObservableCallback,
  Meter,
  Observable,
  ObservableCounter,
  ObservableUpDownCounter,
} from "@opentelemetry/api";
import { ValueType } from "@opentelemetry/api";
import type { Broker, BrokerStats } from "../broker.ts";
import { EventScope } from "../event.ts";
import { ATTR, MESSAGING_SYSTEM } from "./semconv.ts";

/** A `stats()` field reported as a metric, when the broker has it. */
interface StatMetric {
  readonly field: string;
  readonly name: string;
  readonly description: string;
  /** A level that goes up and down (an up-down counter), or a running total (a counter). */
  readonly kind: "level" | "total";
}

/** The fields reported; a broker whose stats lack one (e.g. no dead letters in memory) skips it. */
const STAT_METRICS: readonly StatMetric[] = [
  {
    field: "queued",
    name: "messaging.eventbus.broker.queued",
    description: "Messages waiting in the broker's queues for a handler.",
    kind: "level",
  },
  {
    field: "pendingRequests",
    name: "messaging.eventbus.broker.pending_requests",
    description: "Requests waiting for their reply.",
    kind: "level",
  },
  {
    field: "retrying",
    name: "messaging.eventbus.broker.retrying",
    description: "Messages waiting for another delivery attempt.",
    kind: "level",
  },
  {
    field: "dropped",
    name: "messaging.eventbus.broker.dropped",
    description: "Messages accepted but never handled (e.g. still queued when a stop timed out).",
    kind: "total",
  },
  {
    field: "retried",
    name: "messaging.eventbus.broker.retried",
    description: "Failed handler calls scheduled for another attempt.",
    kind: "total",
  },
  {
    field: "deadLettered",
    name: "messaging.eventbus.broker.dead_lettered",
    description: "Messages moved to a dead-letter stream.",
    kind: "total",
  },
  {
    field: "claimed",
    name: "messaging.eventbus.broker.claimed",
    description: "Messages claimed from consumers that stopped answering.",
    kind: "total",
  },
];

/** A broker and the attributes its observations carry. */
export interface ObservedBroker {
  readonly broker: Broker;
  /** `"process"`, `"app"`, or `"shared"` for one broker serving both scopes. */
  readonly scope: EventScope | "shared";
}

/** The brokers of a bus, each once. */
export function busBrokers(processBroker: Broker, appBroker: Broker): ObservedBroker[] {
  if (processBroker === appBroker) return [{ broker: processBroker, scope: "shared" }];
  return [
    { broker: processBroker, scope: EventScope.PROCESS },
    { broker: appBroker, scope: EventScope.APP },
  ];
}

/** The attributes of each scope's observations, shared by every collection. */
const SCOPE_ATTRIBUTES: Readonly<Record<ObservedBroker["scope"], Attributes>> = Object.freeze({
  [EventScope.PROCESS]: scopeAttributes(EventScope.PROCESS),
  [EventScope.APP]: scopeAttributes(EventScope.APP),
  shared: scopeAttributes("shared"),
});

function scopeAttributes(scope: ObservedBroker["scope"]): Attributes {
  return Object.freeze({ [ATTR.system]: MESSAGING_SYSTEM, [ATTR.scope]: scope });
}

/**
 * Registers the broker instruments on `meter`, observing the brokers
 * `brokers()` returns at each collection; the returned function unregisters
 * them.
 */
export function observeBrokers(
  meter: Meter,
  brokers: () => readonly ObservedBroker[],
): () => void {
  const instruments = STAT_METRICS.map((metric) => {
    const options = {
      description: metric.description,
      unit: "{message}",
      valueType: ValueType.INT,
    };
    const instrument: ObservableCounter | ObservableUpDownCounter = metric.kind === "level"
      ? meter.createObservableUpDownCounter(metric.name, options)
      : meter.createObservableCounter(metric.name, options);
    return { metric, instrument };
  });
  const callback: BatchObservableCallback = (result) => {
    for (const { broker, scope } of brokers()) {
      const attributes = SCOPE_ATTRIBUTES[scope];
      const stats = broker.stats() as BrokerStats & Record<string, unknown>;
      for (const { metric, instrument } of instruments) {
        const value = stats[metric.field];
        if (typeof value === "number") result.observe(instrument, value, attributes);
      }
    }
  };
  const observables: Observable[] = instruments.map(({ instrument }) => instrument);
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
