/**
 * Options of the OpenTelemetry instrumentation, and the tracer and meter they
 * resolve to.
 *
 * @module
 */

import { type Meter, metrics, ProxyTracerProvider, trace, type Tracer } from "@opentelemetry/api";
import { excerpt, InvalidArgumentError } from "../errors.ts";

/**
 * A `TracerProvider` of `@opentelemetry/api` (or of any SDK), as far as this
 * module needs one.
 *
 * @example
 * ```ts
 * import type { TracerProviderLike } from "@opensecflow/eventbus/otel";
 * import { trace } from "@opentelemetry/api";
 * const provider: TracerProviderLike = trace.getTracerProvider();
 * ```
 */
export interface TracerProviderLike {
  /** Returns the `Tracer` of an instrumentation scope. */
  getTracer(name: string): object;
}

/**
 * A `MeterProvider` of `@opentelemetry/api` (or of any SDK), as far as this
 * module needs one.
 *
 * @example
 * ```ts
 * import type { MeterProviderLike } from "@opensecflow/eventbus/otel";
 * import { metrics } from "@opentelemetry/api";
 * const provider: MeterProviderLike = metrics.getMeterProvider();
 * ```
 */
export interface MeterProviderLike {
  /** Returns the `Meter` of an instrumentation scope. */
  getMeter(name: string): object;
}

/**
 * Options of {@linkcode openTelemetry} and {@linkcode instrument}.
 *
 * @example
 * ```ts
 * import type { OpenTelemetryOptions } from "@opensecflow/eventbus/otel";
 * import { metrics, trace } from "@opentelemetry/api";
 * const options: OpenTelemetryOptions = {
 *   tracerProvider: trace.getTracerProvider(),
 *   meterProvider: metrics.getMeterProvider(),
 * };
 * ```
 */
export interface OpenTelemetryOptions {
  /** Where spans go; default the global tracer provider of `@opentelemetry/api`. */
  tracerProvider?: TracerProviderLike;
  /**
   * Where metrics go; default the global meter provider of `@opentelemetry/api`
   * as it is when the instrumentation is created (register the SDK first).
   */
  meterProvider?: MeterProviderLike;
}

/** Instrumentation scope name of every tracer and meter. */
export const SCOPE_NAME = "@opensecflow/eventbus";

const KNOWN_OPTIONS = new Set(["tracerProvider", "meterProvider"]);

/** A tracer and a meter from validated options. */
export interface Telemetry {
  readonly tracer: Tracer;
  readonly meter: Meter;
  /**
   * Whether the tracer may record: `false` for the API's no-op tracer,
   * `true` for any other tracer (an SDK's, or one this module cannot see
   * into), or the proxy provider (the global one included) whose delegate
   * decides per call, since an SDK may be set behind it later: see
   * {@linkcode hasNoSdk}.
   */
  readonly tracing: boolean | ProxyTracerProvider;
}

/** The provider the API's proxies delegate to while no SDK is registered. */
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();
/** The class of the API's no-op tracer (not exported by the API): its spans never record. */
const NOOP_TRACER_CLASS: abstract new () => Tracer = NOOP_TRACER_PROVIDER.getTracer(SCOPE_NAME)
  .constructor as abstract new () => Tracer;

/** True while no SDK is set behind `proxy`: every span of its tracers is a no-op. */
export function hasNoSdk(proxy: ProxyTracerProvider): boolean {
  return proxy.getDelegate() === NOOP_TRACER_PROVIDER;
}

/** Checks the options and gets the tracer and meter they name. */
export function resolveOptions(options: OpenTelemetryOptions | undefined): Telemetry {
  if (options === undefined) options = {};
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError("options", `must be an object, got ${excerpt(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new InvalidArgumentError(
        `options.${key}`,
        "is not an option; use tracerProvider or meterProvider",
      );
    }
  }
  const { tracerProvider, meterProvider } = options;
  if (tracerProvider !== undefined && typeof tracerProvider?.getTracer !== "function") {
    throw new InvalidArgumentError(
      "tracerProvider",
      `must be an OpenTelemetry TracerProvider (with getTracer()), got ${excerpt(tracerProvider)}`,
    );
  }
  if (meterProvider !== undefined && typeof meterProvider?.getMeter !== "function") {
    throw new InvalidArgumentError(
      "meterProvider",
      `must be an OpenTelemetry MeterProvider (with getMeter()), got ${excerpt(meterProvider)}`,
    );
  }
  // The providers are typed structurally so this module's public types name
  // nothing of the API package; what they return is the API's Tracer and Meter.
  const tracers = tracerProvider ?? trace.getTracerProvider();
  const tracer = tracers.getTracer(SCOPE_NAME) as Tracer;
  return {
    tracer,
    meter: (meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE_NAME) as Meter,
    tracing: tracers instanceof ProxyTracerProvider
      ? tracers
      : !(tracer instanceof NOOP_TRACER_CLASS),
  };
}
