import { MERGE_GROUPS, type Diagnostic } from "@stackbus/protocol";
import { analyseSpec, blocksBySpec } from "./content.js";
import { listPlugins } from "./plugins.js";
import { diagnostic, sameDiagnostic, uniqueDiagnostics, type MetaBlock, type ParsedLocalConf } from "./types.js";

/** DevStack's meta-section header test (awk `/^\[\[.+\|.*\]\]/`): no end anchor, greedy. */
const HEADER = /^\[\[(.+\|.*)\]\]/;
const KNOWN_GROUPS: readonly string[] = ["local", ...MERGE_GROUPS];

export interface ParseOptions {
  /**
   * The line number of the text's first line, when the text is embedded in another file
   * (a manifest's `localConfText`). @default 1
   */
  firstLine?: number;
}

/** Splits text into lines as a line-oriented tool reads it (a final newline ends the last line). */
export function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split(/\r?\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * Parses a local.conf into its [[group|file]] blocks the way DevStack's inc/meta-config
 * reads it, extracts the localrc content and lists the enable_plugin lines. Never
 * throws: every problem is a diagnostic naming `file:line`.
 */
export function parseLocalConf(text: string, file: string, options: ParseOptions = {}): ParsedLocalConf {
  const first = options.firstLine ?? 1;
  const diagnostics: Diagnostic[] = [];
  const blocks: MetaBlock[] = [];
  let current: MetaBlock | undefined;
  let sawHeader = false;
  const stray: number[] = [];

  splitLines(text).forEach((raw, index) => {
    const line = first + index;
    const report = (severity: Diagnostic["severity"], message: string) => diagnostics.push(diagnostic(severity, file, line, message));
    const m = HEADER.exec(raw);
    if (m) {
      sawHeader = true;
      const inner = raw.slice(2, raw.indexOf("]]", raw.indexOf("|")));
      const firstField = raw.split(/[ \t]+/)[0] ?? "";
      const parts = firstField.replace(/[[\]]/g, "").split("|");
      const group = parts[0] ?? "";
      const spec = parts[1] ?? "";
      current = undefined;
      if (/[ \t]/.test(inner)) {
        if (group === "") {
          report(
            "warning",
            `${JSON.stringify(raw.trim())} is read by DevStack as a [[group|file]] header with spaces that matches no group: the lines after it, up to the next header, are ignored`,
          );
          return;
        }
        if (spec === "") {
          report("warning", `header ${JSON.stringify(raw.trim())} has a space before its file spec: DevStack reads an empty file spec and ignores the block`);
          return;
        }
        report("warning", `header ${JSON.stringify(raw.trim())} contains spaces: DevStack reads it only up to the first space, as [[${group}|${spec}]]`);
      } else if (group === "") {
        report("error", `malformed meta-section header ${JSON.stringify(raw.trim())}: the group before "|" is empty`);
        return;
      } else if (spec === "") {
        report("warning", `header ${JSON.stringify(raw.trim())} has an empty file spec: DevStack ignores the block`);
        return;
      }
      if (parts.length > 2) report("warning", `header ${JSON.stringify(raw.trim())}: the text after the second "|" is ignored, as DevStack ignores it`);
      const after = raw.slice(m[0].length);
      if (/^[^ \t]/.test(after)) {
        report("warning", `header ${JSON.stringify(raw.trim())}: the text right after "]]" becomes part of the file spec (${JSON.stringify(spec)}), as in DevStack`);
      }
      if (!KNOWN_GROUPS.includes(group)) {
        report(
          "warning",
          `group ${JSON.stringify(group)} is never merged: stack.sh reads [[local|localrc]] and merges ${MERGE_GROUPS.map((g) => `[[${g}|...]]`).join(", ")}`,
        );
      } else if (group === "local" && spec !== "localrc") {
        report("warning", `[[local|${spec}]] is ignored: only [[local|localrc]] is read`);
      }
      current = { group, spec, file, line, lines: [] };
      blocks.push(current);
      return;
    }
    if (/^\[\[[^\s[]/.test(raw)) {
      report("error", `malformed meta-section header ${JSON.stringify(raw.trim())}: expected [[group|file]] (DevStack would read it as an ordinary line of the block before it)`);
    }
    if (current !== undefined) current.lines.push({ text: raw, line });
    else if (!sawHeader && /\S/.test(raw) && !/^\s*#/.test(raw)) stray.push(line);
  });

  if (stray.length > 0) {
    diagnostics.unshift(
      diagnostic(
        "warning",
        file,
        stray[0] as number,
        `${stray.length === 1 ? "this line comes" : `${stray.length} lines (from this one) come`} before the first [[group|file]] header and ${stray.length === 1 ? "is" : "are"} ignored, as DevStack ignores them`,
      ),
    );
  }
  const content = contentDiagnostics(blocks);
  return {
    blocks,
    localrc: localrcOf(blocks),
    plugins: content.plugins,
    diagnostics: byPlace([...diagnostics, ...content.diagnostics], [file]),
  };
}

/**
 * Combines local.confs applied in order (the lab's common file first, then the host's):
 * blocks, localrc and plugins concatenated, as if the files were one. The content of
 * merge blocks and the plugin list are checked again over the whole, so a plugin enabled
 * in both files is an error naming both file:line.
 */
export function combineLocalConfs(parts: readonly ParsedLocalConf[]): ParsedLocalConf {
  const headerDiagnostics = parts.flatMap((part) => {
    const own = contentDiagnostics(part.blocks).diagnostics;
    return part.diagnostics.filter((d) => !own.some((o) => sameDiagnostic(o, d)));
  });
  const blocks = parts.flatMap((p) => p.blocks);
  const content = contentDiagnostics(blocks);
  return {
    blocks,
    localrc: localrcOf(blocks),
    plugins: content.plugins,
    diagnostics: byPlace(
      uniqueDiagnostics([...headerDiagnostics, ...content.diagnostics]),
      parts.flatMap((p) => [...p.blocks.map((b) => b.file), ...p.diagnostics.map((d) => d.file)]),
    ),
  };
}

/** Orders diagnostics by file (in the order given) and line, keeping the order of equals. */
function byPlace(list: Diagnostic[], files: readonly string[]): Diagnostic[] {
  const rank = (d: Diagnostic) => {
    const i = files.indexOf(d.file);
    return i < 0 ? files.length : i;
  };
  return list
    .map((d, i) => ({ d, i }))
    .sort((a, b) => rank(a.d) - rank(b.d) || (a.d.line ?? 0) - (b.d.line ?? 0) || a.i - b.i)
    .map((x) => x.d);
}

function localrcOf(blocks: readonly MetaBlock[]): string {
  return localrcBlocks(blocks)
    .flatMap((b) => b.lines.map((l) => `${l.text}\n`))
    .join("");
}

function localrcBlocks(blocks: readonly MetaBlock[]): MetaBlock[] {
  return blocks.filter((b) => b.group === "local" && b.spec === "localrc");
}

/** Diagnostics that depend on every block together: the content of ini blocks (every group but local) and plugins. */
function contentDiagnostics(blocks: readonly MetaBlock[]) {
  const diagnostics: Diagnostic[] = [];
  const groups = [...new Set(blocks.map((b) => b.group))].filter((g) => g !== "local");
  for (const group of groups) {
    for (const specBlocks of blocksBySpec(blocks.filter((b) => b.group === group)).values()) {
      diagnostics.push(...analyseSpec(specBlocks).diagnostics);
    }
  }
  const plugins = listPlugins(localrcBlocks(blocks));
  diagnostics.push(...plugins.diagnostics);
  return { plugins: plugins.plugins, diagnostics };
}
