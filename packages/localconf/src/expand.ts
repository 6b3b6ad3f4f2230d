import { ErrorCode, StackbusError } from "@stackbus/protocol";

/**
 * One piece of local.conf text to expand in the host's shell, the way DevStack expands it:
 * - `spec`: a [[group|file]] file spec, as `eval "echo $spec"`;
 * - `value`: a value written by iniset: the line is read with `read` (no -r), eval'd inside
 *   double quotes, then iniset's unquoted `echo` collapses whitespace and expands globs;
 * - `literal`: a value written by iniadd_literal (the earlier values of a repeated key):
 *   read and eval'd like `value`, without the echo;
 * - `word`: a section or key name, read and eval'd as an unquoted word (it must stay one word).
 */
export interface ExpandRequest {
  kind: "spec" | "value" | "literal" | "word";
  text: string;
}

/**
 * value: the text after DevStack's expansion; unset: variable names referenced ($X / ${X})
 * in text that are unset in the shell; error: why the shell could not expand it (a syntax
 * error, a word that became several), when it could not.
 */
export interface ExpandResult {
  value: string;
  unset: string[];
  error?: string;
}

/** Expansion is done by the caller in the host's shell. Batched: one call per merge group. */
export type Expander = (requests: readonly ExpandRequest[]) => Promise<ExpandResult[]>;

const V = "__stackbus_x";

/** bash `$'...'` quoting: any text (NUL aside, which bash cannot hold) comes back unchanged. */
function ansiC(text: string): string {
  let out = "$'";
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (code === 0) continue;
    if (ch === "\\") out += "\\\\";
    else if (ch === "'") out += "\\'";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}'`;
}

/** What bash's `read` (without -r) does to a line's backslashes. */
function readBackslashes(text: string): string {
  return text.replace(/\\(.?)/gs, "$1");
}

/**
 * Variable names `text` refers to with `$NAME`, `${NAME}` or `${NAME%...}`-style expansions,
 * as the shell would see them for this kind of request. `${NAME:-default}` and its
 * relatives are not counted (they say what to do when NAME is unset) unless `withDefaults`.
 */
