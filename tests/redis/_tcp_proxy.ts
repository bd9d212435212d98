/**
 * A loopback TCP proxy in front of a Redis server, so a test can cut one
 * broker off from Redis without touching anyone else's connections: it knows
 * the local port of every upstream connection it opened, which is the `addr`
 * Redis shows in `CLIENT LIST` and accepts in `CLIENT KILL`.
 *
 * @module
 */

interface Pair {
  client: Deno.Conn;
  upstream: Deno.Conn;
  done: Promise<void>;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await from.read(buffer);
      if (n === null) return;
      let offset = 0;
      while (offset < n) offset += await to.write(buffer.subarray(offset, n));
    }
  } catch {
    // either side closed: the pair is torn down below
  }
}

/** A proxy listening on a free loopback port, forwarding to `127.0.0.1:<targetPort>`. */
export class TcpProxy {
  /** Port clients connect to. */
  readonly port: number;
  readonly #targetPort: number;
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> | undefined;
  readonly #pairs = new Set<Pair>();
  readonly #pending = new Set<Promise<void>>();

  constructor(targetPort = 6379) {
    this.#targetPort = targetPort;
    // Bound at once on a port the OS picks: a port picked first and bound later could be taken.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#serve(listener);
  }

  /** `redis://127.0.0.1:<proxy port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** `ip:port` of every open upstream connection, as Redis sees the client. */
  upstreamAddrs(): Set<string> {
    const addrs = new Set<string>();
    for (const pair of this.#pairs) {
      const local = pair.upstream.localAddr as Deno.NetAddr;
      addrs.add(`${local.hostname}:${local.port}`);
    }
    return addrs;
  }

  #listen(): void {
    this.#serve(Deno.listen({ hostname: "127.0.0.1", port: this.port }));
  }

  #serve(listener: Deno.Listener): void {
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const client of listener) this.#connect(client);
      } catch {
        // listener closed
      }
    })();
  }

  #connect(client: Deno.Conn): void {
    const pair = { client } as Pair;
    pair.done = (async () => {
      try {
        pair.upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
      } catch {
        closeQuietly(client);
        return;
      }
      this.#pairs.add(pair);
      const teardown = () => {
        closeQuietly(pair.client);
        closeQuietly(pair.upstream);
      };
      await Promise.all([
        pump(client, pair.upstream).finally(teardown),
        pump(pair.upstream, client).finally(teardown),
      ]);
      this.#pairs.delete(pair);
    })();
    // Track the pair before its upstream exists, so close() waits for it too.
    this.#pending.add(pair.done);
    pair.done.finally(() => this.#pending.delete(pair.done));
  }

  /** Stops accepting new connections (existing ones keep flowing). */
  async refuse(): Promise<void> {
    const listener = this.#listener;
    if (!listener) return;
    this.#listener = undefined;
    try {
      listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
  }

  /** Accepts connections again on the same port (after {@linkcode refuse}). */
  accept(): void {
    if (!this.#listener) this.#listen();
  }

  /** Closes every proxied connection from the proxy's side. */
  async dropAll(): Promise<void> {
    for (const pair of this.#pairs) {
      closeQuietly(pair.client);
      closeQuietly(pair.upstream);
    }
    await Promise.all([...this.#pending]);
  }

  /** Stops accepting and closes everything; resolves when every pump ended. */
  async close(): Promise<void> {
    await this.refuse();
    await this.dropAll();
  }

  /** `await using proxy = new TcpProxy()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
