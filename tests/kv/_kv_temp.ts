/**
 * Test helpers: a KV database on a fresh temporary file, removed afterwards.
 *
 * @module
 */

/** A temporary folder for one database file and the file's path in it. */
export interface TempKv {
  /** Path of the database file (not created until opened). */
  readonly path: string;
  /** Removes the folder and everything in it. */
  remove(): Promise<void>;
}

/** Makes a fresh temporary folder for a database file. */
export async function tempKvPath(label = "kv"): Promise<TempKv> {
  const dir = await Deno.makeTempDir({ prefix: `eventbus-${label}-` });
  return {
    path: `${dir}/db.sqlite`,
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
