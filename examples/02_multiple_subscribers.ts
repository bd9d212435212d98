/**
 * Several handlers on one channel: each gets every message.
 *
 * Run: deno run -A examples/02_multiple_subscribers.ts
 */
import { MemoryBroker } from "../mod.ts";

interface Notification {
  email: string;
  phone: string;
  message: string;
}

console.log("=== Multiple subscribers ===");

const broker = new MemoryBroker();
const on = broker.subscriber("notifications");

on(function sendEmail(data: Notification) {
  console.log(`  [Email] Sending to ${data.email}`);
});
on(function sendSms(data: Notification) {
  console.log(`  [SMS] Sending to ${data.phone}`);
});
on(function logNotification(data: Notification) {
  console.log(`  [Log] Notification: ${data.message}`);
});

await broker.start();
await broker.publish(
  { email: "user@example.com", phone: "138xxxx", message: "Hello" },
  "notifications",
);
const names = broker.stats().subscriptions.map((s) => s.name);
await broker.stop();
console.log(`  Subscribers: ${names.join(", ")}`);
