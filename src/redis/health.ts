/**
 * RedisBroker's readiness for probes: the connection and a ping's latency,
 * each stream subscription's consumer-group lag and pending entries (from
 * `XINFO GROUPS`), and the dead letters held per channel.
 *
 * @module
 */

import type { Redis } from "ioredis";
import type { BrokerHealth, BrokerState, SubscriptionHealth } from "../broker.ts";
import { deadline } from "../timers.ts";
import { safeError } from "./secrets.ts";

/** One subscription as the health check sees it. */
export interface HealthSubscription {
  readonly channel: string;
  readonly subscription: string;
  readonly queued: number;
  readonly running: number;
  /** Stream and consumer group, in stream mode. */
  readonly stream?: { readonly key: string; readonly group: string; readonly deadLetters: string };
}

/** What the health check needs from the broker. */
export interface HealthInput {
  readonly state: BrokerState;
  readonly command: Redis | undefined;
  readonly subscriptions: readonly HealthSubscription[];
  readonly timeout: number;
  readonly secrets: readonly string[];
}

type GroupInfo = Record<string, unknown>;

function groupsOf(reply: unknown): GroupInfo[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((row) => {
    const info: GroupInfo = {};
    if (Array.isArray(row)) {
      for (let i = 0; i + 1 < row.length; i += 2) info[String(row[i])] = row[i + 1];
    }
    return info;
  });
}

function count(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/**
 * Reads the broker's health from Redis; never rejects. Every round trip is
 * bounded by `timeout`, so a silent server makes the check fail, not hang.
 */
export async function redisHealth(input: HealthInput): Promise<BrokerHealth> {
  const local = input.subscriptions.map(({ channel, subscription, queued, running }) => ({
    channel,
    subscription,
    queued,
    running,
  }));
  const command = input.command;
  if (input.state !== "started" || command === undefined || command.status !== "ready") {
    return {
      ok: false,
      state: input.state,
      connected: command?.status === "ready",
      subscriptions: local,
      error: input.state === "started" ? "not connected to Redis" : `RedisBroker is ${input.state}`,
    };
  }
  const timedOut = (): never => {
    throw new Error(`Redis did not answer within ${input.timeout} ms`);
  };
  try {
    const started = performance.now();
    await deadline(command.ping(), input.timeout, timedOut);
    const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
    const streams = [
      ...new Map(
        input.subscriptions.filter((s) => s.stream).map((s) => [s.stream!.key, s.stream!]),
      ).values(),
    ];
    // One pipeline per stream: on a cluster, streams of different channels live on different nodes.
    const perStream = streams.map((stream) =>
      command.pipeline().xinfo("GROUPS", stream.key).xlen(stream.deadLetters).exec()
        .then((results) => results ?? [])
    );
    const replies = (await deadline(Promise.all(perStream), input.timeout, timedOut)).flat();
    const groups = new Map<string, GroupInfo[]>();
    const deadLetters: Record<string, number> = {};
    streams.forEach((stream, i) => {
      const [groupError, groupReply] = replies[2 * i] ?? [];
      const [, length] = replies[2 * i + 1] ?? [];
      groups.set(stream.key, groupError ? [] : groupsOf(groupReply));
      const channel = input.subscriptions.find((s) => s.stream?.key === stream.key)!.channel;
      deadLetters[channel] = Number(length ?? 0);
    });
    const subscriptions: SubscriptionHealth[] = input.subscriptions.map((sub) => {
      const base = {
        channel: sub.channel,
        subscription: sub.subscription,
        queued: sub.queued,
        running: sub.running,
      };
      if (sub.stream === undefined) return base;
      const info = groups.get(sub.stream.key)?.find((g) => g.name === sub.stream!.group);
      return { ...base, lag: count(info?.lag), pending: count(info?.pending) ?? 0 };
    });
    return {
      ok: true,
      state: input.state,
      connected: true,
      latencyMs,
      subscriptions,
      deadLetters,
    };
  } catch (error) {
    return {
      ok: false,
      state: input.state,
      connected: command.status === "ready",
      subscriptions: local,
      error: safeError(error, input.secrets).message,
    };
  }
}
