import type { ChildProcess } from "node:child_process";

const children = new Set<ChildProcess>();
let installed = false;

/**
 * Remembers a child process so it is killed when the test process exits, however it exits.
 * Tests do not rely on this: they end what they start with `await using` (every testkit
 * resource is AsyncDisposable). It is the safety net for a test process that is ended by a
 * signal or `process.exit` before its scopes could close.
 */
export function track(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (!installed) {
    installed = true;
    process.once("exit", killAll);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        killAll();
        process.exit(130);
      });
    }
  }
}

export function untrack(child: ChildProcess): void {
  children.delete(child);
}

function killAll(): void {
  for (const child of children) {
    try {
      if (child.pid && (child as ChildProcess & { spawnargs: string[] }).spawnargs && detachedGroups.has(child.pid)) {
        process.kill(-child.pid, "SIGKILL");
      } else {
        child.kill("SIGKILL");
      }
    } catch {
      // already gone
    }
  }
}

const detachedGroups = new Set<number>();

/** Marks a tracked child as a process-group leader, so the whole group is killed. */
export function trackGroup(child: ChildProcess): void {
  if (child.pid) detachedGroups.add(child.pid);
  track(child);
}
