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

  /** `outcome` says what was not done because of it. @default "nothing was unpacked" */
  constructor(
    plugin: string,
    object: string,
    expected: string,
    actual: string,
    size: { expected: number; actual: number },
    outcome = "nothing was unpacked",
  ) {
    super(
      ErrorCode.DigestMismatch,
      `plugin ${plugin}: archive ${object} is corrupt: expected ${expected} (${size.expected} bytes), ` +
        `got ${actual} (${size.actual} bytes); ${outcome}`,
      { plugin, object, expected, actual, expectedSize: size.expected, actualSize: size.actual },
    );
    this.plugin = plugin;
    this.object = object;
    this.expected = expected;
    this.actual = actual;
  }
}

/** Which bound of `PluginLimits` a plugin exceeded, and by how much. */
export type PluginLimitName = "maxFileBytes" | "maxFiles" | "maxUnpackedBytes" | "maxDepth" | "maxDownloadBytes";

const LIMIT_WHAT: Record<PluginLimitName, (value: number) => string> = {
  maxFileBytes: (v) => `a file of ${v} bytes`,
  maxFiles: (v) => `${v} files`,
  maxUnpackedBytes: (v) => `${v} bytes unpacked`,
  maxDepth: (v) => `a path ${v} directories deep`,
  maxDownloadBytes: (v) => `${v} bytes to download`,
};

/**
 * A plugin over one of its lab's bounds (`plugins.limits`): names the plugin, the limit,
 * the value found (at least; counting stops at the bound), the bound, and where it was
 * found. Nothing more of it is fetched, built or unpacked.
 */
export class PluginLimitError extends StackbusError {
  override name = "PluginLimitError";
  readonly plugin: string;
  readonly limit: PluginLimitName;
  readonly value: number;
  readonly max: number;

  constructor(plugin: string, limit: PluginLimitName, value: number, max: number, where: string, outcome: string) {
    super(
      ErrorCode.TooLarge,
      `plugin ${plugin}: ${where} has ${LIMIT_WHAT[limit](value)}, more than the ${max} allowed (plugins.limits.${limit}); ${outcome}`,
      { plugin, limit, value, max, where },
    );
    this.plugin = plugin;
    this.limit = limit;
    this.value = value;
    this.max = max;
  }
}

/**
 * A plugin's content that cannot be put on a host safely: a symbolic link pointing out of
 * its tree, an absolute or `..` path, a device, a hard link. Names the plugin and the path.
 */
export class PluginContentError extends StackbusError {
  override name = "PluginContentError";
  readonly plugin: string;
  readonly path: string;

  constructor(plugin: string, path: string, problem: string, outcome: string) {
    super(ErrorCode.PluginSource, `plugin ${plugin}: ${JSON.stringify(path)} ${problem}; ${outcome}`, { plugin, path, problem });
    this.plugin = plugin;
    this.path = path;
  }
}
