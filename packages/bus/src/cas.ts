import type { KV, KvEntry } from "@nats-io/kv";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { isWrongLastSequence } from "./failures.js";

/** What to do with a key, given what it holds now: write `value`, or leave it as it is. */
export type CasDecision<T> = { value: string | Uint8Array; result: T } | { unchanged: T };

export interface CasOptions {
  /** Tries before giving up. @default 10 */
  attempts?: number;
  /** The error when every try lost the race. @default a `CONFLICT` naming the key */
  conflict?: () => Error;
  /** Turns a failed write (other than a lost race) into the error to throw. @default the error as it is */
  writeFailed?: (err: unknown) => unknown;
}

export interface CasOutcome<T> {
  result: T;
  /** The KV revision written; undefined when the decision left the key unchanged. */
  revision: number | undefined;
}

/**
 * Compare-and-set on one KV key: reads it, asks `decide` what to write given what is there
 * (null when the key is absent or deleted), and writes only if nobody wrote in between
 * (`create` for an absent key, `update` at the read revision otherwise). A lost race reads
 * and decides again, up to `attempts` times; `decide` may throw to give up.
 */
export async function casUpdate<T>(
  kv: KV,
  key: string,
  decide: (current: KvEntry | null) => CasDecision<T> | Promise<CasDecision<T>>,
  options: CasOptions = {},
): Promise<CasOutcome<T>> {
  const attempts = options.attempts ?? 10;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const entry = await kv.get(key);
    const live = entry !== null && entry.operation === "PUT" ? entry : null;
    const decision = await decide(live);
    if ("unchanged" in decision) return { result: decision.unchanged, revision: undefined };
    try {
      const revision = live ? await kv.update(key, decision.value, live.revision) : await kv.create(key, decision.value);
      return { result: decision.result, revision };
    } catch (err) {
      if (isWrongLastSequence(err)) continue;
      throw options.writeFailed ? options.writeFailed(err) : err;
    }
  }
  throw options.conflict ? options.conflict() : new StackbusError(ErrorCode.Conflict, `${key} kept changing while it was being written; try again`);
}
