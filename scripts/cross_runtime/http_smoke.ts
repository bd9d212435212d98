/**
 * HTTP binding smoke test that runs unchanged on Deno, Node (>= 20) and Bun:
 * serves `createReceiver` on port 0 with the runtime's own server
 * (`Deno.serve`, `Bun.serve`, or on Node `serve` from `@hono/node-server`,
 * a maintained fetch adapter), sends CloudEvents to it in binary mode
 * (`sendEvent`), structured mode (the official SDK), batch mode (`sendBatch`)
 * and one invalid event, checks the answers and what the bus received, and
 * exits 0. Any failure throws, which exits non-zero.
 *
 * @module
 */
import { serve as serveOnNode } from "@hono/node-server";
import { CloudEvent as SdkCloudEvent, HTTP } from "cloudevents";
import { z } from "zod";
import { defineEvent, EventBus, EventScope } from "../../mod.ts";
import {
  createReceiver,
  type FetchHandler,
  sendBatch,
  sendEvent,
  toHttpRequest,
} from "../../http.ts";

interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

declare const Bun: {
  serve(options: { port: number; hostname: string; fetch: FetchHandler }): {
    port: number;
    stop(force?: boolean): Promise<void> | void;
  };
} | undefined;

function runtimeName(): string {
  if (typeof Bun !== "undefined") return "bun";
  if ("Deno" in globalThis) return "deno";
  return "node";
}

async function serve(handler: FetchHandler): Promise<RunningServer> {
  const runtime = runtimeName();
  if (runtime === "bun" && typeof Bun !== "undefined") {
    const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: handler });
    return { port: server.port, close: async () => void await server.stop(true) };
  }
  if (runtime === "deno") {
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, handler);
    return { port: server.addr.port, close: () => server.shutdown() };
  }
  return await new Promise<RunningServer>((resolve) => {
    const server = serveOnNode(
      { fetch: handler, port: 0, hostname: "127.0.0.1" },
      (info) =>
        resolve({
          port: info.port,
          close: () =>
            new Promise<void>((done, fail) =>
              server.close((error?: Error) => (error ? fail(error) : done()))
            ),
        }),
    );
  });
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`http smoke failed: ${message}`);
}

const Ping = defineEvent({
  type: "smoke.ping",
  scope: EventScope.PROCESS,
  source: "/smoke",
  data: z.object({ n: z.number().int() }),
});

const bus = new EventBus();
const received: number[] = [];
let allReceived: () => void = () => {};
const done = new Promise<void>((resolve) => (allReceived = resolve));
bus.subscribe(Ping, function record(event) {
  received.push(event.data.n);
  if (received.length === 4) allReceived();
});
await bus.start();

const server = await serve(createReceiver({ bus, definitions: [Ping] }));
const url = `http://127.0.0.1:${server.port}/events`;
try {
  const binary = await sendEvent(new Ping({ data: { n: 1 } }), url, { mode: "binary" });
  check(binary.status === 202, `binary mode answered ${binary.status}`);
  console.log(`binary mode (sendEvent) -> ${binary.status}`);

  const message = HTTP.structured(
    new SdkCloudEvent({ type: "smoke.ping", source: "/sdk", data: { n: 2 } }),
  );
  const structured = await fetch(url, {
    method: "POST",
    headers: message.headers as Record<string, string>,
    body: message.body as string,
  });
  check(structured.status === 202, `structured mode answered ${structured.status}`);
  await structured.body?.cancel();
  console.log(`structured mode (cloudevents SDK) -> ${structured.status}`);

  const batch = await sendBatch([new Ping({ data: { n: 3 } }), new Ping({ data: { n: 4 } })], url);
  check(batch.status === 202, `batch mode answered ${batch.status}`);
  console.log(`batch mode (sendBatch) -> ${batch.status}`);

  const invalid = new Ping({ data: { n: 5 } }).toJSON();
  invalid.data = { n: "three" };
  const bad = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json" },
    body: JSON.stringify(invalid),
  });
  const problem = await bad.json() as { issues?: { path: string }[] };
  check(bad.status === 400, `invalid event answered ${bad.status}`);
  check(problem.issues?.[0]?.path === "data.n", `problem names ${JSON.stringify(problem.issues)}`);
  console.log(`invalid event -> ${bad.status} naming ${problem.issues[0].path}`);

  const wrongMethod = await fetch(toHttpRequest(new Ping({ data: { n: 6 } }), url).url);
  await wrongMethod.body?.cancel();
  check(wrongMethod.status === 405, `GET answered ${wrongMethod.status}`);
  console.log(`GET -> ${wrongMethod.status}`);

  await done;
  check(received.join(",") === "1,2,3,4", `bus received ${received.join(",")}`);
  console.log(`bus received: ${received.join(", ")}`);
} finally {
  await server.close();
  await bus.stop();
}
console.log("http smoke ok");
