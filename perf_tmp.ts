import { z } from "zod";
import { CloudEvent, defineEvent, EventScope, ScopedEvent } from "./mod.ts";
const Ev = defineEvent({ type: "bench.ev", scope: EventScope.PROCESS, source: "/b", data: z.object({ n: z.number() }) });
const N = 300_000;
function bench(name: string, f: (i: number) => unknown) { for (let i = 0; i < 20000; i++) f(i); const t = performance.now(); for (let i = 0; i < N; i++) f(i); console.log(name.padEnd(12), Math.round(N / (performance.now() - t) * 1000)); }
bench("cloudevent", (i) => new CloudEvent({ type: "bench.ev", source: "/b", data: { n: i } }));
bench("ce+id", (i) => new CloudEvent({ id: "x", type: "bench.ev", source: "/b", data: { n: i } }));
bench("ce+id+time", (i) => new CloudEvent({ id: "x", time: null, type: "bench.ev", source: "/b", data: { n: i } }));
bench("ce nodata", (i) => new CloudEvent({ id: "x", time: null, type: "bench.ev", source: "/b" }));
bench("scoped", (i) => new ScopedEvent({ type: "bench.ev", source: "/b", data: { n: i } }));
bench("typed", (i) => new Ev({ data: { n: i } }));
