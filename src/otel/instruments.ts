/**
 * The messaging metrics of the conventions: messages sent and consumed, and
 * how long sending and processing took.
 *
 * @module
 */

import {
  type Attributes,
  type Counter,
  createNoopMeter,
  type Histogram,
  type Meter,
  ValueType,
} from "@opentelemetry/api";
import { ATTR, DURATION_BUCKETS, errorType, METRIC } from "./semconv.ts";

/** Records one operation: a message sent, or a handler call. */
export interface OperationRecorder {
  /** Clock reading to pass to `done`; 0 when nothing measures durations. */
  start(): number;
  /** Counts a successful operation and records its duration. */
  done(attributes: Attributes, started: number): void;
  /** Counts a failed operation, with its `error.type`, and records its duration. */
  failed(attributes: Attributes, started: number, error: unknown): void;
}

/** The recorders of sent messages and of handler calls. */
export interface MessagingInstruments {
  /** `messaging.client.sent.messages` and `messaging.client.operation.duration`. */
  readonly send: OperationRecorder;
  /** `messaging.client.consumed.messages` and `messaging.process.duration`. */
  readonly process: OperationRecorder;
  /** False on the API's no-op meter, where recording does nothing. */
  readonly measured: boolean;
}

/** Creates the instruments on `meter`. */
export function createInstruments(meter: Meter): MessagingInstruments {
  // The API's no-op meter records nothing, so the clock is not read for it.
  const measured = meter !== createNoopMeter();
  const durationOptions = {
    unit: "s",
    valueType: ValueType.DOUBLE,
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
  };
  const send = recorder(
    meter.createCounter(METRIC.sent, {
      unit: "{message}",
      description: "Messages the bus sent (bus.publish and bus.request), failed ones included.",
      valueType: ValueType.INT,
    }),
    meter.createHistogram(METRIC.operationDuration, {
      ...durationOptions,
      description: "Duration of sending a message, until the broker accepted it (or replied).",
    }),
    measured,
  );
  const process = recorder(
    meter.createCounter(METRIC.consumed, {
      unit: "{message}",
      description: "Messages delivered to handlers, one per delivery attempt.",
      valueType: ValueType.INT,
    }),
    meter.createHistogram(METRIC.processDuration, {
      ...durationOptions,
      description: "Duration of a handler call.",
    }),
    measured,
  );
  return { send, process, measured };
}

function recorder(counter: Counter, duration: Histogram, timed: boolean): OperationRecorder {
  const done = (attributes: Attributes, started: number): void => {
    counter.add(1, attributes);
    if (timed) duration.record((performance.now() - started) / 1000, attributes);
  };
  return {
    start: timed ? () => performance.now() : () => 0,
    done,
    failed(attributes: Attributes, started: number, error: unknown): void {
      done({ ...attributes, [ATTR.errorType]: errorType(error) }, started);
    },
  };
}
