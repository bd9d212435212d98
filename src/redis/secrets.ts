/**
 * Keeping credentials out of every text that leaves the Redis broker: masked
 * URLs, redacted messages and errors stripped of the fields ioredis attaches
 * (the failed command, arguments included).
 *
 * @module
 */

/**
 * Replaces the password (and any other secret) of a Redis URL with `***`.
 *
 * @example
 * ```ts
 * import { maskUrl } from "./secrets.ts";
 * console.log(maskUrl("redis://app:s3cret@cache:6379/2")); // "redis://app:***@cache:6379/2"
 * ```
 */
export function maskUrl(url: string): string {
  let out = url;
  const schemeEnd = out.indexOf("://");
  // The user-info ends at the last "@": a password may itself hold "@" or "/".
  const at = out.lastIndexOf("@");
  if (schemeEnd !== -1 && at > schemeEnd) {
    const userinfo = out.slice(schemeEnd + 3, at);
    const colon = userinfo.indexOf(":");
    const masked = colon === -1 ? "***" : `${userinfo.slice(0, colon)}:***`;
    out = out.slice(0, schemeEnd + 3) + masked + out.slice(at);
  }
  return out.replace(/([?&](?:password|pass|pwd)=)[^&#]*/gi, "$1***");
}

/**
 * Removes secrets from a text: URL user-info passwords and every given
 * secret string.
 *
 * @example
 * ```ts
 * import { redact } from "./secrets.ts";
 * console.log(redact("auth hunter2 failed", ["hunter2"])); // "auth *** failed"
 * ```
 */
export function redact(message: string, secrets: readonly string[]): string {
  let out = message.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]*@/gi, "$1***@");
  for (const secret of secrets) {
    if (secret.length > 0) out = out.split(secret).join("***");
  }
  return out;
}

/**
 * An error safe to log or rethrow: same name and message with secrets
 * removed, and none of the original's fields (ioredis errors carry the failed
 * command, arguments included, which for AUTH means the password).
 *
 * @example
 * ```ts
 * import { safeError } from "./secrets.ts";
 * const e = safeError(new Error("WRONGPASS for pw123"), ["pw123"]);
 * console.log(e.message); // "WRONGPASS for ***"
 * ```
 */
export function safeError(error: unknown, secrets: readonly string[]): Error {
  const message = error instanceof Error ? error.message : String(error);
  const safe = new Error(redact(message, secrets));
  if (error instanceof Error) safe.name = error.name;
  return safe;
}

/**
 * Every secret the URL and the connection options hold, in each form a
 * message might show it (raw and percent-decoded).
 *
 * @example
 * ```ts
 * import { secretsOf } from "./secrets.ts";
 * console.log(secretsOf(new URL("redis://:pw@host"), {})); // ["pw"]
 * ```
 */
export function secretsOf(url: URL, redis: { password?: unknown }): string[] {
  const secrets = new Set<string>();
  if (url.password) {
    secrets.add(url.password);
    try {
      secrets.add(decodeURIComponent(url.password));
    } catch {
      // a malformed escape leaves only the raw form to mask
    }
  }
  if (typeof redis.password === "string") secrets.add(redis.password);
  // ioredis also reads a password from the query string.
  const queryPassword = url.searchParams.get("password");
  if (queryPassword) secrets.add(queryPassword);
  // A password holding "@" (which ioredis accepts) makes URL see only its tail.
  const schemeEnd = url.href.indexOf("://");
  const at = url.href.lastIndexOf("@");
  if (schemeEnd !== -1 && at > schemeEnd) {
    const userinfo = url.href.slice(schemeEnd + 3, at);
    const colon = userinfo.indexOf(":");
    if (colon !== -1) secrets.add(userinfo.slice(colon + 1));
  }
  return [...secrets].filter((secret) => secret.length >= 1);
}
