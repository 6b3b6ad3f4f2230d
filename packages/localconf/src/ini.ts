/**
 * DevStack's inc/ini-config operations on the text of an ini file, as the local.conf merge
 * uses them. Section and option names are matched literally (DevStack splices them into
 * sed regexes unescaped); values are written as given (the caller has already expanded
 * them the way DevStack's eval and echo do). Everything else follows the sed scripts:
 * a section's range runs from a line starting with `[section]` to the next line starting
 * with `[` that has a `]`, inclusive; new options go right after every header line of
 * their section; replaced values keep the line's spacing around `=`.
 */

interface Lines {
  lines: string[];
  newlineAtEnd: boolean;
}

function toLines(text: string): Lines {
  if (text === "") return { lines: [], newlineAtEnd: true };
  const newlineAtEnd = text.endsWith("\n");
  const lines = text.split("\n");
  if (newlineAtEnd) lines.pop();
  return { lines, newlineAtEnd };
}

function fromLines({ lines, newlineAtEnd }: Lines): string {
  if (lines.length === 0) return "";
  return lines.join("\n") + (newlineAtEnd ? "\n" : "");
}

function isHeaderOf(line: string, section: string): boolean {
  return line.startsWith(`[${section}]`);
}

function isAnyHeader(line: string): boolean {
  return /^\[.*\]/.test(line);
}

function isOption(line: string, option: string): boolean {
  return line.startsWith(option) && /^[ \t]*=/.test(line.slice(option.length));
}

/** Which lines fall inside the section's ranges (sed `/^\[section\]/,/^\[.*\]/`). */
function sectionRanges(lines: readonly string[], section: string): boolean[] {
  let active = false;
  return lines.map((line) => {
    if (!active) {
      active = isHeaderOf(line, section);
      return active;
    }
    if (isAnyHeader(line)) active = false;
    return true;
  });
}

function insertAfterHeaders(text: string, section: string, newLine: string): string {
  const doc = toLines(text);
  const out: string[] = [];
  let appendedAtEnd = false;
  doc.lines.forEach((line, i) => {
    out.push(line);
    if (isHeaderOf(line, section)) {
      out.push(newLine);
      if (i === doc.lines.length - 1) appendedAtEnd = true;
    }
  });
  return fromLines({ lines: out, newlineAtEnd: doc.newlineAtEnd || appendedAtEnd });
}

/** `ini_has_option`: a line `option =` (any value, even empty) inside the section. */
export function iniHasOption(text: string, section: string, option: string): boolean {
  const { lines } = toLines(text);
  const mask = sectionRanges(lines, section);
  return lines.some((line, i) => mask[i] && isOption(line, option));
}

/**
 * `iniset`: replaces the option's value in place (every occurrence in the section, spacing
 * kept), or inserts `option = value` right after the section header, appending
 * `\n[section]` first when the section is missing (so a new file starts with a blank line).
 * No-op when section or option is empty.
 */
export function iniSet(text: string, section: string, option: string, value: string): string {
  if (section === "" || option === "") return text;
  let doc = text;
  if (!toLines(doc).lines.some((line) => isHeaderOf(line, section))) doc = `${doc}\n[${section}]\n`;
  if (!iniHasOption(doc, section, option)) return insertAfterHeaders(doc, section, `${option} = ${value}`);
  const parsed = toLines(doc);
  const mask = sectionRanges(parsed.lines, section);
  const lines = parsed.lines.map((line, i) => {
    if (!mask[i] || !isOption(line, option)) return line;
    const prefix = /^[ \t]*=[ \t]*/.exec(line.slice(option.length))?.[0] ?? "=";
    return `${option}${prefix}${value}`;
  });
  return fromLines({ lines, newlineAtEnd: parsed.newlineAtEnd });
}

/** `iniadd_literal`: inserts `option = value` right after the section header; no-op when the section is missing. */
export function iniAddLiteral(text: string, section: string, option: string, value: string): string {
  if (section === "" || option === "") return text;
  return insertAfterHeaders(text, section, `${option} = ${value}`);
}

/** `inidelete`: removes every `option =` line inside the section. */
export function iniDelete(text: string, section: string, option: string): string {
  if (section === "" || option === "") return text;
  const parsed = toLines(text);
  const mask = sectionRanges(parsed.lines, section);
  const lines = parsed.lines.filter((line, i) => !(mask[i] && isOption(line, option)));
  return fromLines({ lines, newlineAtEnd: parsed.newlineAtEnd });
}

function collapse(text: string): string {
  return text.split(/[ \t\n]+/).filter((w) => w !== "").join(" ");
}

/** `iniget`: the option's value, with whitespace collapsed as DevStack's unquoted echo does; empty when absent. */
export function iniGet(text: string, section: string, option: string): string {
  const { lines } = toLines(text);
  const mask = sectionRanges(lines, section);
  const found = lines.filter((line, i) => mask[i] && isOption(line, option)).join("\n");
  const eq = found.indexOf("=");
  return collapse(eq < 0 ? found : found.slice(eq + 1));
}

/** `iniget_multiline`: every value of the option, space-joined. */
export function iniGetMultiline(text: string, section: string, option: string): string {
  const { lines } = toLines(text);
  const mask = sectionRanges(lines, section);
  const values = lines
    .filter((line, i) => mask[i] && isOption(line, option))
    .map((line) => line.slice(option.length).replace(/^[ \t]*=[ \t]*/, ""));
  return collapse(values.join("\n"));
}

/** `iniget_sections`: every section name, space-joined (`[ ccc ]` gives `ccc`). */
export function iniSections(text: string): string {
  const { lines } = toLines(text);
  return collapse(
    lines
      .filter((line) => /^\[.*\]/.test(line))
      .map((line) => line.replace(/^\[(.*)\]/, "$1"))
      .join("\n"),
  );
}
