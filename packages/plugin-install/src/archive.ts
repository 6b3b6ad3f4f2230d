import { createReadStream } from "node:fs";
import { Parser, Unpack, type ReadEntry } from "tar";
import { PluginContentError, TreeWalk, type TreeEntryKind } from "@stackbus/plugins";
import type { PluginLimits } from "@stackbus/protocol";

const OUTCOME = "nothing was unpacked";

const KINDS: Record<string, TreeEntryKind | undefined> = {
  File: "file",
  OldFile: "file",
  ContiguousFile: "file",
  Directory: "directory",
  SymbolicLink: "symlink",
};

/** An archive entry's path relative to the tree: no leading `./`, no trailing `/`; "" for the root itself. */
function treePath(raw: string): string {
  let path = raw;
  while (path.startsWith("./")) path = path.slice(2);
  while (path.endsWith("/")) path = path.slice(0, -1);
  return path === "." ? "" : path;
}

/**
 * Reads every entry header of a plugin archive (nothing is written) and checks the whole
 * tree against `limits` and for entries that cannot be unpacked safely (links out of the
 * tree, devices, hard links, absolute or `..` paths). Stops reading at the first problem,
 * so a bomb costs at most `maxFiles` headers. Resolves with the entry count and the bytes
 * the tree would take.
 */
export async function scanArchive(file: string, plugin: string, limits: PluginLimits): Promise<{ entries: number; bytes: number }> {
  const walk = new TreeWalk(plugin, limits, "its archive", OUTCOME);
  const input = createReadStream(file);
  const parser = new Parser({ strict: true });
  return new Promise((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      input.destroy();
      parser.abort(err instanceof Error ? err : new Error(String(err)));
      reject(err);
    };
    parser.on("entry", (entry: ReadEntry) => {
      if (failed) {
        entry.resume();
        return;
      }
      try {
        const path = treePath(String(entry.path));
        const kind = KINDS[entry.type];
        if (kind === undefined) throw new PluginContentError(plugin, path, `is a ${entry.type} entry, which a plugin checkout never holds`, OUTCOME);
        if (path !== "") {
          walk.add(path, kind, kind === "symlink" ? { target: String(entry.linkpath ?? "") } : { size: entry.size ?? 0 });
        }
      } catch (err) {
        fail(err);
      }
      entry.resume();
    });
    parser.on("error", fail);
    parser.on("warn", (_code: string, message: string | Error) => fail(message instanceof Error ? message : new Error(message)));
    input.on("error", fail);
    parser.on("end", () => {
      if (!failed) resolve({ entries: walk.entries, bytes: walk.bytes });
    });
    input.pipe(parser);
  });
}

/**
 * Unpacks a scanned archive into `dir` and resolves only when node-tar has finished every
 * write, also when entries fail (non-strict: failures are collected and thrown together
 * once the unpack has ended), so the caller can remove `dir` knowing nothing is still
 * being written into it. (In strict mode node-tar rejects at the first failure while the
 * writes it already started go on, and recreate what the caller removes.)
 */
export async function unpackArchive(file: string, dir: string): Promise<void> {
  const problems: string[] = [];
  const unpack = new Unpack({
    cwd: dir,
    strict: false,
    preserveOwner: false,
    onwarn: (code: string, message: string | Error) => void problems.push(`${code}: ${message instanceof Error ? message.message : message}`),
  });
  await new Promise<void>((resolve, reject) => {
    const input = createReadStream(file);
    input.on("error", (err) => {
      problems.push(err.message);
      unpack.end();
    });
    unpack.on("close", () => resolve());
    unpack.on("error", (err: Error) => {
      problems.push(err.message);
      // Only a missing or unusable target directory is an error: then nothing was written.
      if (err.name === "CwdError") reject(new Error(problems.join("; ")));
    });
    // An archive that stops parsing (changed since it was scanned) never ends: give the
    // writes already started a moment to finish.
    unpack.on("abort", () => setTimeout(resolve, 1_000));
    input.pipe(unpack);
  });
  if (problems.length > 0) throw new Error(problems.join("; "));
}
