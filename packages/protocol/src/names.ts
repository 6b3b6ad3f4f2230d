import { InvalidNameError } from "./errors.js";

/** What kind of name is checked; used in error messages. */
export type NameKind = "lab" | "host" | "plugin" | "run" | "step" | "label" | "token" | "fact";

const TOKEN = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;
const MAX_LENGTH = 64;

/**
 * Why `value` cannot be used as a subject token (and KV key part and path part), or
 * `undefined` when it can. A safe token is 1-64 characters of letters, digits, `_` and `-`,
 * not starting with `-`.
 */
export function nameProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return `must be a string, not ${value === null ? "null" : typeof value}`;
  if (value.length === 0) return "may not be empty";
  if (value.length > MAX_LENGTH) return `may be at most ${MAX_LENGTH} characters (has ${value.length})`;
  if (value.includes(".")) return 'may not contain "." (it separates subject tokens)';
  if (value === "*" || value === ">" || value.includes("*") || value.includes(">"))
    return 'may not contain the subject wildcards "*" or ">"';
  if (/\s/.test(value)) return "may not contain spaces or other white space";
  if (value.includes("/")) return 'may not contain "/"';
  if (value.startsWith("-")) return 'may not start with "-"';
  if (!TOKEN.test(value)) {
    const bad = [...value].find((c) => !/[A-Za-z0-9_-]/.test(c)) ?? "";
    return `may contain only letters, digits, "_" and "-" (found ${JSON.stringify(bad)})`;
  }
  return undefined;
}

/** Returns `value` when it is a safe token, otherwise throws an InvalidNameError naming it. */
export function validateName(kind: NameKind, value: unknown): string {
  const problem = nameProblem(value);
  if (problem !== undefined) {
    throw new InvalidNameError(kind, String(value), `${kind} name ${JSON.stringify(value)} ${problem}`);
  }
  return value as string;
}

/** True when `value` is a safe token. */
export function isValidName(value: unknown): value is string {
  return nameProblem(value) === undefined;
}
