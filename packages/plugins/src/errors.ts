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
