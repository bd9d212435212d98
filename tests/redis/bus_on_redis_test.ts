/**
 * The bus with a RedisBroker as its app broker: typed events cross Redis with
 * every attribute intact, and a payload that fails the definition's schema is
 * dead-lettered at once without reaching the handler.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { CloudEvent, defineEvent, EventBus, type HandlerFailure, silentLogger } from "../../mod.ts";
import { RedisBroker } from "../../redis.ts";
import {
  adminClient,
  deferred,
  deleteKeys,
  uniquePrefix,
  waitUntil,
  withDeadline,
} from "./_fault_util.ts";

const DEADLINE = 10_000;

const InvoicePaid = defineEvent({
  type: "test.invoice.paid",
  source: "/billing",
  data: z.object({ invoiceId: z.string(), cents: z.number().int() }),
});

Deno.test("bus on Redis: a typed event arrives typed and equal; a bad payload is dead-lettered at once", async () => {
  const keyPrefix = uniquePrefix("bus");
  const admin = await adminClient();
  const failures: HandlerFailure[] = [];
  const app = new RedisBroker({
    keyPrefix,
    group: "billing",
    logger: silentLogger,
    onError: (failure) => failures.push(failure),
  });
  const bus = new EventBus({ app, logger: silentLogger });
  try {
    const received: InstanceType<typeof InvoicePaid>[] = [];
    const good = deferred<void>();
    bus.subscribe(InvoicePaid, function book(event) {
      received.push(event);
      good.resolve();
    });
    await bus.start();

    const sent = new InvoicePaid({
      subject: "inv-1",
      extensions: { tenant: "acme", retries: 2, urgent: true },
      data: { invoiceId: "inv-1", cents: 1250 },
    });
    await bus.publish(sent);
    await withDeadline(good.promise, DEADLINE, "the typed event");
    assert.ok(received[0] instanceof InvoicePaid);
    assert.deepEqual(received[0].toJSON(), sent.toJSON());

    // Another service, unaware of the schema, sends the same type with a broken payload
    // (straight to the channel: this bus refuses to publish it).
    await app.publish(
      new CloudEvent({
        id: "bad-1",
        type: "test.invoice.paid",
        source: "/other",
        data: { cents: "lots" },
      }),
      "events.test.invoice.paid",
    );
    let letters: Awaited<ReturnType<typeof app.deadLetters>> = [];
    await waitUntil(
      async () => {
        letters = await app.deadLetters("events.test.invoice.paid");
        return letters.length === 1;
      },
      DEADLINE,
      "the dead letter",
    );
    assert.equal(received.length, 1, "the handler never saw the bad payload");
    assert.equal(letters[0].attempts, 1, "dead-lettered at once, not retried");
    assert.match(letters[0].error, /^rejected: .*(data\.invoiceId|data\.cents)/);
    assert.equal((letters[0].message as CloudEvent).id, "bad-1");
    // The bus refuses it (RejectMessage): a refusal, not a handler failure.
    assert.ok(!failures.some((f) => f.messageId === "bad-1"), "no failure reported");
  } finally {
    await bus.stop();
    await deleteKeys(admin, keyPrefix);
    await admin.quit();
  }
});
