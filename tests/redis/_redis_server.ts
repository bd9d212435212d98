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
  /**
   * Options that take a port of their own besides `--port` (`--cluster-port`,
   * `--tls-port`): each gets a free one, picked again with the client port
   * when a launch finds a port taken; read it with {@linkcode RedisServer.portOf}.
   */
  portOptions?: string[];
}

/** How {@linkcode RedisServer.stop} ends the server. */
export type StopMode = "kill" | "shutdown";

/** Longest a single PING probe may take before it counts as "not ready yet". */
const PROBE_TIMEOUT_MS = 500;
/** Pause between two PING probes. */
const PROBE_INTERVAL_MS = 20;
/**
 * Launches of {@linkcode RedisServer.start}: a port found free can be taken by
 * another process (a parallel test) before redis-server binds it.
 */
const START_ATTEMPTS = 3;
/** What redis-server logs (at the default log level) once it listens and serves commands. */
const READY_LINE = "Ready to accept connections";

/**
 * A loopback port nobody listens on right now: bind port 0, read what the OS
 * picked, release it.
 */
export function freePort(): number {
  return freePorts(1)[0];
}

/** `count` distinct loopback ports nobody listens on right now. */
function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((listener) => (listener.addr as Deno.NetAddr).port);
  for (const listener of listeners) listener.close();
  return ports;
}

/** A launch that failed because a port was taken between its pick and the bind. */
class PortTakenError extends Error {}

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
  /** Data directory (kept across restarts, removed on dispose). */
  readonly dir: string;
  readonly #args: string[];
  readonly #readyTimeout: number;
  /** Every port option and its port, `--port` first; picked by start, kept across restarts. */
  readonly #ports: Map<string, number>;
  #child: Deno.ChildProcess | undefined;

  private constructor(dir: string, args: string[], portOptions: string[], readyTimeout: number) {
    this.dir = dir;
    this.#args = args;
    this.#readyTimeout = readyTimeout;
    this.#ports = new Map(["--port", ...portOptions].map((option) => [option, 0]));
  }

  /** Starts a server and resolves once it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await Deno.makeTempDir({ prefix: "eventbus-redis-" });
    const args = [...options.args ?? []];
    const server = new RedisServer(
      dir,
      args,
      options.portOptions ?? [],
      options.readyTimeout ?? 10_000,
    );
    try {
      if (options.prepare) args.push(...await options.prepare(dir));
      for (let attempt = 1;; attempt++) {
        const ports = freePorts(server.#ports.size);
        for (const option of server.#ports.keys()) server.#ports.set(option, ports.shift()!);
        try {
          await server.#launch();
          break;
        } catch (error) {
          if (!(error instanceof PortTakenError) || attempt === START_ATTEMPTS) throw error;
        }
      }
    } catch (error) {
      await server.dispose();
      throw error;
    }
    return server;
  }

  /** Loopback port the server listens on (kept across restarts). */
  get port(): number {
    return this.#ports.get("--port")!;
  }

  /** The port of one of {@linkcode RedisServerOptions.portOptions} (kept across restarts). */
  portOf(option: string): number {
    const port = this.#ports.get(option);
    if (port === undefined) throw new Error(`${option} is not a port option of this server`);
    return port;
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
    // The log of this launch only: the file keeps those of earlier launches.
    const logFrom = (await this.log()).length;
    const launchLog = async () => (await this.log()).slice(logFrom);
    const args = [
      ...[...this.#ports].flatMap(([option, port]) => [option, String(port)]),
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
      // NOAUTH proves the server is up when it requires a password. The log line proves it
      // is this server: another process may have taken the port first.
      if (
        (reply === "+PONG" || reply?.startsWith("-NOAUTH")) &&
        (await launchLog()).includes(READY_LINE)
      ) {
        return;
      }
      const gone = await Promise.race([exited, delay(PROBE_INTERVAL_MS).then(() => false)]);
      if (gone) {
        this.#child = undefined;
        const log = await launchLog();
        const message = `redis-server exited at start; see ${this.dir}/redis.log:\n${log}`;
        throw log.includes("Address already in use")
          ? new PortTakenError(message)
          : new Error(message);
      }
    }
    await this.stop();
    throw new Error(
      `redis-server did not answer PING (and log "${READY_LINE}") within ${this.#readyTimeout} ms`,
    );
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

  /** Starts the server again on the same ports and directory. */
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
