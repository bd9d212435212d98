/**
 * Reading a request body under a size limit and a time limit, without ever
 * holding more than the size limit in memory.
 *
 * @module
 */

/** Thrown by {@linkcode readBodyLimited} when the body is larger than allowed. */
export class BodyTooLargeError extends Error {
  /** The limit that was exceeded, in bytes. */
  readonly limit: number;

  /** Creates the error for a limit. */
  constructor(limit: number) {
    super(`request body exceeds ${limit} bytes`);
    this.name = "BodyTooLargeError";
    this.limit = limit;
  }
}

/** Thrown by {@linkcode readBodyLimited} when the body did not arrive in time. */
export class BodyTimeoutError extends Error {
  /** The time limit, in ms. */
  readonly timeout: number;

  /** Creates the error for a time limit. */
  constructor(timeout: number) {
    super(`request body not received within ${timeout} ms`);
    this.name = "BodyTimeoutError";
    this.timeout = timeout;
  }
}

/**
 * Reads the whole body of a request, at most `limit` bytes, within `timeout`
 * ms. A declared `Content-Length` above the limit fails before reading
 * anything; a body without one (chunked) is counted while it streams. The
 * stream is cancelled as soon as it passes the limit or the time runs out, so
 * a client that stalls or trickles cannot hold the handler for ever.
 */
export async function readBodyLimited(
  request: Request,
  limit: number,
  timeout: number,
): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > limit) {
    // Tell the runtime we will not read it, so it can drop the connection's input.
    await request.body?.cancel().catch(() => {});
    throw new BodyTooLargeError(limit);
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Not Promise.withResolvers: Node 20 lacks it.
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyTimeoutError(timeout)), timeout);
  });
  // Marked handled: the deadline may pass while no read is waiting on it.
  expired.catch(() => {});
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const read = reader.read();
      // Left pending when the deadline wins; the cancel below settles it.
      read.catch(() => {});
      const { done, value } = await Promise.race([read, expired]);
      if (done) break;
      size += value.byteLength;
      if (size > limit) throw new BodyTooLargeError(limit);
      chunks.push(value);
    }
  } catch (error) {
    // Not awaited: a source that never settles its cancel must not hold the answer.
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return concat(chunks, size);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
