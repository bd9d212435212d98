import assert from "node:assert/strict";
import { runExample } from "./_run_example.ts";

const cases: [file: string, expected: RegExp[]][] = [
  ["demo.ts", [
    /parsed back: A1 12.5, tenant=acme/,
    /id: must be a non-empty string/,
    /\[app scope\] charging 12.5/,
    /\[process scope\] dropping cache key user:42/,
  ]],
  ["08_eventbus_basic.ts", [
    /\[process\] cache entry dropped: user:42/,
    /\[app\] welcome ada@example.com/,
    /bus stopped/,
  ]],
  ["09_eventbus_decorator.ts", [
    /sending welcome email to user@example.com/,
    /creating profile for user U-001/,
    /"Profiles.createProfile"/,
  ]],
  ["11_eventbus_context_manager.ts", [
    /task T-1 took 120 ms/,
    /task T-2 took 75 ms/,
    /after the scope the bus is stopped/,
  ]],
  ["12_eventbus_multiple_handlers.ts", [
    /notification sent for order ORD-002/,
    /inventory updated for order ORD-002/,
    /shipment logged: order.shipped/,
  ]],
  ["13_eventbus_introspection.ts", [
    /- bookPayment \(app\)/,
    /- refreshCaches \(process\)/,
    /after unsubscribe: 2 handlers/,
  ]],
  ["14_eventbus_custom_logger.ts", [
    /archived invoice INV-7/,
    /\[billing\] ERROR handler "flakyWebhook" failed .* evt-7 \(type invoice.issued\)/,
  ]],
  ["16_event_handler_auto_conversion.ts", [
    /OrderCreated ORD-1: 2 items, total 299.99/,
    /OrderCreated ORD-2: 1 items, total 19.50/,
    /rejected: data.orderId/,
  ]],
  ["17_event_handler_type_safety.ts", [
    /settled PAY-1 by card: 1250 cents/,
    /also rejected at run time: ValidationError/,
  ]],
  ["22_testing_helpers.ts", [
    /receipt sent to ada@example.com/,
    /a failing handler failed the publish: RangeError/,
    /published: order.placed, receipt.sent, order.placed/,
  ]],
];

for (const [file, expected] of cases) {
  Deno.test(`example ${file} runs (type-checked) and prints what it shows`, async () => {
    const run = await runExample(file, { check: true });
    assert.equal(run.code, 0, `exit code ${run.code}\n${run.stderr}`);
    for (const pattern of expected) assert.match(run.stdout, pattern);
  });
}
