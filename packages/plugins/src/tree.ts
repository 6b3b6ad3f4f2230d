import type { PluginLimits } from "@stackbus/protocol";
import { PluginContentError, PluginLimitError } from "./errors.js";

/** What an entry of a plugin's tree is. */
export type TreeEntryKind = "file" | "directory" | "symlink";

/**
 * Why `path` (relative to a plugin's tree, `/`-separated) cannot be written under the
 * plugin's directory, or undefined when it can: absolute, empty, or with a `.` or `..` part.
 */
export function checkTreePath(path: string): string | undefined {
  if (path.length === 0) return "is an empty path";
  if (path.startsWith("/")) return "is an absolute path";
  if (path.includes("\0")) return "contains a NUL byte";
  for (const part of path.split("/")) {
    if (part === "" || part === ".") return "is not a normalised path";
    if (part === "..") return "climbs out of the plugin's tree (..)";
  }
  return undefined;
}

/** True when a symbolic link at `path` with `target` points outside the tree (or is absolute). */
export function symlinkEscapes(path: string, target: string): boolean {
  if (target.startsWith("/")) return true;
  const at = path.split("/").slice(0, -1);
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (at.length === 0) return true;
      at.pop();
    } else at.push(part);
  }
  return false;
}

/**
 * Checks a plugin's tree entry by entry against its limits, as a fetcher builds it or a host
 * unpacks it: the number of entries, their depth, each file's size (outside `.git`: the
 * repository's own pack may be larger than any one file), the bytes written, and that no
 * path leaves the tree, directly or through a symbolic link. Throws PluginLimitError or
 * PluginContentError at the first entry over a bound, so a bomb is stopped after at most
 * `maxFiles` entries, whatever its size.
 */
export class TreeWalk {
  readonly plugin: string;
  readonly limits: PluginLimits;
  /** What is walked, for messages: "its archive", "its checkout at <commit>". */
  readonly where: string;
  /** What did not happen because of a refusal: "nothing was unpacked". */
  readonly outcome: string;
  #entries = 0;
  #bytes = 0;
  readonly #links = new Set<string>();

  constructor(plugin: string, limits: PluginLimits, where: string, outcome: string) {
    this.plugin = plugin;
    this.limits = limits;
    this.where = where;
    this.outcome = outcome;
  }

  get entries(): number {
    return this.#entries;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** One entry; `size` for files (when known), `target` for symbolic links. */
  add(path: string, kind: TreeEntryKind, options: { size?: number; target?: string } = {}): void {
    const problem = checkTreePath(path);
    if (problem !== undefined) throw this.#content(path, problem);
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (this.#links.has(parent)) throw this.#content(path, `is inside ${parent}, a symbolic link`);
    }
    this.#entries += 1;
    if (this.#entries > this.limits.maxFiles) throw this.#limit("maxFiles", this.#entries, this.where);
    if (parts.length > this.limits.maxDepth) throw this.#limit("maxDepth", parts.length, `${this.where} (${path})`);
    if (kind === "symlink") {
      const target = options.target ?? "";
      if (symlinkEscapes(path, target)) throw this.#content(path, `is a symbolic link to ${JSON.stringify(target)}, outside the plugin's tree`);
      this.#links.add(path);
    }
    if (kind === "file" && options.size !== undefined) {
      if (options.size > this.limits.maxFileBytes && parts[0] !== ".git") {
        throw this.#limit("maxFileBytes", options.size, `${this.where} (${path})`);
      }
      this.addBytes(options.size);
    }
  }

  /** Bytes written for the tree (file content), counted against maxUnpackedBytes. */
  addBytes(bytes: number): void {
    this.#bytes += bytes;
    if (this.#bytes > this.limits.maxUnpackedBytes) throw this.#limit("maxUnpackedBytes", this.#bytes, this.where);
  }

  #limit(limit: "maxFiles" | "maxDepth" | "maxFileBytes" | "maxUnpackedBytes", value: number, where: string): PluginLimitError {
    return new PluginLimitError(this.plugin, limit, value, this.limits[limit], where, this.outcome);
  }

  #content(path: string, problem: string): PluginContentError {
    return new PluginContentError(this.plugin, path, problem, this.outcome);
  }
}
