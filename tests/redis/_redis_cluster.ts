/**
 * A private Redis Cluster for tests: 3 masters and 3 replicas, each a
 * {@linkcode RedisServer} on free loopback ports (client and cluster bus),
 * joined with `redis-cli --cluster create`. `await using` stops every node
 * and removes their directories. Nothing touches the shared server on 6379.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { Redis } from "ioredis";
import { RedisServer } from "./_redis_server.ts";

/** Options of {@linkcode RedisCluster.start}. */
export interface RedisClusterOptions {
  /** Masters; default 3 (the least Redis Cluster accepts). */
  masters?: number;
  /** Replicas per master; default 1. */
  replicas?: number;
  /** Extra `redis-server` arguments for every node, e.g. `["--appendonly", "yes"]`. */
  args?: string[];
  /** Milliseconds to wait for `cluster_state:ok`; default 30000. */
  readyTimeout?: number;
}

async function run(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (!output.success) throw new Error(`${command} ${args.join(" ")} failed:\n${text}`);
  return text;
}

/** A running Redis Cluster of private `redis-server`s. */
export class RedisCluster {
  /** Every node, masters first as created (roles change after a failover). */
  readonly nodes: readonly RedisServer[];

  private constructor(nodes: RedisServer[]) {
    this.nodes = nodes;
  }

  /** Starts the nodes, creates the cluster and waits until every node says `cluster_state:ok`. */
  static async start(options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = options.masters ?? 3;
    const replicas = options.replicas ?? 1;
    const count = masters * (1 + replicas);
    const nodes: RedisServer[] = [];
    const cluster = new RedisCluster(nodes);
    try {
      for (let i = 0; i < count; i++) {
        nodes.push(
          await RedisServer.start({
            args: [
              "--cluster-enabled",
              "yes",
              "--cluster-config-file",
              "nodes.conf",
              "--cluster-node-timeout",
              "2000",
              // Redis waits 5 s by default before a diskless full sync: a fresh
              // replica would leave WAIT unanswered for that long.
              "--repl-diskless-sync-delay",
              "0",
              ...(options.args ?? []),
            ],
            portOptions: ["--cluster-port"],
          }),
        );
      }
      await run("redis-cli", [
        "--cluster",
        "create",
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ]);
      await cluster.waitHealthy(options.readyTimeout ?? 30_000);
    } catch (error) {
      await cluster.dispose();
      throw error;
    }
    return cluster;
  }

  /** `redis://127.0.0.1:<port>` of every node. */
  urls(): string[] {
    return this.nodes.map((node) => node.url());
  }

  /** Runs `redis-cli -p <port> <args>` against one node. */
  cli(node: RedisServer, ...args: string[]): Promise<string> {
    return run("redis-cli", ["-p", String(node.port), ...args]);
  }

