import { DeliverPolicy, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream";
import { STREAMS, wildcards } from "@stackbus/protocol";
import type { BusCore } from "./core.js";
import { isNotFound } from "./failures.js";
import { retryTransient, withRetry } from "./retry.js";

/** A message stored in a stream. */
export interface StoredMessage {
  subject: string;
  seq: number;
  data: Uint8Array;
  /** When the stream stored it, ms since the epoch. */
  time: number;
}

/** Creates the stream, or updates its subjects and limits when it exists. Idempotent. */
export async function ensureStream(core: BusCore, config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void> {
  const jsm = await core.jsm();
  const wanted: Partial<StreamConfig> & { name: string } = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: core.replicas,
    ...config,
  };
  await core.denials.rethrow(() =>
    retryTransient(async () => {
      try {
        const info = await jsm.streams.info(config.name);
        const current = info.config;
        const same =
          current.subjects.join(",") === config.subjects.join(",") &&
          (wanted.max_bytes === undefined || current.max_bytes === wanted.max_bytes) &&
          (wanted.max_age === undefined || current.max_age === wanted.max_age);
        if (!same) await jsm.streams.update(config.name, { ...current, ...wanted } as StreamConfig);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await jsm.streams.add(wanted);
      }
    }),
  );
}

/** The stackbus streams (runs, logs), created or updated. */
export async function ensureStackbusStreams(core: BusCore): Promise<void> {
  await ensureStream(core, {
    name: STREAMS.runs,
    subjects: [wildcards.runStream],
    max_age: 30 * 24 * 3600 * 1e9,
    max_bytes: 1024 * 1024 * 1024,
    duplicate_window: 120 * 1e9,
  });
  await ensureStream(core, {
    name: STREAMS.logs,
    subjects: [wildcards.logStream],
    max_age: 7 * 24 * 3600 * 1e9,
    max_bytes: 2 * 1024 * 1024 * 1024,
    duplicate_window: 120 * 1e9,
  });
}

/** Every stored message of `stream` matching `filter` from `startSeq` (or the start), in order. */
export function readStream(core: BusCore, stream: string, filter: string, startSeq?: number): Promise<StoredMessage[]> {
  const from = startSeq && startSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq } : { deliver_policy: DeliverPolicy.All };
  return withRetry(`reading stream ${stream}`, () => core.denials.rethrow(() => readOnce(core, stream, filter, from)), { attemptMs: 60_000, deadlineMs: 180_000 });
}

/** The last stored message of each subject of `stream` matching `filter` (e.g. each host's latest output of a run). */
export function readLastPerSubject(core: BusCore, stream: string, filter: string): Promise<StoredMessage[]> {
  return withRetry(`reading stream ${stream}`, () => core.denials.rethrow(() => readOnce(core, stream, filter, { deliver_policy: DeliverPolicy.LastPerSubject })), { attemptMs: 60_000, deadlineMs: 180_000 });
}

async function readOnce(core: BusCore, stream: string, filter: string, from: { deliver_policy: DeliverPolicy; opt_start_seq?: number }): Promise<StoredMessage[]> {
  const consumer = await core.js.consumers.get(stream, { filter_subjects: filter, ...from });
  const info = await consumer.info(true);
  const out: StoredMessage[] = [];
  if (info.num_pending === 0) {
    await consumer.delete().catch(() => undefined);
    return out;
  }
  const messages = await consumer.consume({ max_messages: 512 });
  for await (const m of messages) {
    out.push({ subject: m.subject, seq: m.seq, data: m.data, time: m.info.timestampNanos / 1e6 });
    if (m.info.pending === 0) break;
  }
  await messages.close().catch(() => undefined);
  await consumer.delete().catch(() => undefined);
  return out;
}
