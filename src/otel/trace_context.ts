/**
 * The CloudEvents Distributed Tracing extension: the `traceparent` and
 * `tracestate` extension attributes, in the W3C Trace Context format.
 *
 * The format is fixed by the extension, so it is read and written here rather
 * than through the global propagator, which may be a no-op or speak another
 * format whose keys are not valid CloudEvents attribute names.
 *
 * @module
 */

import {
  createTraceState,
  isSpanContextValid,
  type SpanContext,
  TraceFlags,
} from "@opentelemetry/api";
import type { ExtensionValue } from "../event.ts";

/** Extension attribute holding the W3C `traceparent`. */
export const TRACEPARENT = "traceparent";
/** Extension attribute holding the W3C `tracestate`. */
export const TRACESTATE = "tracestate";

// version "-" trace-id "-" parent-id "-" trace-flags, then fields of later versions.
const TRACEPARENT_FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
// Trace Context caps tracestate at 32 members of at most 256 characters each.
const MAX_TRACESTATE_LENGTH = 32 * 257;

/**
 * The span context an event's extensions carry, marked remote, or `undefined`
 * when `traceparent` is absent or malformed (the Trace Context rules: an
 * unknown version may add fields, version `ff` and all-zero ids are invalid).
 */
export function extractSpanContext(
  extensions: Readonly<Record<string, ExtensionValue>>,
): SpanContext | undefined {
  const traceparent = extensions[TRACEPARENT];
  if (typeof traceparent !== "string") return undefined;
  const match = TRACEPARENT_FORMAT.exec(traceparent.trim());
  if (match === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  const spanContext: SpanContext = {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16),
    isRemote: true,
  };
  if (!isSpanContextValid(spanContext)) return undefined;
  const tracestate = extensions[TRACESTATE];
  if (typeof tracestate === "string" && tracestate.length <= MAX_TRACESTATE_LENGTH) {
    spanContext.traceState = createTraceState(tracestate);
  }
  return spanContext;
}

/** The extension attributes that carry `spanContext` (version 00 of `traceparent`). */
export function traceContextExtensions(spanContext: SpanContext): Record<string, ExtensionValue> {
  const flags = (spanContext.traceFlags & 0xff) || TraceFlags.NONE;
  const extensions: Record<string, ExtensionValue> = {
    [TRACEPARENT]: `00-${spanContext.traceId}-${spanContext.spanId}-${
      flags.toString(16).padStart(2, "0")
    }`,
  };
  const tracestate = spanContext.traceState?.serialize();
  if (tracestate) extensions[TRACESTATE] = tracestate;
  return extensions;
}