  /**
   * Resolves once every running node reports `cluster_state:ok` and every
   * running replica has its link to its master up (until then WAIT counts it
   * out); rejects after `timeout` ms.
   */
  async waitHealthy(timeout: number): Promise<void> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const states = await Promise.all(
        this.nodes.filter((node) => node.running).map(async (node) => {
          const info = await this.cli(node, "cluster", "info").catch(() => "");
          const replication = await this.cli(node, "info", "replication").catch(() => "");
          return info.includes("cluster_state:ok") &&
            (replication.includes("role:master") ||
              replication.includes("master_link_status:up"));
        }),
      );
      if (states.every(Boolean)) return;
      if (Date.now() > deadline) {
        throw new Error(`the cluster was not ok within ${timeout} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The running masters, as the cluster sees them now. */
  async masters(): Promise<RedisServer[]> {
    const out: RedisServer[] = [];
    for (const node of this.nodes.filter((n) => n.running)) {
      const role = await this.cli(node, "role").catch(() => "");
      if (role.startsWith("master")) out.push(node);
    }
    return out;
  }

  /** The running master that owns `key`'s hash slot now. */
  async ownerOf(key: string): Promise<RedisServer> {
    for (const node of await this.masters()) {
      const slot = Number((await this.cli(node, "cluster", "keyslot", key)).trim());
      if (await this.#ownsSlot(node, slot)) return node;
    }
    throw new Error(`no running master owns the slot of ${key}`);
  }

  async #ownsSlot(node: RedisServer, slot: number): Promise<boolean> {
    // The "myself" line of CLUSTER NODES ends with the node's slot ranges.
    const nodes = await this.cli(node, "cluster", "nodes");
    const mine = nodes.split("\n").find((line) => line.includes("myself"));
    if (mine === undefined || !mine.includes("master")) return false;
    return mine.trim().split(" ").slice(8).some((range) => {
      if (range.startsWith("[")) return false;
      const [from, to] = range.split("-").map(Number);
      return slot >= from && slot <= (to ?? from);
    });
  }

  /** The cluster node id of `node` (`CLUSTER MYID`). */
  async idOf(node: RedisServer): Promise<string> {
    return (await this.cli(node, "cluster", "myid")).trim();
  }

  /**
   * Moves the hash slot of `key` from the master owning it to `target`, as
   * `redis-cli --cluster reshard` does: `IMPORTING` on the target,
   * `MIGRATING` on the owner, `MIGRATE` of the slot's keys `batch` at a time
   * until none is left (keys written meanwhile included), then `SETSLOT
   * NODE` on every master. `between` runs after each `MIGRATE` (pacing, or a
   * look at the cluster mid-move). Resolves with the number of keys moved.
   */
  async migrateSlot(
    key: string,
    target: RedisServer,
    options: { batch?: number; between?: () => Promise<void> } = {},
  ): Promise<number> {
    const source = await this.ownerOf(key);
    if (source.port === target.port) throw new Error(`${key} is on ${target.port} already`);
    const [sourceId, targetId] = [await this.idOf(source), await this.idOf(target)];
    const slot = (await this.cli(source, "cluster", "keyslot", key)).trim();
    await this.cli(target, "cluster", "setslot", slot, "importing", sourceId);
    await this.cli(source, "cluster", "setslot", slot, "migrating", targetId);
    // Key names may hold any byte (a NUL in a digest): they go through a client, not redis-cli.
    const admin = new Redis(source.url(), { lazyConnect: true });
    await admin.connect();
    let moved = 0;
    try {
      for (;;) {
        const keys = await admin.callBuffer(
          "cluster",
          "getkeysinslot",
          slot,
          String(options.batch ?? 10),
        ) as Buffer[];
        if (keys.length === 0) break;
        await admin.callBuffer(
          "migrate",
          "127.0.0.1",
          String(target.port),
          "",
          "0",
          "5000",
          "KEYS",
          ...keys,
        );
        moved += keys.length;
        await options.between?.();
      }
    } finally {
      admin.disconnect();
    }
    // The target first, then the source (as Redis documents): no node is left pointing nowhere.
    const others = (await this.masters()).filter((node) =>
      node.port !== target.port && node.port !== source.port
    );
    for (const node of [target, source, ...others]) {
      await this.cli(node, "cluster", "setslot", slot, "node", targetId);
    }
    return moved;
  }

  /** Deletes the keys starting with `prefix` on every running master. */
  async deleteKeys(prefix: string): Promise<void> {
    for (const node of await this.masters()) {
      const admin = new Redis(node.url(), { lazyConnect: true });
      await admin.connect();
      try {
        let cursor = "0";
        do {
          const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
          cursor = next;
          // One DEL per key: keys of different slots cannot share a command on a cluster.
          const pipeline = admin.pipeline();
          for (const key of keys) pipeline.del(key);
          if (keys.length > 0) await pipeline.exec();
        } while (cursor !== "0");
      } finally {
        admin.disconnect();
      }
    }
  }

  /** Stops every node and removes their directories. */
  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.dispose()));
  }

  /** `await using cluster = await RedisCluster.start()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
