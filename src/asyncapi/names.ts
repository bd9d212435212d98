/**
 * Keys of the document's maps. An event type may hold characters a key or a
 * JSON pointer cannot (`/`, `~`, `:`...), so keys are built from its letters
 * and digits only, and kept unique.
 *
 * @module
 */

/**
 * `"order.created"` -> `"OrderCreated"`, `"com.example/v1:paid"` ->
 * `"ComExampleV1Paid"`: letters and digits, starting with a letter.
 */
export function pascalCase(text: string): string {
  const name = text.split(/[^A-Za-z0-9]+/).filter(Boolean)
    .map((part) => part[0].toUpperCase() + part.slice(1)).join("");
  return /^[A-Za-z]/.test(name) ? name : `Event${name}`;
}

/** Hands out unique keys: a taken key gets the first free numeric suffix. */
export class KeyAllocator {
  readonly #taken = new Set<string>();

  /** `base`, or `base2`, `base3`... if taken. */
  allocate(base: string): string {
    let key = base;
    for (let n = 2; this.#taken.has(key); n++) key = `${base}${n}`;
    this.#taken.add(key);
    return key;
  }
}
