/**
 * Span names and base attributes per destination. They repeat for every
 * message of a channel, so each is built once and shared: the hot path then
 * allocates nothing for them, which keeps the middleware cheap when tracing
 * is off.
 *
 * @module
 */

import type { Attributes } from "@opentelemetry/api";
import { EventScope } from "../event.ts";
import { ATTR, MESSAGING_SYSTEM } from "./semconv.ts";

/** A span name and the attributes every span and metric of it carries. */
export interface Route {
  /** `{operation} {destination}`, as the conventions name messaging spans. */
  readonly name: string;
  /** Low-cardinality attributes, shared by spans and metrics (frozen). */
  readonly attributes: Attributes;
}

/** Routes remembered per map; beyond it (many dynamic channels) they are built per call. */
const MAX_ROUTES = 10_000;

/** The routes of sending and of processing, cached. */
export class RouteCache {
  readonly #send: Record<EventScope, Map<string, Route>> = {
    [EventScope.PROCESS]: new Map(),
    [EventScope.APP]: new Map(),
  };
  readonly #process: Record<EventScope, Map<string, Route>> = {
    [EventScope.PROCESS]: new Map(),
    [EventScope.APP]: new Map(),
  };

  /** The route of sending to `channel`. */
  send(scope: EventScope, channel: string): Route {
    const routes = this.#send[scope];
    let route = routes.get(channel);
    if (route === undefined) {
      route = buildRoute("send", scope, channel, undefined);
      if (routes.size < MAX_ROUTES) routes.set(channel, route);
    }
    return route;
  }

  /** The route of `subscription` processing messages of `channel`. */
  process(scope: EventScope, channel: string, subscription: string): Route {
    const routes = this.#process[scope];
    // Channels carry no control characters, so a newline cannot make two keys collide.
    const key = `${channel}\n${subscription}`;
    let route = routes.get(key);
    if (route === undefined) {
      route = buildRoute("process", scope, channel, subscription);
      if (routes.size < MAX_ROUTES) routes.set(key, route);
    }
    return route;
  }
}

function buildRoute(
  operation: "send" | "process",
  scope: EventScope,
  channel: string,
  subscription: string | undefined,
): Route {
  const attributes: Attributes = {
    [ATTR.system]: MESSAGING_SYSTEM,
    [ATTR.operationType]: operation,
    [ATTR.operationName]: operation,
    [ATTR.destination]: channel,
    [ATTR.scope]: scope,
  };
  if (subscription !== undefined) attributes[ATTR.consumerGroup] = subscription;
  return { name: `${operation} ${channel}`, attributes: Object.freeze(attributes) };
}
