/**
 * Bus section: typed events through `bus.publish` to a typed handler (PROCESS
 * scope, MemoryBroker), next to emittery doing the same work in the same run.
 * Before it, "bus construction" measures building one event: a typed event
 * (zod's output is a new object, frozen each time) next to a plain
 * `CloudEvent` given the same payloads (frozen in place by the first round).
 *
 * Two kinds of work are measured. "prebuilt": the events exist before the
 * clock starts, so only delivery is timed. "built per publish": each event is
 * constructed (zod-checked, id, time, frozen) and then published; emittery's
 * counterpart builds the same event by hand (the same zod schema, a random
 * UUID, an RFC 3339 time, frozen) and emits it.
 *
 * @module
 */

import Emittery from "emittery";
import { z } from "zod";
import { CloudEvent, defineEvent, EventBus, EventScope, silentLogger } from "../mod.ts";
import { envInt, median, registerSection, rounds, type Row } from "./bench_util.ts";

const EVENTS = envInt("BENCH_BUS_EVENTS", 1_000_000);
const ROUNDS = envInt("BENCH_ROUNDS", 5);
const POOL = 1_000;

const schema = z.object({ orderId: z.string(), amount: z.number() });
const OrderPlaced = defineEvent({
  type: "bench.order.placed",
  scope: EventScope.PROCESS,
  source: "/bench",
  data: schema,
});
type OrderPlaced = InstanceType<typeof OrderPlaced>;

const payloads = Array.from({ length: POOL }, (_, i) => ({ orderId: `O-${i}`, amount: i }));
const prebuilt = payloads.map((data) => new OrderPlaced({ data }));

/** Builds `total` events with `build` and returns the elapsed ms. */
function constructionRound(total: number, build: (payload: Payload) => CloudEvent): number {
  let idLength = 0;
  const start = performance.now();
  for (let i = 0; i < total; i++) idLength += build(payloads[i % POOL]).id.length;
  const elapsed = performance.now() - start;
  if (idLength === 0) throw new Error("unreachable"); // keeps the events observable
  return elapsed;
}

type Payload = typeof payloads[number];

const builders: [string, (payload: Payload) => CloudEvent][] = [
  ["typed event (defineEvent: zod-checked, id, time, frozen)", (data) => new OrderPlaced({ data })],
  [
    "CloudEvent (id, time, frozen)",
    (data) => new CloudEvent({ type: "bench.order.placed", source: "/bench", data }),
  ],
];

/** Construction rates, interleaved rounds so both builders see the same machine. */
async function constructionRows(): Promise<Row[]> {
  const times = builders.map(() => [] as number[]);
  builders.forEach(([, build]) => constructionRound(Math.min(EVENTS, 200_000), build)); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [index, [, build]] of builders.entries()) {
      times[index].push(
        ...await rounds(1, () => Promise.resolve(constructionRound(EVENTS, build))),
      );
    }
  }
  const metric = `construction (median of ${ROUNDS} x ${EVENTS.toLocaleString("en-US")})`;
  const rates = times.map((t) => EVENTS / (median(t) / 1000));
  return builders.map(([subject], index) => ({
    subject,
    metric,
    value: Math.round(rates[index]),
    unit: "events/s",
    note: index === 0 ? `${(rates[0] / rates[1]).toFixed(2)}x CloudEvent` : undefined,
  }));
}

/** The handler every subject runs: sum the amounts, signal the last event. */
function makeSink(total: number): { handle: (amount: number) => void; done: Promise<void> } {
  let count = 0;
  let sum = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  return {
    handle(amount: number): void {
      sum += amount;
      if (++count === total) {
        if (sum < 0) throw new Error("unreachable"); // keeps `sum` alive
        finish();
      }
    },
    done,
  };
}

async function busRound(total: number, build: boolean): Promise<number> {
  const bus = new EventBus({ logger: silentLogger });
  const sink = makeSink(total);
  // deno-lint-ignore require-await
  bus.subscribe(OrderPlaced, async function settle(event) {
    sink.handle(event.data.amount);
  });
  await bus.start();
  const start = performance.now();
  if (build) {
    for (let i = 0; i < total; i++) {
      await bus.publish(new OrderPlaced({ data: payloads[i % POOL] }));
    }
  } else {
    for (let i = 0; i < total; i++) await bus.publish(prebuilt[i % POOL]);
  }
  await sink.done;
  const elapsed = performance.now() - start;
  await bus.stop();
  return elapsed;
}

/** What an emittery user writes to get an immutable, validated CloudEvent. */
function handBuilt(payload: unknown): HandBuilt {
  return Object.freeze({
    specversion: "1.0",
    id: crypto.randomUUID(),
    source: "/bench",
    type: "bench.order.placed",
    time: new Date().toISOString(),
    data: Object.freeze(schema.parse(payload)),
  });
}

interface HandBuilt {
  readonly specversion: string;
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly time: string;
  readonly data: z.infer<typeof schema>;
}

async function emitteryRound(total: number, build: boolean): Promise<number> {
  const emitter = new Emittery<{ "bench.order.placed": OrderPlaced | HandBuilt }>();
  const sink = makeSink(total);
  // deno-lint-ignore require-await
  emitter.on("bench.order.placed", async (event) => {
    sink.handle(event.data.data.amount);
  });
  const start = performance.now();
  if (build) {
    for (let i = 0; i < total; i++) {
      await emitter.emit("bench.order.placed", handBuilt(payloads[i % POOL]));
    }
  } else {
    for (let i = 0; i < total; i++) await emitter.emit("bench.order.placed", prebuilt[i % POOL]);
  }
  await sink.done;
  return performance.now() - start;
}

// A section of its own, so `deno task bench construction` runs only this.
registerSection({ name: "bus construction", run: constructionRows });

registerSection({
  name: "bus",
  async run(): Promise<Row[]> {
    const rows: Row[] = [];
    for (const build of [false, true]) {
      const label = build ? "built per publish" : "prebuilt";
      await busRound(Math.min(EVENTS, 50_000), build); // warm-up
      await emitteryRound(Math.min(EVENTS, 50_000), build);
      const busTimes: number[] = [];
      const emitteryTimes: number[] = [];
      // Interleaved rounds, so drift of the machine hits both subjects alike.
      for (let r = 0; r < ROUNDS; r++) {
        busTimes.push(...await rounds(1, () => busRound(EVENTS, build)));
        emitteryTimes.push(...await rounds(1, () => emitteryRound(EVENTS, build)));
      }
      const busRate = EVENTS / (median(busTimes) / 1000);
      const emitteryRate = EVENTS / (median(emitteryTimes) / 1000);
      const metric = `typed events, ${label} (median of ${ROUNDS} x ${
        EVENTS.toLocaleString("en-US")
      })`;
      rows.push(
        {
          subject: "EventBus (PROCESS, MemoryBroker)",
          metric,
          value: Math.round(busRate),
          unit: "events/s",
          note: `${(busRate / emitteryRate).toFixed(2)}x emittery`,
        },
        { subject: "emittery", metric, value: Math.round(emitteryRate), unit: "events/s" },
      );
    }
    return rows;
  },
});
