import { ErrorCode, StackbusError } from "@stackbus/protocol";

/** A plugin that requires one that is not enabled in the lab. */
export interface MissingRequirement {
  plugin: string;
  requires: string;
}

/**
 * The lab's plugins cannot be put in dependency order: a requirement is not enabled,
 * the requirements form a cycle, or a name is enabled twice. Names every plugin involved.
 */
export class PluginOrderError extends StackbusError {
  override name = "PluginOrderError";
  readonly missing: readonly MissingRequirement[];
  /** The plugins of a cycle, the first repeated at the end (`a, b, a`). */
  readonly cycle: readonly string[];
  readonly duplicates: readonly string[];

  constructor(
    message: string,
    details: { missing?: MissingRequirement[]; cycle?: string[]; duplicates?: string[] },
  ) {
    super(ErrorCode.PluginOrder, message, {
      missing: details.missing ?? [],
      cycle: details.cycle ?? [],
      duplicates: details.duplicates ?? [],
    });
    this.missing = details.missing ?? [];
    this.cycle = details.cycle ?? [];
    this.duplicates = details.duplicates ?? [];
  }
}

/** A downloaded plugin archive whose bytes do not hash to the digest the fetcher announced. */
export class DigestMismatchError extends StackbusError {
  override name = "DigestMismatchError";
  readonly plugin: string;
  readonly object: string;
  readonly expected: string;
  readonly actual: string;

  constructor(plugin: string, object: string, expected: string, actual: string, size: { expected: number; actual: number }) {
    super(
      ErrorCode.DigestMismatch,
      `plugin ${plugin}: archive ${object} is corrupt: expected ${expected} (${size.expected} bytes), ` +
        `got ${actual} (${size.actual} bytes); nothing was unpacked`,
      { plugin, object, expected, actual, expectedSize: size.expected, actualSize: size.actual },
    );
    this.plugin = plugin;
    this.object = object;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The plugin's archive is not in the object store (deleted, or another NATS account). */
export class PluginArchiveMissingError extends StackbusError {
  override name = "PluginArchiveMissingError";
  readonly plugin: string;
  readonly object: string;
  constructor(plugin: string, object: string) {
    super(ErrorCode.NotFound, `plugin ${plugin}: archive ${object} is not in the object store; resolve the plugin again`, {
      plugin,
      object,
    });
    this.plugin = plugin;
    this.object = object;
  }
}

/** DEST, or the plugin's directory in it, cannot be written. Names the path and the system's reason. */
export class PluginInstallError extends StackbusError {
  override name = "PluginInstallError";
  readonly plugin: string;
  readonly path: string;
  constructor(plugin: string, path: string, reason: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const denied = code === "EACCES" || code === "EPERM" || code === "EROFS";
    super(
      denied ? ErrorCode.PermissionDenied : ErrorCode.Internal,
      `plugin ${plugin}: cannot write ${path}: ${reason}`,
      { plugin, path, reason, ...(code ? { errno: code } : {}) },
      { cause },
    );
    this.plugin = plugin;
    this.path = path;
  }
}
