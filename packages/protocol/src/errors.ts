import type { Diagnostic } from "./messages.js";

/**
 * The closed set of error codes stackbus uses, on the bus and in processes.
 * Errors cross the bus as `{ code, message, data }` and are typed again on receipt.
 */
export const ErrorCode = {
  BadMessage: "BAD_MESSAGE",
  InvalidName: "INVALID_NAME",
  InvalidManifest: "INVALID_MANIFEST",
  InvalidLocalConf: "INVALID_LOCALCONF",
  InvalidArgument: "INVALID_ARGUMENT",
  NotFound: "NOT_FOUND",
  Conflict: "CONFLICT",
  /** A service or peer does not answer (nothing listens, or its store failed). */
  Unavailable: "UNAVAILABLE",
  /** The NATS server itself cannot be reached: no server at the URLs, or the connection timed out. */
  NatsUnreachable: "NATS_UNREACHABLE",
  Timeout: "TIMEOUT",
  PluginSource: "PLUGIN_SOURCE",
  PluginRef: "PLUGIN_REF",
  PluginUrl: "PLUGIN_URL",
  PluginOffline: "PLUGIN_OFFLINE",
  PluginOrder: "PLUGIN_ORDER",
  DigestMismatch: "DIGEST_MISMATCH",
  SessionEnded: "SESSION_ENDED",
  MergeFailed: "MERGE_FAILED",
  PermissionDenied: "PERMISSION_DENIED",
  TooLarge: "TOO_LARGE",
  Internal: "INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** What a plugin error names: the plugin, its source (credentials stripped) and the ref or archive. */
interface PluginErrorData {
  plugin?: string;
  url?: string;
  ref?: string;
  object?: string;
  commit?: string;
}

/**
 * The `data` each code carries. Every field is optional: a code is raised in several
 * places, and each names what it knows. Read it through `hasCode(err, code)`.
 */
export interface ErrorDataMap {
  BAD_MESSAGE: { subject?: string; issues?: string[] };
  INVALID_NAME: { kind: string; value: string };
  INVALID_MANIFEST: { file?: string; line?: number; path?: string; diagnostics?: Diagnostic[] };
  INVALID_LOCALCONF: { file?: string; line?: number; diagnostics?: Diagnostic[] };
  INVALID_ARGUMENT: { value?: string; file?: string; key?: string; host?: string; fd?: number; commit?: string; record?: string; problem?: string };
  NOT_FOUND: PluginErrorData & { lab?: string; host?: string; runId?: string; revision?: number; file?: string; path?: string; unknown?: string[]; what?: string };
  CONFLICT: { lab?: string; runId?: string; revision?: number; outDir?: string; existing?: string[]; busy?: unknown; other?: unknown };
  UNAVAILABLE: PluginErrorData & { subject?: string; servers?: string[]; lab?: string; missing?: string[]; versions?: Array<{ host: string; version: string }> };
  NATS_UNREACHABLE: { servers: string[] };
  TIMEOUT: { subject?: string };
  PLUGIN_SOURCE: PluginErrorData & { status?: number };
  PLUGIN_REF: PluginErrorData;
  PLUGIN_URL: PluginErrorData & { scheme?: string };
  PLUGIN_OFFLINE: PluginErrorData;
  PLUGIN_ORDER: { missing?: Array<{ plugin: string; requires: string }>; cycle?: string[]; duplicates?: string[] };
  DIGEST_MISMATCH: PluginErrorData & { expected?: string; actual?: string; expectedSize?: number; actualSize?: number };
  SESSION_ENDED: { status?: number; exitCode?: number | null; signal?: string | null };
  MERGE_FAILED: { group?: string; spec?: string; file?: string; line?: number; variables?: string[]; path?: string; problems?: string[]; count?: number; length?: number };
  PERMISSION_DENIED: PluginErrorData & { operation?: "publish" | "subscribe" | "connect"; subject?: string; user?: string; queue?: string; path?: string; reason?: string; errno?: string; lab?: string; host?: string };
  TOO_LARGE: { subject: string; bytes: number };
  INTERNAL: PluginErrorData & { lab?: string; path?: string; reason?: string; errno?: string };
}

/** The data of an error with code `C`; any record when the code is not known statically. */
export type ErrorData<C extends ErrorCode = ErrorCode> = ErrorCode extends C ? Record<string, unknown> : ErrorDataMap[C];

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** An error as it crosses the bus. */
export interface WireError {
  code: ErrorCode;
  message: string;
  data?: Record<string, unknown> | undefined;
}

/**
 * Base of every error stackbus raises on purpose. Context lives in `data`, not only in the
 * message; its shape follows the code (`ErrorDataMap`).
 */
export class StackbusError<C extends ErrorCode = ErrorCode> extends Error {
  override name = "StackbusError";
  readonly code: C;
  readonly data: Readonly<ErrorData<C>>;

  constructor(code: C, message: string, data: ErrorData<C> = {} as ErrorData<C>, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.data = data;
  }

  toJSON(): WireError {
    return Object.keys(this.data).length > 0
      ? { code: this.code, message: this.message, data: { ...this.data } }
      : { code: this.code, message: this.message };
  }

  /** Types a wire error again, into the subclass its code belongs to where there is one. */
  static fromJSON(wire: WireError): StackbusError {
    const data = wire.data ?? {};
    switch (wire.code) {
      case ErrorCode.InvalidName:
        return new InvalidNameError(String(data["kind"] ?? "name"), String(data["value"] ?? ""), wire.message);
      case ErrorCode.BadMessage:
        return new BadMessageError(String(data["subject"] ?? ""), wire.message, stringArray(data["issues"]));
      default:
        return new StackbusError(wire.code, wire.message, data);
    }
  }
}

function stringArray(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}

/** A lab, host, plugin or other name that cannot become a subject token, key or path part. */
export class InvalidNameError extends StackbusError<typeof ErrorCode.InvalidName> {
  override name = "InvalidNameError";
  readonly kind: string;
  readonly value: string;
  constructor(kind: string, value: string, message: string) {
    super(ErrorCode.InvalidName, message, { kind, value });
    this.kind = kind;
    this.value = value;
  }
}

/** A message that failed its schema. `issues` lists every problem as `path: message`. */
export class BadMessageError extends StackbusError<typeof ErrorCode.BadMessage> {
  override name = "BadMessageError";
  readonly subject: string;
  readonly issues: readonly string[];
  constructor(subject: string, message: string, issues: string[]) {
    super(ErrorCode.BadMessage, message, { subject, issues });
    this.subject = subject;
    this.issues = issues;
  }
}

/** Turns anything thrown into a StackbusError, keeping the original as `cause`. */
export function toStackbusError(err: unknown, fallback: ErrorCode = ErrorCode.Internal): StackbusError {
  if (err instanceof StackbusError) return err;
  if (err instanceof Error) return new StackbusError(fallback, err.message, {}, { cause: err });
  return new StackbusError(fallback, String(err));
}

/** True when `err` is a StackbusError with `code`; its `data` is then typed for that code. */
export function hasCode<K extends ErrorCode>(err: unknown, code: K): err is StackbusError<K> {
  return err instanceof StackbusError && err.code === code;
}

/** True when `value` names one of the known error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && KNOWN_CODES.has(value);
}
