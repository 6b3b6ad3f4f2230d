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
  Unavailable: "UNAVAILABLE",
  Timeout: "TIMEOUT",
  PluginSource: "PLUGIN_SOURCE",
  PluginRef: "PLUGIN_REF",
  PluginUrl: "PLUGIN_URL",
  PluginOffline: "PLUGIN_OFFLINE",
  PluginOrder: "PLUGIN_ORDER",
  DigestMismatch: "DIGEST_MISMATCH",
  HookFailed: "HOOK_FAILED",
  SessionEnded: "SESSION_ENDED",
  MergeFailed: "MERGE_FAILED",
  Canceled: "CANCELED",
  PermissionDenied: "PERMISSION_DENIED",
  TooLarge: "TOO_LARGE",
  Internal: "INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/** An error as it crosses the bus. */
export interface WireError {
  code: ErrorCode;
  message: string;
  data?: Record<string, unknown> | undefined;
}

/** Base of every error stackbus raises on purpose. Context lives in `data`, not only in the message. */
export class StackbusError extends Error {
  override name = "StackbusError";
  readonly code: ErrorCode;
  readonly data: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
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
export class InvalidNameError extends StackbusError {
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
export class BadMessageError extends StackbusError {
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

/** True when `value` names one of the known error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && KNOWN_CODES.has(value);
}
