/**
 * Type safety: the handler's parameter type comes from the zod schema, so
 * mistakes are caught by `deno check` before the code runs. Each
 * `@ts-expect-error` below marks a line the type checker rejects; if one of
 * them stopped being an error, `deno check` would fail on this file.
 *
 * Run: deno check examples/17_event_handler_type_safety.ts && deno run -A examples/17_event_handler_type_safety.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, EventBus, EventScope } from "../mod.ts";

const PaymentProcessed = defineEvent({
  type: "payment.processed",
  scope: EventScope.PROCESS,
  source: "/payments",
  data: z.object({ paymentId: z.string(), amount: z.number(), method: z.enum(["card", "paypal"]) }),
});

console.log("=== Type safety ===");

await using bus = new EventBus();
bus.subscribe(PaymentProcessed, function settle(event) {
  const cents: number = Math.round(event.data.amount * 100);
  console.log(`settled ${event.data.paymentId} by ${event.data.method}: ${cents} cents`);
});

// Never called: it exists so the type checker proves these mistakes are caught.
export function mistakes(event: InstanceType<typeof PaymentProcessed>): unknown[] {
  // @ts-expect-error: paymentId is a string, not a number
  const wrong: number = event.data.paymentId;
  // @ts-expect-error: there is no field "customer" in the schema
  const missing = event.data.customer;
  return [wrong, missing];
}

const rejected = () =>
  new PaymentProcessed({
    // @ts-expect-error: "cash" is not one of the allowed methods
    data: { paymentId: "P-0", amount: 1, method: "cash" },
  });

await bus.start();
await bus.publish(
  new PaymentProcessed({ data: { paymentId: "PAY-1", amount: 12.5, method: "card" } }),
);
try {
  rejected();
} catch (error) {
  console.log(`also rejected at run time: ${(error as Error).name}`);
}
