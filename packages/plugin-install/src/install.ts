import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { x as extractTar } from "tar";
import { natsDigestToHex, type ObjectStore } from "@stackbus/bus";
import { ErrorCode, StackbusError, validateName, type PluginResolveReply } from "@stackbus/protocol";
import { readCheckout } from "./checkout.js";
import { DigestMismatchError } from "@stackbus/plugins";
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
  /** Called as archive bytes arrive. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
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
 * the target, its digest checked before anything is unpacked (DigestMismatchError
 * otherwise), unpacked beside the target, and renamed into place, so the plugin
 * directory is never half-written. A checkout already at the commit is left alone; one
 * at another commit is replaced only with `reclone`, otherwise kept with a warning.
 */
export async function installPlugin(options: InstallOptions): Promise<InstallOutcome> {
  const { plugin, reclone } = options;
  const name = validateName("plugin", plugin.name);
  const dest = resolve(options.dest);
  const path = join(dest, name);
  const current = await readCheckout(path);

  if (current.kind === "checkout" && current.commit === plugin.commit) {
    return { name, path, commit: plugin.commit, action: "unchanged" };
  }
  if (current.kind !== "absent" && !reclone) {
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
  const tag = randomBytes(6).toString("hex");
  const download = join(dest, `.${name}.sb-download-${tag}.tar.gz`);
  const staging = join(dest, `.${name}.sb-unpack-${tag}`);
  const old = join(dest, `.${name}.sb-old-${tag}`);
  try {
    await downloadVerified(options, name, download);
    await mkdir(staging).catch((err: unknown) => {
      throw new PluginInstallError(name, staging, reasonOf(err), err);
    });
    await extractTar({ file: download, cwd: staging, preserveOwner: false, strict: true });
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
 * Streams the archive to `file`. The object must be the one the fetcher announced (its
 * stored SHA-256 equals the reply's digest), and the object store checks the bytes it
 * delivers against that digest as they arrive; the size is counted here. Throws
 * DigestMismatchError when either differs, before anything is unpacked.
 */
async function downloadVerified(options: InstallOptions, name: string, file: string): Promise<void> {
  const { plugin, store, onProgress } = options;
  const result = await store.get(plugin.object);
  if (result === null) throw new PluginArchiveMissingError(name, plugin.object);
  const stored = natsDigestToHex(result.info.digest);
  if (stored !== plugin.digest) {
    result.data.cancel().catch(() => undefined);
    throw new DigestMismatchError(name, plugin.object, plugin.digest, stored, { expected: plugin.size, actual: result.info.size });
  }
  const handle = await open(file, "wx").catch((err: unknown) => {
    throw new PluginInstallError(name, file, reasonOf(err), err);
  });
  let size = 0;
  let streamError: unknown;
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
  streamError ??= await result.error;
  if (streamError) {
    const message = streamError instanceof Error ? streamError.message : String(streamError);
    if (/digest|corrupt/i.test(message)) {
      const computed = /computed: SHA-256 ([0-9a-f]{64})/.exec(message)?.[1];
      throw new DigestMismatchError(name, plugin.object, plugin.digest, computed ? `sha256-${computed}` : "bytes the object store could not verify", {
        expected: plugin.size,
        actual: size,
      });
    }
    throw new StackbusError(ErrorCode.Unavailable, `plugin ${name}: download of ${plugin.object} failed: ${message}`, {
      plugin: name,
      object: plugin.object,
    }, { cause: streamError });
  }
  if (size !== plugin.size) {
    throw new DigestMismatchError(name, plugin.object, plugin.digest, "an archive of another size", { expected: plugin.size, actual: size });
  }
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
  return e?.code ? `${e.code}: ${e.message}` : String(err);
}
