import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A temporary directory that removes itself at the end of a `using` (or `await using`) scope. */
export interface TempDir extends Disposable, AsyncDisposable {
  readonly path: string;
  remove(): void;
}

/** A fresh temporary directory: `using dir = tempDir()` removes it at the end of the scope. */
export function tempDir(prefix = "sb-test-"): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  const remove = () => rmSync(path, { recursive: true, force: true });
  return {
    path,
    remove,
    [Symbol.dispose]: remove,
    [Symbol.asyncDispose]: async () => remove(),
  };
}

/**
 * Polls `check` until it returns a value other than undefined/false, or fails after
 * `timeoutMs` with `what` in the message.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Whether a process with this pid exists (signal 0 reaches it). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
