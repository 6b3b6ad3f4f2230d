/**
 * local.conf editors (DevStack's localconf_set / localrc_set), on text. stackbus writes one
 * form for every line it adds: `option=value`, with no spaces around `=`. That is what
 * DevStack's code writes (its own test expects ` = ` and fails silently), and it is the only
 * form that is valid in `[[local|localrc]]`, whose content is sourced as bash. A value that
 * is replaced keeps the spacing of the line it replaces.
 */
import { splitLines } from "./parse.js";

function isMetaHeader(line: string): boolean {
  return /^\[\[.+\|.*\]\]/.test(line);
}

function isOption(line: string, option: string): boolean {
  return line.startsWith(option) && /^[ \t]*=/.test(line.slice(option.length));
}

/** Which lines belong to the [[group|conf]] blocks: from each such header to the next header. */
function metaRanges(lines: readonly string[], header: string): boolean[] {
  let active = false;
  return lines.map((line) => {
    if (line.startsWith(header)) active = true;
    else if (isMetaHeader(line)) active = false;
    return active;
  });
}

/** Inside the meta ranges: from a `[section]` line to the next section or meta header. */
function sectionRanges(lines: readonly string[], inMeta: readonly boolean[], section: string): boolean[] {
  let active = false;
  return lines.map((line, i) => {
    if (!inMeta[i]) active = false;
    else if (line.startsWith(`[${section}]`)) active = true;
    else if (/^\[.*\]/.test(line)) active = false;
    return active;
  });
}

function join(lines: readonly string[]): string {
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

function replaceValue(line: string, option: string, value: string): string {
  const spacing = /^[ \t]*=[ \t]*/.exec(line.slice(option.length))?.[0] ?? "=";
  return `${option}${spacing}${value}`;
}

/**
 * localconf_set: sets `option` of `[section]` (no section: directly in the block) inside the
 * `[[group|conf]]` block of a local.conf text, adding the block, the section or the option
 * as needed (right after the block's header or the section's header). No-op when group,
 * conf, option or value is empty.
 */
export function localconfSet(text: string, group: string, conf: string, section: string, option: string, value: string): string {
  if (group === "" || conf === "" || option === "" || value === "") return text;
  const header = `[[${group}|${conf}]]`;
  const lines = splitLines(text);
  const inMeta = metaRanges(lines, header);
  if (!inMeta.some(Boolean)) {
    const added = [header, ...(section !== "" ? [`[${section}]`] : []), `${option}=${value}`];
    return `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}\n${added.join("\n")}\n`;
  }
  const insertAfter = (match: (line: string, i: number) => boolean, added: string[]) =>
    join(lines.flatMap((line, i) => (match(line, i) ? [line, ...added] : [line])));
  const isHeaderLine = (line: string) => line.startsWith(header);

  const scope = section === "" ? inMeta : sectionRanges(lines, inMeta, section);
  if (section !== "" && !scope.some(Boolean)) return insertAfter(isHeaderLine, [`[${section}]`, `${option}=${value}`]);
  if (lines.some((line, i) => scope[i] && isOption(line, option))) {
    return join(lines.map((line, i) => (scope[i] && isOption(line, option) ? replaceValue(line, option, value) : line)));
  }
  if (section === "") return insertAfter(isHeaderLine, [`${option}=${value}`]);
  return insertAfter((line, i) => scope[i] === true && line.startsWith(`[${section}]`), [`${option}=${value}`]);
}

/** localrc_set: sets a variable in `[[local|localrc]]` (as `NAME=value`). */
export function localrcSet(text: string, option: string, value: string): string {
  return localconfSet(text, "local", "localrc", "", option, value);
}
