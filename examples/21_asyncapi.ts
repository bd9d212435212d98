/**
 * The AsyncAPI contract of a service: what it publishes, what it handles,
 * on which channels, with which payload and which delivery guarantee.
 *
 * The module exports its bus, so the command-line tool documents it too:
 *
 *   deno task asyncapi examples/21_asyncapi.ts --title Checkout --version 1.0.0 --out checkout.yaml
 *
 * Run: deno run -A examples/21_asyncapi.ts
 *
 * @module
 */
import { z } from "zod";
import { defineEvent, EventBus, EventScope, silentLogger } from "../mod.ts";
import { asyncapi, toYAML } from "../asyncapi.ts";

export const OrderPlaced = defineEvent({
  type: "order.placed",
  source: "/checkout",
  data: z.object({
    orderId: z.string().min(1),
    placedAt: z.coerce.date(),
    lines: z.array(z.object({ sku: z.string(), quantity: z.number().int().positive() })).min(1),
  }),
});
export const PaymentCaptured = defineEvent({
  type: "payment.captured",
  source: "/payments",
  data: z.object({
    orderId: z.string(),
    amount: z.number().positive(),
    currency: z.enum(["EUR", "USD"]),
  }),
});
export const CartCleared = defineEvent({
  type: "cart.cleared",
  scope: EventScope.PROCESS,
  source: "/checkout",
  data: z.object({ cartId: z.string() }),
});

/** The checkout service: it publishes orders, handles payments, and clears carts in-process. */
export const bus: EventBus = new EventBus({ logger: silentLogger }).declare(
  OrderPlaced,
  CartCleared,
);
bus.subscribe(PaymentCaptured, function markPaid(event) {
  console.log(`order ${event.data.orderId} paid: ${event.data.amount} ${event.data.currency}`);
});
bus.subscribe(CartCleared, function forgetCart(event) {
  console.log(`cart ${event.data.cartId} cleared`);
});

if (import.meta.main) {
  console.log(toYAML(asyncapi(bus, { title: "Checkout", version: "1.0.0" })));
  // The events the document describes are the ones the bus carries.
  await bus.start();
  await bus.publish(new CartCleared({ data: { cartId: "C-1" } }));
  await bus.stop();
}
