/**
 * A process killed with SIGKILL in the middle of a handler: its message is
 * not lost. KV holds a taken message while the process that took it lives;
 * once the process is gone and the hold expired, the next scan of an open
 * handle puts it back on the queue (or, when its delivery budget is used
 * up, writes it to the dead letters). The test measures how long that takes
 * for a consumer opened right after the kill and prints it; it asserts only
 * that the message arrives.
 */

import assert from "node:assert/strict";
import { type CloudEvent, type MessageContext, silentLogger } from "../../mod.ts";
import { KvBroker } from "../../kv.ts";
import { deferred, waitForAsync, withDeadline } from "../broker_contract.ts";
import { tempKvPath } from "./_kv_temp.ts";

/** KV scans for expired holds about every 60 s (±10 %): room for one scan and a late one. */
const DEADLINE = 180_000;

/** Starts the crashing consumer and resolves with the id of the job once its handler runs. */
async function crashingConsumer(
  path: string,
  maxDeliveries: number,
): Promise<{ child: Deno.ChildProcess; taken: string }> {
  const script = new URL("./_kv_crash_child.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", script, path, String(maxDeliveries)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let text = "";
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    const line = text.split("\n").find((line) => line.startsWith("TAKEN "));
    if (line !== undefined) return { child, taken: line.slice("TAKEN ".length) };
  }
  throw new Error(
    `the consumer exited before its handler ran: ${JSON.stringify(await child.status)}`,
  );
}

async function kill(child: Deno.ChildProcess): Promise<number> {
  child.kill("SIGKILL");
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
  return performance.now();
}

Deno.test("KvBroker: a message whose process was killed mid-handler is delivered again", async () => {
  const redelivered = await tempKvPath("crash");
  const exhausted = await tempKvPath("crash-dlq");
  try {
    // Two consumers die at once: one with deliveries left, one with none (maxDeliveries 1).
    const [first, last] = await Promise.all([
      crashingConsumer(redelivered.path, 5),
      crashingConsumer(exhausted.path, 1),
    ]);
    const [killedAt] = await Promise.all([kill(first.child), kill(last.child)]);

    const arrived = deferred<{ event: CloudEvent; attempt: number; at: number }>();
    const survivor = new KvBroker({ path: redelivered.path, group: "crash", logger: silentLogger });
    survivor.subscribe("jobs", function worker(event: CloudEvent, ctx: MessageContext) {
      arrived.resolve({ event, attempt: ctx.attempt, at: performance.now() });
    });
    const inspector = new KvBroker({ path: exhausted.path, group: "crash", logger: silentLogger });
    await Promise.all([survivor.start(), inspector.start()]);
    try {
      const [again] = await Promise.all([
        withDeadline(arrived.promise, DEADLINE, "the job delivered again"),
        withDeadline(
          waitForAsync(async () => (await inspector.deadLetters("jobs")).length > 0, {
            deadline: DEADLINE,
            what: "the job in the dead letters",
          }),
          DEADLINE,
          "the dead letter",
        ),
      ]);
      assert.equal(again.event.id, first.taken);
      const [letter] = await inspector.deadLetters("jobs");
      assert.equal(letter.entryId, last.taken);
      assert.equal(letter.subscription, "worker");
      assert.match(letter.error, /Deno KV gave up delivering it/);
      console.log(
        `redelivered ${Math.round(again.at - killedAt)} ms after SIGKILL ` +
          `(attempt shown to the handler: ${again.attempt}); ` +
          `the job without deliveries left is a dead letter`,
      );
    } finally {
      await Promise.all([survivor.stop(), inspector.stop()]);
    }
  } finally {
    await redelivered.remove();
    await exhausted.remove();
  }
});
