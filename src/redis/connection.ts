/**
 * Opening and closing the broker's ioredis connections, with errors logged
 * once per outage and never with credentials.
 *
 * @module
 */

import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { BrokerError } from "../errors.ts";
import type { Reporter } from "../reporter.ts";
import { deadline } from "../timers.ts";
import type { ResolvedRedisOptions } from "./options.ts";
import { redact, safeError } from "./secrets.ts";

/** What a connection is for; named in logs. */
export type ConnectionRole = "command" | "blocking" | "subscriber";

/**
 * Creates a connection that does not connect until {@linkcode connectWithin}.
 * `overrides` win over the user's ioredis options, which win over the URL.
 * With `cluster` options it is an ioredis `Cluster` (see {@linkcode createCluster}).
 */
export function createConnection(
  options: ResolvedRedisOptions,
  reporter: Reporter,
  role: ConnectionRole,
  overrides: RedisOptions = {},
): Redis {
  const client = options.cluster === undefined
    ? new Redis(options.url, {
      maxRetriesPerRequest: null,
      ...(options.redis as RedisOptions),
      ...overrides,
      lazyConnect: true,
    })
    : createCluster(options.cluster, options, role, overrides);
  watchErrors(client, options, reporter, role);
  return client;
}

/** How soon a cluster client asks again which node owns which slot after a failure (ms). */
const CLUSTER_RETRY_MS = 100;

/**
 * An ioredis `Cluster` on `nodes`, typed as the `Redis` the rest of the
 * broker speaks to: the broker uses only commands, pipelines, MULTI, status
 * and connection events, which `Cluster` has with the same signatures; the
 * one difference, sharded pub/sub, is handled in the subscriber and the
 * publisher. Every key of a channel shares one hash slot, so each pipeline
 * or transaction the broker sends lands on one node, and ioredis follows
 * MOVED/ASK and re-reads the slot map after a failover.
 */
