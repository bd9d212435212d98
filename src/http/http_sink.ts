/**
 * A bus handler that forwards events to a webhook.
 *
 * @module
 */

import type { MessageContext } from "../broker.ts";
import { InvalidArgumentError } from "../errors.ts";
import { CloudEvent } from "../event.ts";
import { redactUrl } from "./delivery_error.ts";
import { resolveSendOptions, type SendEventOptions } from "./delivery.ts";
import { sendEvent } from "./send_event.ts";
import { checkOutgoingMode, checkSinkUrl } from "./to_http_request.ts";

/**
 * Options of {@linkcode httpSink}: those of `sendEvent` but `signal` (the
 * handler uses the delivery's own), plus a subscription name.
 *
 * @example
 * ```ts
 * import type { HttpSinkOptions } from "@opensecflow/eventbus/http";
 * const options: HttpSinkOptions = { name: "crm-webhook", attempts: 6 };
 * ```
 */
export interface HttpSinkOptions extends Omit<SendEventOptions, "signal"> {
  /** Name of the handler, hence of its subscription. Default `httpSink <url>`. */
  name?: string;
}

/**
 * Creates a handler that POSTs every event it gets to `url`, with the retries
 * of `sendEvent`. Subscribe it like any handler; a delivery that fails for
 * good throws `HttpDeliveryError`, which the broker reports (and a durable
 * broker retries or dead-letters). A graceful stop that runs out of time
 * aborts the retries.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { httpSink } from "@opensecflow/eventbus/http";
 * const bus = new EventBus();
 * bus.subscribe("order.created", httpSink("https://example.com/hooks/orders", { attempts: 5 }));
 * ```
 */
export function httpSink(
  url: string | URL,
  options: HttpSinkOptions = {},
): (event: CloudEvent, context?: MessageContext) => Promise<void> {
  const target = checkSinkUrl(url);
  resolveSendOptions(options);
  checkOutgoingMode(options.mode);
  const { name, ...sendOptions } = options;
  if (name !== undefined && (typeof name !== "string" || name.trim() === "")) {
    throw new InvalidArgumentError("name", "must be a non-empty string");
  }
  const sink = async (event: CloudEvent, context?: MessageContext): Promise<void> => {
    const message = event instanceof CloudEvent ? event : CloudEvent.fromJSON(event);
    await sendEvent(message, target, { ...sendOptions, signal: context?.signal });
  };
  Object.defineProperty(sink, "name", { value: name ?? `httpSink ${redactUrl(target)}` });
  return sink;
}
