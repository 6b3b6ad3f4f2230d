import { gunzipSync, gzipSync } from "node:zlib";
import { BadMessageError } from "./errors.js";
import { RunRecordSchema, type RunRecord } from "./messages.js";

/** A stored record unpacks to at most this (a 1000-host record is about 1 MB of JSON). */
const MAX_RECORD_JSON_BYTES = 64 * 1024 * 1024;

/**
 * A run record as the runs bucket stores it: gzip of its JSON. A record holds every host's
 * state at every step, about 1 KB of JSON per host, which would pass NATS's default
 * max_payload (1 MiB) near 1000 hosts; the repeated keys and values pack about 15 to 1.
 */
export function encodeRunRecord(record: RunRecord): Uint8Array {
  return gzipSync(JSON.stringify(record));
}

/**
 * Reads the run record stored at `key`: gzip of its JSON (or plain JSON, as older records
 * are), checked by its schema. A value that is not a record is a BadMessageError naming the key.
 */
export function decodeRunRecord(key: string, data: Uint8Array): RunRecord {
  const record = readRunRecord(data);
  if (!record.success) throw new BadMessageError(key, `the run record ${key} is not one: ${record.issues.join("; ")}`, record.issues);
  return record.data;
}

/** The record stored in `data`, or what is wrong with it. */
export function readRunRecord(data: Uint8Array): { success: true; data: RunRecord } | { success: false; issues: string[] } {
  const gzip = data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
  let value: unknown;
  try {
    const text = gzip ? gunzipSync(data, { maxOutputLength: MAX_RECORD_JSON_BYTES }).toString("utf8") : new TextDecoder().decode(data);
    value = JSON.parse(text);
  } catch (err) {
    return { success: false, issues: [`cannot be unpacked: ${(err as Error).message}`] };
  }
  const parsed = RunRecordSchema.safeParse(value);
  if (parsed.success) return { success: true, data: parsed.data };
  return { success: false, issues: parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`) };
}
