import type { Diagnostic } from "@stackbus/protocol";
import { diagnostic, type MetaBlock } from "./types.js";

/** One value of a key, and where it was written. */
export interface ValueSource {
  text: string;
  file: string;
  line: number;
}

/** A key of a section as merge_config_file collects it: every value, in local.conf order. */
export interface AttrModel {
  key: string;
  file: string;
  line: number;
  values: ValueSource[];
}

/** A run of keys under one [section] header (a section re-opened later is a new run, as in DevStack). */
export interface SectionModel {
  name: string;
  file: string;
  line: number;
  attrs: AttrModel[];
}

/** What the blocks of one [[group|spec]] mean to DevStack's merge, plus the problems found. */
export interface SpecModel {
  sections: SectionModel[];
  diagnostics: Diagnostic[];
}

/** Characters that make DevStack's eval of a key or section name run or split something. */
const UNSAFE_NAME = /[\s;&|<>()`"'\\]/;

function unsafeChar(name: string): string | undefined {
  return UNSAFE_NAME.exec(name)?.[0];
}

function describeChar(c: string): string {
  if (c === " ") return "a space";
  if (c === "\t") return "a tab";
  return JSON.stringify(c);
}

/** How the merge will rewrite a value when it writes it (DevStack's read, eval and unquoted echo). */
export function valueQuirks(value: string): string[] {
  const reasons: string[] = [];
  if (value.includes('"')) reasons.push("double quotes are removed");
  if (value.includes("\\")) reasons.push("backslashes are removed (a doubled one becomes one)");
  if (/[ \t]{2,}/.test(value)) reasons.push("runs of spaces become one space");
  if (/[*?]/.test(value) || /\[[^\]]*\]/.test(value)) {
    reasons.push("glob characters are replaced by the matching file names of the working directory, when any match");
  }
  return reasons;
}

/**
 * Reads the content of every block of one [[group|spec]] (in order, as DevStack's
 * get_meta_section concatenates them) the way merge_config_file's awk does: section
 * headers, comments, `key = value` lines, everything else ignored. A [section] carries
 * over from one block into the next. Reports each line DevStack would silently drop or
 * misread.
 */
export function analyseSpec(blocks: readonly MetaBlock[]): SpecModel {
  const diagnostics: Diagnostic[] = [];
  const sections: SectionModel[] = [];
  const attrs = new Map<string, { attr: AttrModel; dropped: boolean }>();
  let section = "";
  let lastSection = "";
  let sectionAt: { file: string; line: number } | undefined;

  for (const block of blocks) {
    let ownSection = false;
    let warnedCarry = false;
    for (const { text, line } of block.lines) {
      const where = (severity: Diagnostic["severity"], message: string) =>
        diagnostics.push(diagnostic(severity, block.file, line, message));

      if (/^\[.+\]/.test(text)) {
        const firstField = text.split(/[ \t]+/)[0] ?? "";
        const name = firstField.replace(/[[\]]/g, "");
        const intended = /^\[([^\]]*)\]/.exec(text)?.[1] ?? "";
        if (!text.startsWith("[[")) {
          if (name !== intended) {
            where(
              "error",
              name === ""
                ? `section header ${JSON.stringify(text.trim())} has spaces inside the brackets: DevStack reads it as an empty section name and writes every key under it as a section of its own; write [${intended.trim()}]`
                : `section header ${JSON.stringify(text.trim())} is read by DevStack as [${name}]; write [${intended.trim()}]`,
            );
          } else {
            const bad = unsafeChar(name);
            if (bad !== undefined) {
              where("error", `section name ${JSON.stringify(name)} contains ${describeChar(bad)}: DevStack evaluates section names as shell words`);
            }
          }
        }
        section = name;
        sectionAt = { file: block.file, line };
        ownSection = true;
        continue;
      }
      if (/^ *#/.test(text)) continue;
      if (/^[^ \t]/.test(text)) {
        const eq = text.indexOf("=");
        const noEquals = eq < 0;
        const key = noEquals ? text.replace(/[ \t]+$/, "") : text.slice(0, eq).replace(/[ \t]+$/, "");
        const value = noEquals ? "" : text.slice(eq + 1).replace(/^[ \t]+/, "").replace(/[ \t]+$/, "");
        const bad = unsafeChar(key);
        if (key === "") {
          where("error", `line ${JSON.stringify(text)} has no key before "=": DevStack would write its value as a key`);
          continue;
        }
        if (bad !== undefined) {
          const hint = key.startsWith(";") ? ' (";" does not start a comment in local.conf; use "#")' : "";
          where(
            "error",
            noEquals
              ? `line ${JSON.stringify(text)} has no "=" and is not a key${hint}: DevStack would write it as the key ${JSON.stringify(key)}`
              : `key ${JSON.stringify(key)} contains ${describeChar(bad)}${hint}: DevStack evaluates key names as shell words, so it would run or split it`,
          );
          continue;
        }
        if (noEquals) {
          where("warning", `line ${JSON.stringify(key)} has no "=": it is written as "${key} = " (an empty value), as DevStack does`);
        } else {
          const quirks = valueQuirks(value);
          if (quirks.length > 0) {
            where("warning", `the value of ${JSON.stringify(key)} is rewritten when merged, as DevStack rewrites it: ${quirks.join("; ")}`);
          }
        }
        const id = `${section}\u0000${key}`;
        const source: ValueSource = { text: value, file: block.file, line };
        let entry = attrs.get(id);
        if (entry === undefined) {
          if (section !== lastSection) {
            sections.push({ name: section, file: sectionAt?.file ?? block.file, line: sectionAt?.line ?? line, attrs: [] });
            lastSection = section;
          }
          const current = sections[sections.length - 1];
          entry = { attr: { key, file: block.file, line, values: [] }, dropped: current === undefined };
          current?.attrs.push(entry.attr);
          attrs.set(id, entry);
        }
        entry.attr.values.push(source);
        if (entry.dropped) {
          where("warning", `key ${JSON.stringify(key)} comes before any [section] header: DevStack drops it silently, and so does stackbus`);
        } else if (!ownSection && !warnedCarry && sectionAt !== undefined) {
          warnedCarry = true;
          where(
            "warning",
            `key ${JSON.stringify(key)} has no [section] header in its [[${block.group}|${block.spec}]] block: it goes into [${section}] from ${sectionAt.file}:${sectionAt.line}, as in DevStack`,
          );
        }
        continue;
      }
      const trimmed = text.trim();
      if (trimmed !== "" && !trimmed.startsWith("#")) {
        where("warning", `indented line ${JSON.stringify(trimmed)} is ignored: DevStack skips lines that start with a space or tab (there are no continuation lines)`);
      }
    }
  }
  return { sections, diagnostics };
}

/** Groups blocks by file spec, in order of first appearance. */
export function blocksBySpec(blocks: readonly MetaBlock[]): Map<string, MetaBlock[]> {
  const out = new Map<string, MetaBlock[]>();
  for (const b of blocks) {
    const list = out.get(b.spec);
    if (list) list.push(b);
    else out.set(b.spec, [b]);
  }
  return out;
}
