/**
 * Introspection: which handlers listen to which event types, on which scope.
 *
 * Run: deno run -A examples/13_eventbus_introspection.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, EventBus, EventScope } from "../mod.ts";

const PaymentReceived = defineEvent({
  type: "payment.received",
  source: "/payments",
  data: z.object({ paymentId: z.string(), amount: z.number() }),
});
const ConfigReloaded = defineEvent({
  type: "config.reloaded",
  scope: EventScope.PROCESS,
  source: "/config",
  data: z.object({ version: z.number().int() }),
});

console.log("=== EventBus introspection ===");

const bus = new EventBus();
bus.subscribe(PaymentReceived, function bookPayment() {});
bus.subscribe(PaymentReceived, function emailReceipt() {});
bus.subscribe(ConfigReloaded, function refreshCaches() {});
const audit = bus.subscribe("payment.received", function auditTrail() {});

for (const [type, handlers] of Object.entries(bus.handlers())) {
  console.log(`${type}:`);
  for (const { name, scope } of handlers) console.log(`  - ${name} (${scope})`);
}

await audit.unsubscribe();
console.log(
  `after unsubscribe: ${bus.handlers()["payment.received"].length} handlers for payment.received`,
);
