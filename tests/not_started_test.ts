import assert from "node:assert/strict";
import { z } from "zod";
import {
  defineEvent,
  EventBus,
  EventScope,
  MemoryBroker,
  NotStartedError,
  silentLogger,
} from "../mod.ts";

const Ping = defineEvent({
  type: "test.not.started",
  scope: EventScope.PROCESS,
  source: "/test",
  data: z.object({}),
});

function notStarted(component: string, state: string, action: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof NotStartedError, String(error));
    assert.equal(error.component, component);
    assert.equal(error.state, state);
    assert.equal(
      error.message,
      `${component} is not started (state: ${state}): cannot ${action}; call start() first`,
    );
    return true;
  };
}

Deno.test("not started: a bus never started says so, and so does one stopped", async () => {
  const bus = new EventBus({ logger: silentLogger });
  await assert.rejects(
    bus.publish(new Ping({ data: {} })),
    notStarted("EventBus", "stopped", "publish"),
  );
  await bus.start();
  await bus.stop();
  await assert.rejects(
    bus.publish(new Ping({ data: {} })),
    notStarted("EventBus", "stopped", "publish"),
  );
});

Deno.test("not started: a MemoryBroker never started says so for publish and request", async () => {
  const broker = new MemoryBroker({ logger: silentLogger });
  await assert.rejects(broker.publish("x", "ch"), notStarted("MemoryBroker", "stopped", "publish"));
  await assert.rejects(broker.request("x", "ch"), notStarted("MemoryBroker", "stopped", "request"));
});
