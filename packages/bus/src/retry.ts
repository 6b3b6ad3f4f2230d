import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { isTransient } from "./failures.js";

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Retries an administrative JetStream call while the cluster elects a leader. */
export async function retryTransient<T>(fn: () => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  let delay = 100;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || Date.now() + delay > deadline) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, 1_000);
    }
  }
}

/**
 * Runs a JetStream call with a bound on each attempt, trying again until `deadlineMs`:
 * right after a stream or bucket is created on a cluster, or while a new stream leader is
 * elected, a call can stay unanswered instead of failing.
 */
export async function withRetry<T>(
  what: string,
  fn: () => Promise<T>,
  options: { attemptMs?: number; deadlineMs?: number; final?: (err: unknown) => boolean } = {},
): Promise<T> {
  const attemptMs = options.attemptMs ?? 3_000;
  const deadline = Date.now() + (options.deadlineMs ?? 30_000);
  let last: unknown;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StackbusError(ErrorCode.Timeout, `${what}: no answer within ${attemptMs}ms`)), attemptMs);
        }),
      ]);
    } catch (err) {
      last = err;
      if ((err as { code?: string }).code === ErrorCode.PermissionDenied || options.final?.(err) || Date.now() > deadline) break;
      await sleep(200);
    } finally {
      clearTimeout(timer);
    }
  }
  throw last instanceof StackbusError ? last : new StackbusError(ErrorCode.Unavailable, `${what} failed: ${(last as Error)?.message ?? String(last)}`, {}, { cause: last });
}
