/**
 * The version of stackbus: what agents report, and what the coordinator compares. Agents and
 * the coordinator of one lab must share major and minor (`versionsCompatible`): the message
 * schemas may change between minor versions, never between patch versions.
 */
export const STACKBUS_VERSION = "0.1.0";

/** True when two versions may work together in one lab: the same major and minor. */
export function versionsCompatible(a: string, b: string): boolean {
  const mm = (v: string) => /^(\d+)\.(\d+)\./.exec(v)?.slice(1, 3).join(".");
  const x = mm(a);
  return x !== undefined && x === mm(b);
}