export function referencedVariables(kind: ExpandRequest["kind"], text: string, options: { withDefaults?: boolean } = {}): string[] {
  const quoted = kind === "value" || kind === "literal";
  const t = kind === "spec" ? text : readBackslashes(text);
  const names = new Set<string>();
  let single = false;
  let double = false;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (!quoted && c === "'" && !double) {
      single = !single;
      continue;
    }
    if (single) continue;
    if (!quoted && c === '"') {
      double = !double;
      continue;
    }
    if (c === "\\") {
      i++;
      continue;
    }
    if (c !== "$") continue;
    const rest = t.slice(i + 1);
    const plain = /^([A-Za-z_][A-Za-z0-9_]*)/.exec(rest);
    if (plain?.[1]) {
      names.add(plain[1]);
      continue;
    }
    const braced = /^\{(#?)([A-Za-z_][A-Za-z0-9_]*)(.*)$/s.exec(rest);
    if (braced?.[2] && (options.withDefaults === true || !/^:?[-=+?]/.test(braced[3] ?? ""))) names.add(braced[2]);
  }
  return [...names];
}

function requestCode(request: ExpandRequest): string {
  const lines = [`${V}_t=${ansiC(request.text)}`];
  switch (request.kind) {
    case "spec":
      lines.push(`${V}_v=$(eval "echo $${V}_t")`);
      lines.push(`${V}_s=$?; [ "$${V}_s" -eq 0 ] || ${V}_e="bash could not evaluate it (status $${V}_s)"`);
      break;
    case "value":
    case "literal":
      lines.push(`read ${V}_l <<< "${V}_take \\"$${V}_t\\""`);
      lines.push(`eval "$${V}_l"`);
      lines.push(`${V}_s=$?; [ "$${V}_s" -eq 0 ] || ${V}_e="bash could not evaluate it (status $${V}_s)"`);
      if (request.kind === "value") lines.push(`${V}_v=$(echo $${V}_v)`);
      break;
    case "word":
      lines.push(`read ${V}_l <<< "${V}_take $${V}_t"`);
      lines.push(`eval "$${V}_l"`);
      lines.push(`${V}_s=$?; [ "$${V}_s" -eq 0 ] || ${V}_e="bash could not evaluate it (status $${V}_s)"`);
      lines.push(`[ -n "$${V}_e" ] || [ "$${V}_n" -eq 1 ] || ${V}_e="it expands to $${V}_n words"`);
      break;
  }
  return lines.join("\n");
}

/**
 * Bash code that, sourced/eval'ed in a shell, writes the results for `requests` to file
 * descriptor `fd` in a format parseExpansionOutput reads. Safe for any text: the text is
 * embedded quoted and expanded only the way DevStack expands it (so `$(...)` does run).
 * Everything runs in subshells (nothing leaks into the session, `exit` in the text ends only
 * its own request) with errexit and nounset off; the code's own status is 0.
 */
export function expansionScript(requests: readonly ExpandRequest[], fd: number): string {
  if (!Number.isInteger(fd) || fd < 3 || fd > 255) {
    throw new StackbusError(ErrorCode.InvalidArgument, `expansionScript: fd ${fd} must be an integer from 3 to 255`, { fd });
  }
  const out = [
    "(",
    "{ set +x; } 2>/dev/null",
    "set +e +u +E",
    `${V}_take() { ${V}_n=$#; ${V}_v=\${1-}; }`,
    `${V}_tmp=$(mktemp 2>/dev/null) || ${V}_tmp=`,
  ];
  requests.forEach((request, i) => {
    const names = referencedVariables(request.kind, request.text);
    out.push(
      "(",
      `${V}_v= ${V}_e= ${V}_u= ${V}_n=0`,
      ...names.map((n) => `[[ -v ${n} ]] || ${V}_u+="${n} "`),
      requestCode(request),
      `printf 'R\\0%s\\0%s\\0%s\\0%s\\0' ${i} "$${V}_v" "$${V}_u" "$${V}_e" >&${fd}`,
      "exit 0",
      `) 2>"\${${V}_tmp:-/dev/null}"`,
      `${V}_s=$?`,
      `if [ -n "$${V}_tmp" ]; then cat "$${V}_tmp" >&2; ${V}_err=$(tail -n 3 "$${V}_tmp"); else ${V}_err=; fi`,
      `printf 'E\\0%s\\0%s\\0%s\\0' ${i} "$${V}_s" "$${V}_err" >&${fd}`,
    );
  });
  out.push(`[ -z "$${V}_tmp" ] || rm -f "$${V}_tmp"`, "exit 0", ")");
  return `${out.join("\n")}\n`;
}

/** Reads what expansionScript wrote: one result per request, in order. */
export function parseExpansionOutput(output: string, count: number): ExpandResult[] {
  const fields = output.split("\u0000");
  if (fields[fields.length - 1] === "") fields.pop();
  const ran = new Map<number, { value: string; unset: string[]; error: string }>();
  const ended = new Map<number, { status: number; stderr: string }>();
  let i = 0;
  const malformed = (why: string) =>
    new StackbusError(ErrorCode.MergeFailed, `the shell's expansion output is malformed (${why})`, { count, length: output.length });
  const index = (text: string | undefined) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0 || n >= count) throw malformed(`request index ${JSON.stringify(text)}`);
    return n;
  };
  while (i < fields.length) {
    const tag = fields[i];
    if (tag === "R" && i + 4 < fields.length) {
      const n = index(fields[i + 1]);
      const unset = (fields[i + 3] ?? "").split(" ").filter((s) => s !== "");
      ran.set(n, { value: fields[i + 2] ?? "", unset, error: fields[i + 4] ?? "" });
      i += 5;
    } else if (tag === "E" && i + 3 < fields.length) {
      const n = index(fields[i + 1]);
      ended.set(n, { status: Number(fields[i + 2]), stderr: (fields[i + 3] ?? "").trim() });
      i += 4;
    } else {
      throw malformed(`unexpected field ${JSON.stringify(tag?.slice(0, 40))}`);
    }
  }
  const results: ExpandResult[] = [];
  for (let n = 0; n < count; n++) {
    const end = ended.get(n);
    if (end === undefined) throw malformed(`no result for request ${n} of ${count}`);
    const got = ran.get(n);
    const detail = end.stderr !== "" ? `: ${end.stderr.split("\n").join(" / ")}` : "";
    if (got === undefined) {
      results.push({ value: "", unset: [], error: `the shell stopped before it finished (exit status ${end.status})${detail}` });
    } else if (got.error !== "") {
      results.push({ value: got.value, unset: got.unset, error: `${got.error}${detail}` });
    } else {
      results.push({ value: got.value, unset: got.unset });
    }
  }
  return results;
}
