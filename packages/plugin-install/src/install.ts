import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { natsDigestToHex, type ObjectStore } from "@stackbus/bus";
import { DigestMismatchError, PluginLimitError } from "@stackbus/plugins";
import {
  DEFAULT_PLUGIN_LIMITS,
  ErrorCode,
  StackbusError,
  validateName,
  type PluginLimits,
  type PluginResolveReply,
} from "@stackbus/protocol";
import { scanArchive, unpackArchive } from "./archive.js";
import { readCheckout } from "./checkout.js";
import { PluginArchiveMissingError, PluginInstallError } from "./errors.js";

/** DevStack's DEST: where plugins are checked out, one directory per plugin. */
export const DEFAULT_DEST = "/opt/stack";

export interface InstallOptions {
  /** The plugin object store (`OBJECT_STORES.plugins`). */
  store: ObjectStore;
  /** The fetcher's answer for this plugin. */
  plugin: PluginResolveReply;
  /** The directory plugins are checked out in; the plugin goes to `<dest>/<name>`. */
  dest: string;
  /** DevStack's RECLONE: replace a checkout that is at another commit. */
  reclone: boolean;
  /**
   * Commits whose checkouts may be replaced whatever `reclone` says: those an earlier attempt
   * of the same run placed (a resumed run picks up a fix pushed to the plugin).
   */
  replaceable?: readonly string[] | undefined;
  /** Called as archive bytes arrive. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** The lab's bounds on a plugin (`pluginSettings.limits`). @default DEFAULT_PLUGIN_LIMITS */
  limits?: PluginLimits | undefined;
}

export interface InstallOutcome {
  name: string;
  /** `<dest>/<name>` */
  path: string;
  /** The commit the checkout is at now. For `kept`, the commit the lab asked for. */
  commit: string;
  /** installed: was absent; unchanged: already at the commit; replaced: reclone swapped it; kept: left at another commit. */
  action: "installed" | "unchanged" | "replaced" | "kept";
  /** Set with `kept`: the lab's ref moved and reclone is off. */
  warning?: string;
}

/**
 * Puts a fetched plugin at `<dest>/<name>`, as DevStack's git_clone leaves it: a
 * checkout at the resolved commit with its git history. The archive is downloaded beside
 * the target (refused unannounced if larger than `limits.maxDownloadBytes`), its digest
 * checked (DigestMismatchError otherwise), every entry header checked against `limits`
 * and for paths leaving the tree (PluginLimitError, PluginContentError) before anything
 * is unpacked, unpacked beside the target, and renamed into place, so the plugin
 * directory is never half-written and a refused archive leaves nothing in `dest`. A
 * checkout already at the commit is left alone; one at another commit is replaced only
 * with `reclone` (or when its commit is `replaceable`), otherwise kept with a warning.
 */
export async function installPlugin(options: InstallOptions): Promise<InstallOutcome> {
  const { plugin, reclone } = options;
  const name = validateName("plugin", plugin.name);
  const limits = options.limits ?? DEFAULT_PLUGIN_LIMITS;
  const dest = resolve(options.dest);
  const path = join(dest, name);
  const current = await readCheckout(path);

  if (current.kind === "checkout" && current.commit === plugin.commit) {
    return { name, path, commit: plugin.commit, action: "unchanged" };
  }
  const ours = current.kind === "checkout" && (options.replaceable ?? []).includes(current.commit);
  if (current.kind !== "absent" && !reclone && !ours) {
    const now = current.kind === "checkout" ? `is at ${current.commit}` : "is not a git checkout";
    return {
      name,
      path,
      commit: plugin.commit,
      action: "kept",
      warning:
        `plugin ${name}: ${path} ${now}, but the lab's ref ${plugin.ref} of ${plugin.url} resolves to ${plugin.commit}; ` +
        `keeping the existing checkout (turn reclone on to replace it)`,
    };
  }

  await mkdir(dest, { recursive: true }).catch((err: unknown) => {
    throw new PluginInstallError(name, dest, reasonOf(err), err);
  });
  await removeLeftovers(dest, name);
  if (plugin.size > limits.maxDownloadBytes) {
    throw new PluginLimitError(name, "maxDownloadBytes", plugin.size, limits.maxDownloadBytes, `its archive ${plugin.object}`, "nothing was downloaded");
  }
  const tag = randomBytes(6).toString("hex");
  const download = join(dest, `.${name}.sb-download-${tag}.tar.gz`);
  const staging = join(dest, `.${name}.sb-unpack-${tag}`);
  const old = join(dest, `.${name}.sb-old-${tag}`);
  try {
    await downloadVerified(options, name, download);
    await scanArchive(download, name, limits);
    await mkdir(staging).catch((err: unknown) => {
      throw new PluginInstallError(name, staging, reasonOf(err), err);
    });
    await unpackArchive(download, staging).catch((err: unknown) => {
      throw new PluginInstallError(name, staging, reasonOf(err), err);
    });
    const unpacked = await readCheckout(staging);
    if (unpacked.kind !== "checkout" || unpacked.commit !== plugin.commit) {
      throw new StackbusError(
        ErrorCode.Internal,
        `plugin ${name}: archive ${plugin.object} does not hold a checkout at ${plugin.commit}`,
        { plugin: name, object: plugin.object, commit: plugin.commit },
      );
    }
    if (current.kind === "absent") {
      await rename(staging, path).catch((err: unknown) => {
        throw new PluginInstallError(name, path, reasonOf(err), err);
      });
      return { name, path, commit: plugin.commit, action: "installed" };
    }
    await rename(path, old).catch((err: unknown) => {
      throw new PluginInstallError(name, path, reasonOf(err), err);
    });
    try {
      await rename(staging, path);
    } catch (err) {
      await rename(old, path).catch(() => undefined);
      throw new PluginInstallError(name, path, reasonOf(err), err);
    }
    return { name, path, commit: plugin.commit, action: "replaced" };
  } finally {
    await Promise.all([download, staging, old].map((p) => rm(p, { recursive: true, force: true }).catch(() => undefined)));
  }
}

