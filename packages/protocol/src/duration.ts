import { ErrorCode, StackbusError } from "./errors.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration as every stackbus timeout option takes it: milliseconds, or text such as
 * `"250ms"`, `"90s"`, `"15m"`, `"1h"`, `"1m30s"`. Compiled to milliseconds by parseDuration.
 */
export type Duration = number | string;

/** Parses a Duration into milliseconds; `what` names the option in the error. */
export function parseDuration(input: Duration, what = "duration"): number {
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) throw badDuration(what, String(input));
    return Math.round(input);
  }
  const text = input.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) throw badDuration(what, input);
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] ?? 0), 0));
}

function badDuration(what: string, value: string): StackbusError {
  return new StackbusError(
    ErrorCode.InvalidArgument,
    `${what} ${JSON.stringify(value)} is not a duration (use milliseconds or e.g. "90s", "15m", "1h")`,
    { value },
  );
}

/** Formats milliseconds for people: `850ms`, `12.3s`, `4m05s`, `1h02m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  return `${m}m${String(s).padStart(2, "0")}s`;
}
