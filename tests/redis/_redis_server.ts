/**
 * A private `redis-server` for tests that stop, restart or lock down Redis:
 * it listens on a free loopback port with its own data directory, so the
 * shared server on 6379 is never touched. `await using` stops it and removes
 * its directory even when the test fails.
 *
 * @module
 */

/** Options of {@linkcode RedisServer.start}. */
export interface RedisServerOptions {
  /** Extra `redis-server` arguments, e.g. `["--appendonly", "yes"]` or `["--requirepass", "x"]`. */
  args?: string[];
  /** Milliseconds to wait for the server to answer PING; default 10000. */
  readyTimeout?: number;
  /**
   * Runs once in the fresh data directory before the first launch (e.g. to
   * write certificates there); the arguments it returns follow `args` on
   * every launch.
   */
  prepare?: (dir: string) => Promise<string[]>;
}

/** How {@linkcode RedisServer.stop} ends the server. */
export type StopMode = "kill" | "shutdown";

/** Longest a single PING probe may take before it counts as "not ready yet". */
const PROBE_TIMEOUT_MS = 500;
/** Pause between two PING probes. */
const PROBE_INTERVAL_MS = 20;

/**
 * A loopback port nobody listens on right now: bind port 0, read what the OS
 * picked, release it.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Sends one inline `PING` over raw TCP and returns the first reply line
 * (`+PONG`, `-NOAUTH ...`, `-LOADING ...`), or `undefined` when nothing
 * answers in time.
 */
export async function rawPing(
  port: number,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<string | undefined> {
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => conn?.close(), timeoutMs);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(256);
    let text = "";
    while (!text.includes("\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) return undefined;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return text.slice(0, text.indexOf("\r\n"));
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // already closed by the timer
    }
  }
}

/** A `redis-server` child process on a private port and directory. */
export class RedisServer {
  /** Loopback port the server listens on (kept across restarts). */
  readonly port: number;
  /** Data directory (kept across restarts, removed on dispose). */
  readonly dir: string;
  readonly #args: string[];
  readonly #readyTimeout: number;
  #child: Deno.ChildProcess | undefined;

  private constructor(port: number, dir: string, args: string[], readyTimeout: number) {
    this.port = port;
    this.dir = dir;
    this.#args = args;
    this.#readyTimeout = readyTimeout;
  }

  /** Starts a server and resolves once it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await Deno.makeTempDir({ prefix: "eventbus-redis-" });
    const args = [...options.args ?? []];
    const server = new RedisServer(freePort(), dir, args, options.readyTimeout ?? 10_000);
    try {
      if (options.prepare) args.push(...await options.prepare(dir));
      await server.#launch();
    } catch (error) {
      await server.dispose();
      throw error;
    }
    return server;
  }

  /** `redis://127.0.0.1:<port>`, optionally with a password. */
  url(password?: string): string {
    return password === undefined
      ? `redis://127.0.0.1:${this.port}`
      : `redis://:${encodeURIComponent(password)}@127.0.0.1:${this.port}`;
  }

  /** Whether the server process is running. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  async #launch(): Promise<void> {
    if (this.#child) throw new Error("redis-server already running");
    const args = [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.dir,
      "--save",
      "",
      "--logfile",
      "redis.log",
      "--daemonize",
      "no",
      ...this.#args,
    ];
    this.#child = new Deno.Command("redis-server", {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const exited = this.#child.status.then(() => true);
    const deadline = Date.now() + this.#readyTimeout;
    while (Date.now() < deadline) {
      const reply = await rawPing(this.port);
      // NOAUTH proves the server is up when it requires a password.
      if (reply === "+PONG" || reply?.startsWith("-NOAUTH")) return;
      const gone = await Promise.race([exited, delay(PROBE_INTERVAL_MS).then(() => false)]);
      if (gone) {
        this.#child = undefined;
        throw new Error(
          `redis-server exited at start; see ${this.dir}/redis.log:\n${await this.log()}`,
        );
      }
    }
    await this.stop();
    throw new Error(`redis-server did not answer PING within ${this.#readyTimeout} ms`);
  }

  /** The server's log file, for diagnostics. */
  async log(): Promise<string> {
    try {
      return await Deno.readTextFile(`${this.dir}/redis.log`);
    } catch {
      return "";
    }
  }

  /**
   * Stops the server: `"kill"` (default) is a crash (SIGKILL, no goodbye),
   * `"shutdown"` asks it to exit (SIGTERM). Resolves when the process is gone.
   */
  async stop(mode: StopMode = "kill"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill(mode === "kill" ? "SIGKILL" : "SIGTERM");
    } catch {
      // already exited
    }
    await child.status;
  }

  /** Starts the server again on the same port and directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#launch();
  }

  /** Stops the server (if running) and removes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** `await using server = await RedisServer.start()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
