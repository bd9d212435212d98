/**
 * A copy of an event with extension attributes added. Events are immutable,
 * so the publish middleware hands the bus this copy instead of the original.
 *
 * @module
 */

import type { EventDefinition } from "../define_event.ts";
import { CloudEvent, type CloudEventInit, type ExtensionValue, ScopedEvent } from "../event.ts";

/**
 * `event` again, as an instance of the same class, with `added` merged into its
 * extensions; `undefined` for a class this cannot rebuild (a subclass other
 * than `ScopedEvent` and `defineEvent` classes, whose constructor it does not
 * know). The copy goes through the class's constructor, so it is validated
 * like any event: a typed event's data passes its schema again, as it would
 * after crossing Redis or HTTP.
 */
export function withExtensions(
  event: CloudEvent,
  added: Readonly<Record<string, ExtensionValue>>,
): CloudEvent | undefined {
  const init: CloudEventInit<unknown> & { data: unknown } = {
    id: event.id,
    source: event.source,
    type: event.type,
    datacontenttype: event.datacontenttype,
    dataschema: event.dataschema,
    subject: event.subject,
    time: event.time ?? null,
    data: event.data,
    extensions: { ...event.extensions, ...added },
  };
  const kind = event.constructor;
  if (kind === CloudEvent) return new CloudEvent(init);
  if (!(event instanceof ScopedEvent)) return undefined;
  if (kind === ScopedEvent) return new ScopedEvent({ ...init, scope: event.scope });
  // A defineEvent class fixes type and scope itself and takes the rest of init.
  if (isDefinition(kind)) return new kind(init);
  return undefined;
}

function isDefinition(value: unknown): value is EventDefinition {
  return typeof value === "function" &&
    typeof (value as EventDefinition).parse === "function" &&
    typeof (value as EventDefinition).type === "string" &&
    typeof (value as EventDefinition).schema === "object";
}
