/**
 * Deno KV section of the benchmark: messages per second end to end
 * (publish -> handler -> settled) through `KvBroker`, next to a hand-written
 * `enqueue`/`listenQueue` loop on local database files, in two shapes:
 *
 * - windowed: up to 100 publishes (or enqueues) in flight at once;
 * - one at a time: each publish awaited before the next.
 *
 * Rounds alternate between the two sides so both see the same machine load;
 * each side reports the median of its rounds. Each round has a fresh
 * database file; the files are removed afterwards.
 *
 * Run alone: `deno run -A bench/kv_bench.ts`.
 *
 * @module
 */

import { silentLogger } from "../mod.ts";
import { KvBroker } from "../kv.ts";
import { collectGarbage, envInt, median, registerSection, type Row } from "./bench_util.ts";

const EVENTS = envInt("BENCH_KV_EVENTS", 3_000);
const ROUNDS = envInt("BENCH_KV_ROUNDS", 3);
const WINDOW = envInt("BENCH_KV_WINDOW", 100);
const WARMUP_EVENTS = 300;
const DEADLINE_MS = 120_000;

/** A message like an application would send. */
function message(n: number): { n: number; orderId: string; amount: number } {
  return { n, orderId: `ORD-${n}`, amount: 12.5 };
}

/** Keeps up to `window` calls of `send` in flight until `count` were issued. */
async function publishWindowed(
  count: number,
  window: number,
  send: (n: number) => Promise<unknown>,
): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  for (let n = 0; n < count; n++) {
    while (inFlight.size >= window) await Promise.race(inFlight);
    const tracked: Promise<unknown> = send(n).finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
}

/** Counts handled messages; `done` resolves at `target`, or at the deadline. */
function counter(target: number): { tick(): void; count(): number; done: Promise<void> } {
  let count = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const timer = setTimeout(resolve, DEADLINE_MS);
  return {
    tick() {
      if (++count === target) {
        clearTimeout(timer);
        resolve();
      }
    },
    count: () => count,
    done,
  };
}

interface Round {
  handled: number;
  ms: number;
}

/** The hand-written loop: one `enqueue` per message, one `listenQueue` handler. */
async function handLoop(path: string, events: number, window: number): Promise<Round> {
  const kv = await Deno.openKv(path);
  const handled = counter(events);
  let sink = 0;
  const listening = kv.listenQueue((value: { n: number }) => {
    sink += value.n; // the "handler"
    handled.tick();
  });
  const start = performance.now();
  await publishWindowed(events, window, (n) => kv.enqueue(message(n)));
  await handled.done;
  const ms = performance.now() - start;
  kv.close();
  await listening;
  if (sink < 0) console.log(sink);
  return { handled: handled.count(), ms };
}

/** The same messages through KvBroker: one subscription, one publisher. */
async function brokerLoop(path: string, events: number, window: number): Promise<Round> {
  const broker = new KvBroker({ path, logger: silentLogger });
  const handled = counter(events);
  let sink = 0;
  broker.subscribe("orders", (value: { n: number }) => {
    sink += value.n;
    handled.tick();
  }, { name: "bench" });
  await broker.start();
  const start = performance.now();
  await publishWindowed(events, window, (n) => broker.publish(message(n), "orders"));
  await handled.done;
  const ms = performance.now() - start;
  await broker.stop();
  if (sink < 0) console.log(sink);
  return { handled: handled.count(), ms };
}

function perSecond(round: Round): number {
  return (round.handled / round.ms) * 1000;
}

async function compare(dir: string, window: number, shape: string): Promise<Row[]> {
  // A fresh database file per round: a message a closing loop left in the queue cannot be
  // counted by the next round.
  let files = 0;
  const fresh = () => `${dir}/${window}-${++files}.sqlite`;
  await handLoop(fresh(), WARMUP_EVENTS, window);
  await brokerLoop(fresh(), WARMUP_EVENTS, window);
  const hand: Round[] = [];
  const broker: Round[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    collectGarbage();
    hand.push(await handLoop(fresh(), EVENTS, window));
    collectGarbage();
    broker.push(await brokerLoop(fresh(), EVENTS, window));
  }
  const handRate = median(hand.map(perSecond));
  const brokerRate = median(broker.map(perSecond));
  const lost = (rounds: Round[]) => {
    const missing = rounds.reduce((sum, r) => sum + EVENTS - r.handled, 0);
    return missing > 0 ? `; ${missing} of ${rounds.length * EVENTS} not handled` : "";
  };
  const setup = `median of ${ROUNDS} x ${EVENTS.toLocaleString("en-US")} messages, ${shape}`;
  return [
    {
      subject: "hand-written enqueue/listenQueue",
      metric: `end-to-end, ${shape}`,
      value: Math.round(handRate),
      unit: "msg/s",
      note: `${setup}${lost(hand)}`,
    },
    {
      subject: "KvBroker publish -> handler",
      metric: `end-to-end, ${shape}`,
      value: Math.round(brokerRate),
      unit: "msg/s",
      note: `${(brokerRate / handRate).toFixed(2)}x hand-written${lost(broker)}`,
    },
  ];
}

/**
 * The KV section: KvBroker against a hand-written queue loop on local
 * database files.
 *
 * @example
 * ```ts
 * import { kvSection } from "./kv_bench.ts";
 * for (const row of await kvSection.run()) console.log(row.subject, row.value, row.note);
 * ```
 */
export const kvSection: { name: string; run(): Promise<Row[]> } = {
  name: "kv",
  async run(): Promise<Row[]> {
    const dir = await Deno.makeTempDir({ prefix: "eventbus-bench-kv-" });
    try {
      return [
        ...await compare(dir, WINDOW, `${WINDOW} in flight`),
        ...await compare(dir, 1, "one at a time"),
      ];
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
};

registerSection(kvSection);

if (import.meta.main) {
  const { printTable } = await import("./bench_util.ts");
  printTable([{ section: kvSection.name, rows: await kvSection.run() }]);
}
