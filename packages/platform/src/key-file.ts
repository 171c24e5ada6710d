/**
 * A generated key kept in a file, for the development modes that must need
 * no secret from the user (identity's key-encryption key, orders' card-token
 * key): made once, 0600, and the same for every process started from the
 * same directory.
 */
import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Writes `contents` to `file` unless it exists, and returns what the file
 * holds. The contents are written whole under a private name, then
 * hard-linked into place: link() fails when the name exists, so the file is
 * either absent or whole, and when processes race every one reads the
 * contents of the one that got there first. Errors keep their errno `code`
 * for the caller to name what to configure instead.
 */
export async function createFileOnce(file: string, contents: string): Promise<{ text: string; created: boolean }> {
  await mkdir(path.dirname(file), { recursive: true });
  const draft = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(draft, contents, { mode: 0o600, flag: "wx" });
  try {
    await link(draft, file);
    return { text: contents, created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return { text: await readFile(file, "utf8"), created: false };
  } finally {
    await unlink(draft).catch(() => undefined);
  }
}
