import { inflateSync } from "node:zlib";
import { PluginLimitError } from "@stackbus/plugins";
import type { PluginLimits } from "@stackbus/protocol";

const OUTCOME = "nothing was fetched";

/** Pack object types (git's pack format). */
const OFS_DELTA = 6;
const REF_DELTA = 7;

/** What a guarded clone or fetch downloaded: its size, and the objects of its pack. */
export interface PackSummary {
  bytes: number;
  objects: number;
}

/**
 * Guards the body of a `git-upload-pack` response (a clone or fetch) before isomorphic-git
 * sees it: the response may be no larger than `maxDownloadBytes`, and no object of its pack
 * may inflate to more than `maxFileBytes` (a delta: its declared result). This runs before
 * isomorphic-git indexes the pack, which inflates every object whole: a 512 MB blob of
 * zeros compresses to half a megabyte and would otherwise take the fetcher's memory to
 * gigabytes. Each object is inflated once here, bounded by the limit, to find where the
 * next begins. Throws PluginLimitError (after `onRefused`) at the first excess.
 */
export async function* guardUploadPack(
  body: AsyncIterableIterator<Uint8Array>,
  plugin: string,
  limits: PluginLimits,
  onRefused: (err: PluginLimitError) => void,
  onSummary?: (summary: PackSummary) => void,
): AsyncGenerator<Uint8Array> {
  const refuse = (err: PluginLimitError): never => {
    onRefused(err);
    throw err;
  };
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.byteLength;
    if (bytes > limits.maxDownloadBytes) refuse(new PluginLimitError(plugin, "maxDownloadBytes", bytes, limits.maxDownloadBytes, "its clone", OUTCOME));
    chunks.push(chunk);
  }
  const response = Buffer.concat(chunks);
  const pack = packData(response);
  if (pack !== undefined) {
    const objects = scanPack(pack, plugin, limits, refuse);
    onSummary?.({ bytes, objects });
  }
  yield response;
}

/**
 * The pack in an upload-pack response: the band-1 payloads of its side-band pkt-lines after
 * the ACK/NAK lines. Undefined when the response is not in that form (isomorphic-git then
 * refuses it itself).
 */
function packData(response: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let pos = 0;
  while (pos + 4 <= response.length) {
    const length = Number.parseInt(response.toString("latin1", pos, pos + 4), 16);
    if (!Number.isInteger(length) || length < 0) return undefined;
    if (length === 0 || length === 1) {
      pos += 4;
      continue;
    }
    if (length < 4 || pos + length > response.length) return undefined;
    const payload = response.subarray(pos + 4, pos + length);
    pos += length;
    if (payload[0] === 1) parts.push(payload.subarray(1));
  }
  return parts.length > 0 ? Buffer.concat(parts) : undefined;
}

/** Reads git's variable-length size of a pack object header: type in bits 4-6 of the first byte. */
function objectHeader(pack: Buffer, at: number): { type: number; size: number; next: number } {
  let byte = pack[at] ?? 0;
  const type = (byte >> 4) & 7;
  let size = byte & 15;
  let shift = 4;
  let pos = at + 1;
  while (byte & 0x80) {
    byte = pack[pos++] ?? 0;
    size += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  }
  return { type, size, next: pos };
}

/** A delta's declared size varint (little-endian base-128). */
function deltaSize(delta: Buffer, at: number): { size: number; next: number } {
  let size = 0;
  let shift = 0;
  let pos = at;
  let byte: number;
  do {
    byte = delta[pos++] ?? 0;
    size += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80 && pos < delta.length);
  return { size, next: pos };
}

/** Checks every object of `pack` against maxFileBytes; returns the object count. */
function scanPack(pack: Buffer, plugin: string, limits: PluginLimits, refuse: (err: PluginLimitError) => never): number {
  if (pack.length < 12 || pack.toString("latin1", 0, 4) !== "PACK") return 0;
  const count = pack.readUInt32BE(8);
  const max = limits.maxFileBytes;
  const tooLarge = (value: number) => refuse(new PluginLimitError(plugin, "maxFileBytes", value, max, "its repository", OUTCOME));
  let pos = 12;
  for (let i = 0; i < count && pos < pack.length; i++) {
    const header = objectHeader(pack, pos);
    pos = header.next;
    if (header.type === OFS_DELTA) {
      let byte = pack[pos++] ?? 0;
      while (byte & 0x80) byte = pack[pos++] ?? 0;
    } else if (header.type === REF_DELTA) {
      pos += 20;
    }
    if (header.size > max) tooLarge(header.size);
    let inflated: { buffer: Buffer; engine: { bytesWritten: number } };
    try {
      inflated = inflateSync(pack.subarray(pos), { info: true, maxOutputLength: Math.max(max, 1) }) as unknown as typeof inflated;
    } catch (err) {
      // More than the limit whatever its header says; anything else is a corrupt pack, which
      // isomorphic-git refuses when it indexes it.
      if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") tooLarge(max + 1);
      return i;
    }
    if (header.type === OFS_DELTA || header.type === REF_DELTA) {
      const base = deltaSize(inflated.buffer, 0);
      const result = deltaSize(inflated.buffer, base.next);
      if (result.size > max) tooLarge(result.size);
    }
    pos += inflated.engine.bytesWritten;
  }
  return count;
}