/**
 * Streams the archive to `file`, hashing it as it arrives. The object must be the one the
 * fetcher announced (its stored SHA-256 equals the reply's digest), no byte beyond the
 * announced size is written, and the bytes must hash to the announced digest: otherwise a
 * DigestMismatchError, before anything is unpacked. (The object store checks the digest
 * too, and fails the stream when it differs, with `result.error` resolving: a failed
 * transfer rejects it instead.)
 */
async function downloadVerified(options: InstallOptions, name: string, file: string): Promise<void> {
  const { plugin, store, onProgress } = options;
  const result = await store.get(plugin.object);
  if (result === null) throw new PluginArchiveMissingError(name, plugin.object);
  const stored = natsDigestToHex(result.info.digest);
  const mismatch = (actual: string, size: number) =>
    new DigestMismatchError(name, plugin.object, plugin.digest, actual, { expected: plugin.size, actual: size });
  if (stored !== plugin.digest || result.info.size !== plugin.size) {
    result.data.cancel().catch(() => undefined);
    throw mismatch(stored, result.info.size);
  }
  const handle = await open(file, "wx").catch((err: unknown) => {
    throw new PluginInstallError(name, file, reasonOf(err), err);
  });
  const hash = createHash("sha256");
  let size = 0;
  let streamError: unknown;
  let tooLong = false;
  try {
    const reader = result.data.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        streamError = err;
        break;
      }
      if (chunk.done) break;
      size += chunk.value.byteLength;
      if (size > plugin.size) {
        tooLong = true;
        await reader.cancel().catch(() => undefined);
        break;
      }
      hash.update(chunk.value);
      await handle.write(chunk.value).catch((err: unknown) => {
        throw new PluginInstallError(name, file, reasonOf(err), err);
      });
      try {
        onProgress?.(size, plugin.size);
      } catch {
        // a progress reporter never stops an install
      }
    }
  } finally {
    await handle.close();
  }
  if (tooLong) throw mismatch("an archive longer than announced", size);
  if (streamError !== undefined) {
    const transfer = await result.error.then(
      (err: unknown) => err ?? undefined,
      (err: unknown) => err ?? streamError,
    );
    if (transfer === undefined) throw mismatch("bytes that do not hash to it (the object store's check failed)", size);
    const message = transfer instanceof Error ? transfer.message : String(transfer);
    throw new StackbusError(ErrorCode.Unavailable, `plugin ${name}: download of ${plugin.object} failed: ${message}`, {
      plugin: name,
      object: plugin.object,
    }, { cause: transfer });
  }
  const digest = `sha256-${hash.digest("hex")}`;
  if (size !== plugin.size) throw mismatch("an archive of another size", size);
  if (digest !== plugin.digest) throw mismatch(digest, size);
}

/** Removes what an install of this plugin interrupted by a crash left beside the target. */
async function removeLeftovers(dest: string, name: string): Promise<void> {
  const prefix = `.${name}.sb-`;
  const entries = await readdir(dest).catch(() => [] as string[]);
  await Promise.all(
    entries.filter((e) => e.startsWith(prefix)).map((e) => rm(join(dest, e), { recursive: true, force: true }).catch(() => undefined)),
  );
}

function reasonOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e instanceof StackbusError) return e.message;
  if (e?.code) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(err);
}
