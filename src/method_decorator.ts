/**
 * What the subscribing decorators (`eventHandler(Def)` and
 * `broker.subscriber(channel)`) share: telling the two decorator protocols
 * TypeScript compiles apart, and naming the subscription of each instance of
 * a class whose instance method is decorated.
 *
 * TC39 decorators (the default) call a method decorator as
 * `(method, context)`; legacy decorators (`experimentalDecorators: true`, as
 * NestJS and TypeORM projects compile) call it once per class as
 * `(target, key, descriptor)`, where `target` is the class for a static
 * method and its prototype for an instance method. A legacy instance method
 * has no per-instance hook, so it is recorded on the class and subscribed by
 * `subscribeInstance(instance)` (see instance_subscription.ts).
 *
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

/**
 * A legacy decorator call on a method: the class (static method) or its
 * prototype (instance method), the method and its descriptor.
 */
export interface LegacyMethod {
  /** True for a static method, called with the class as `this`. */
  readonly isStatic: boolean;
  /** The class for a static method, the prototype for an instance method. */
  readonly target: object;
  /** The class the method belongs to. */
  readonly owner: { readonly name: string };
  /** The method's property key, as a string. */
  readonly key: string;
  /** The decorated method. */
  readonly method: (...args: never[]) => unknown;
  /** The method's property descriptor, as the decorator received it. */
  readonly descriptor: PropertyDescriptor;
}

function isMethodDescriptor(value: unknown): value is PropertyDescriptor {
  return value !== null && typeof value === "object" &&
    typeof (value as PropertyDescriptor).value === "function";
}

/**
 * Reads the arguments of a decorator call. Returns `undefined` for the
 * function form and the TC39 form (their second argument is never a property
 * key), and the method for a legacy call. A legacy call on a property or an
 * accessor throws `InvalidArgumentError`: there is no method to subscribe.
 */
export function legacyMethod(
  args: readonly unknown[],
  decorator: string,
): LegacyMethod | undefined {
  const [target, key, descriptor] = args;
  if (typeof key !== "string" && typeof key !== "symbol") return undefined;
  const isStatic = typeof target === "function";
  const owner = isStatic ? target : (target as object | null)?.constructor;
  const where = `${owner?.name || "(class)"}.${String(key)}`;
  if (!isMethodDescriptor(descriptor)) {
    throw new InvalidArgumentError(
      where,
      `${decorator} decorates methods only, not a property or an accessor`,
    );
  }
  if (!isStatic && (target === null || typeof target !== "object")) {
    throw new InvalidArgumentError(
      where,
      `${decorator} takes a class or a prototype as its legacy target, got ${typeof target}`,
    );
  }
  return {
    isStatic,
    target: target as object,
    owner: owner ?? { name: "" },
    key: String(key),
    method: descriptor.value,
    descriptor,
  };
}

/**
 * Reads the TC39 context argument: the context of a method, or `undefined`
 * for the function form (whose second argument may be anything, e.g. an
 * index from `Array.prototype.map`). A TC39 context of anything other than a
 * method throws `InvalidArgumentError`.
 */
export function methodContext(
  context: unknown,
  decorator: string,
): ClassMethodDecoratorContext | undefined {
  if (context === null || typeof context !== "object") return undefined;
  const kind = (context as { kind?: unknown }).kind;
  if (typeof kind !== "string") return undefined;
  if (kind !== "method") {
    const name = String((context as { name?: unknown }).name ?? "");
    throw new InvalidArgumentError(
      name || kind,
      `${decorator} decorates methods only, not a ${kind}`,
    );
  }
  return context as ClassMethodDecoratorContext;
}

/**
 * Names the subscriptions of one decorated instance method, one per instance:
 * `base`, `base#2`, `base#3`, ... in construction order, so that every
 * instance gets a distinct durable name that stays the same from one run of
 * the program to the next.
 */
export function instanceNamer(): (base: string) => string {
  const counts = new Map<string, number>();
  return (base: string): string => {
    const count = (counts.get(base) ?? 0) + 1;
    counts.set(base, count);
    return count === 1 ? base : `${base}#${count}`;
  };
}
