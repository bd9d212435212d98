/**
 * A fetch handler for liveness and readiness probes: the bus's health as
 * JSON, 200 when healthy and 503 otherwise.
 *
 * @module
 */

import { InvalidArgumentError } from "../errors.ts";
import type { BusHealth } from "../eventbus.ts";
import type { FetchHandler } from "./receiver.ts";

/** Anything with a `health()` like `EventBus`. */
export interface HealthSource {
  /** The readiness to report. */
  health(): Promise<BusHealth>;
}

/**
 * Answers `GET` and `HEAD` with the bus's health (`application/json`,
 * `cache-control: no-store`): 200 when `ok`, 503 otherwise; other methods
 * get 405. Mount it on the probe path of your server.
 *
 * @example
 * ```ts
 * import { EventBus } from "@opensecflow/eventbus";
 * import { healthHandler } from "@opensecflow/eventbus/http";
 * await using bus = new EventBus();
 * await bus.start();
 * const probe = healthHandler(bus);
 * // Deno.serve({ port: 8081 }, probe);
 * const response = await probe(new Request("http://localhost/healthz"));
 * console.log(response.status); // 200
 * ```
 */
export function healthHandler(bus: HealthSource): FetchHandler {
  if (bus === null || typeof bus !== "object" || typeof bus.health !== "function") {
    throw new InvalidArgumentError("bus", "must be an object with health(), such as an EventBus");
  }
  return async (request: Request): Promise<Response> => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response(null, { status: 405, headers: { allow: "GET, HEAD" } });
    }
    let health: BusHealth | { ok: false; error: string };
    try {
      health = await bus.health();
    } catch (error) {
      health = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    return new Response(request.method === "HEAD" ? null : JSON.stringify(health), {
      status: health.ok ? 200 : 503,
      headers: { "content-type": "application/json", "cache-control": "no-store" },
    });
  };
}
