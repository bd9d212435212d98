/**
 * A custom logger: the bus and its default brokers write to any
 * console-compatible logger; a failing handler is logged with the event id,
 * type and handler name, and never stops the other handlers.
 *
 * Run: deno run -A examples/14_eventbus_custom_logger.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, EventBus, type Logger } from "../mod.ts";

function prefixed(prefix: string): Logger {
  const line = (level: string) => (message: string) =>
    console.log(`${prefix} ${level.padEnd(5)} ${message}`);
  return { debug: line("DEBUG"), info: line("INFO"), warn: line("WARN"), error: line("ERROR") };
}

const InvoiceIssued = defineEvent({
  type: "invoice.issued",
  source: "/billing",
  data: z.object({ invoiceId: z.string() }),
});

console.log("=== EventBus with a custom logger ===");

await using bus = new EventBus({ logger: prefixed("[billing]") });
bus.subscribe(InvoiceIssued, function archive(event) {
  console.log(`archived invoice ${event.data.invoiceId}`);
});
bus.subscribe(InvoiceIssued, function flakyWebhook(_event) {
  throw new Error("webhook endpoint unreachable");
});

await bus.start();
await bus.publish(new InvoiceIssued({ id: "evt-7", data: { invoiceId: "INV-7" } }));