function createCluster(
  nodes: readonly string[],
  options: ResolvedRedisOptions,
  role: ConnectionRole,
  overrides: RedisOptions = {},
): Redis {
  const first = new URL(nodes[0]);
  const fromUrl: RedisOptions = {};
  if (first.username) fromUrl.username = decodeURIComponent(first.username);
  if (first.password) fromUrl.password = decodeURIComponent(first.password);
  if (first.protocol === "rediss:") fromUrl.tls = {};
  const { enableAutoPipelining, ...perNode } = overrides;
  const clusterOptions: ClusterOptions = {
    lazyConnect: true,
    enableAutoPipelining,
    shardedSubscribers: role === "subscriber",
    retryDelayOnFailover: CLUSTER_RETRY_MS,
    retryDelayOnClusterDown: CLUSTER_RETRY_MS,
    retryDelayOnTryAgain: CLUSTER_RETRY_MS,
    // A dead master is noticed through failed commands; the periodic refresh finds the promoted replica.
    slotsRefreshInterval: 1_000,
    redisOptions: {
      maxRetriesPerRequest: null,
      ...fromUrl,
      ...(options.redis as RedisOptions),
      ...perNode,
    },
  };
  const startup = nodes.map((url) => {
    const parsed = new URL(url);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  const cluster = new Cluster(startup, clusterOptions);
  routeByFirstArgument(cluster);
  return cluster as unknown as Redis;
}

/** Commands whose key follows a subcommand (`XGROUP CREATE key ...`). */
const KEY_AFTER_SUBCOMMAND = new Set(["xgroup", "xinfo"]);

/** The part of an ioredis command the routing below reads and sets. */
interface RoutedCommand {
  name: string;
  args: unknown[];
  keys?: unknown[];
}

/**
 * ioredis finds no key in XGROUP and XINFO, so a cluster would send them to
 * a random node and follow the MOVED reply: a round trip later, after a
 * publish written meanwhile, and a new group created from `$` would miss it.
 * Naming the key routes them to the stream's node, in order with the rest.
 */
function routeByFirstArgument(cluster: Cluster): void {
  const send = cluster.sendCommand.bind(cluster);
  cluster.sendCommand = ((command: RoutedCommand, ...rest: unknown[]) => {
    if (KEY_AFTER_SUBCOMMAND.has(command.name) && command.keys === undefined) {
      command.keys = [command.args[1]];
    }
    return (send as (...args: unknown[]) => unknown)(command, ...rest);
  }) as unknown as Cluster["sendCommand"];
}

function ignore(): void {}

/**
 * ioredis listens for one error per socket. A TLS socket can fail twice:
 * under Deno a handshake the server refuses (no client certificate) reports
 * the server's alert, then still connects, and the commands ioredis then
 * writes fail with EPIPE, which, unheard, would end the process. The first
 * error is reported; those that follow on the same socket are its echo.
 */
function absorbLaterErrors(client: Redis): void {
  const socket: Redis["stream"] | undefined = client.stream;
  if (socket !== undefined && !socket.listeners("error").includes(ignore)) {
    socket.on("error", ignore);
  }
}

function watchErrors(
  client: Redis,
  options: ResolvedRedisOptions,
  reporter: Reporter,
  role: ConnectionRole,
): void {
  let failing = false;
  client.on("error", (error: unknown) => {
    absorbLaterErrors(client);
    // ioredis repeats the error on every reconnect attempt; one line per outage is enough.
    if (failing) return;
    failing = true;
    reporter.log(
      "warn",
      `redis ${role} connection to ${options.maskedUrl}: ${
        safeError(error, options.secrets).message
      }`,
    );
  });
  client.on("ready", () => {
    if (failing) reporter.log("info", `redis ${role} connection to ${options.maskedUrl} is back`);
    failing = false;
  });
}

/**
 * Connects, or rejects with {@linkcode BrokerError} (credentials removed)
 * after `connectTimeout` ms or on the first failure; a failed connection is
 * closed so nothing keeps retrying in the background.
 */
export async function connectWithin(
  client: Redis,
  options: ResolvedRedisOptions,
  role: ConnectionRole,
): Promise<void> {
  if (client.status === "ready") return;
  let onError: ((error: unknown) => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    onError = (error) => reject(error);
    client.once("error", onError);
  });
  try {
    const connecting = client.status === "wait" ? client.connect() : waitReady(client);
    await deadline(Promise.race([connecting, failed]), options.connectTimeout, () => {
      throw new Error(`no connection within ${options.connectTimeout} ms`);
    });
  } catch (error) {
    client.disconnect();
    throw new BrokerError(
      `cannot connect the redis ${role} connection to ${options.maskedUrl}: ${
        redact(error instanceof Error ? error.message : String(error), options.secrets)
      }`,
      { cause: safeError(error, options.secrets) },
    );
  } finally {
    if (onError) client.off("error", onError);
  }
}

/**
 * Resolves when the connection is ready (or is closed for good), or when
 * `signal` aborts; its listeners are removed either way, so waiting in a loop
 * during an outage leaves none behind.
 */
export function waitReady(client: Redis, signal?: AbortSignal): Promise<void> {
  if (client.status === "ready" || client.status === "end" || signal?.aborted) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const done = () => {
      client.off("ready", done);
      client.off("end", done);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    client.on("ready", done);
    client.on("end", done);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Longest wait for QUIT before the connection is dropped. */
const QUIT_TIMEOUT_MS = 1_000;

/**
 * Closes a connection: QUIT when it is up (pending replies arrive first,
 * bounded by a short timeout), else drop it.
 */
export async function closeConnection(client: Redis): Promise<void> {
  if (client.status === "end") return;
  if (client.status !== "ready") {
    client.disconnect();
    return;
  }
  try {
    await deadline(client.quit(), QUIT_TIMEOUT_MS, () => undefined);
  } catch {
    // dropped below
  } finally {
    client.disconnect();
  }
}
