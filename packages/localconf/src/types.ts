import type { Diagnostic } from "@stackbus/protocol";

/** One line of a local.conf, verbatim, with its line number in the file it came from. */
export interface SourceLine {
  text: string;
  line: number;
}

/** One [[group|spec]] block: header position and its content lines (verbatim, with line numbers). */
export interface MetaBlock {
  /** The group (DevStack's phase name): `local`, `post-config`, `extra`, `post-extra`, `test-config`. */
  group: string;
  /** The file spec as written, unexpanded (`$NOVA_CONF`, `/etc/nova/nova.conf`). */
  spec: string;
  /** The local.conf this block came from. */
  file: string;
  /** Line of the `[[group|spec]]` header. */
  line: number;
  lines: SourceLine[];
}

/** One `enable_plugin NAME GITURL [GITREF]` line of the localrc content, read statically. */
export interface PluginLine {
  name: string;
  url: string;
  /** The ref as written, or `master` (DevStack's default) when none is given. */
  ref: string;
  file: string;
  line: number;
}

/** What a local.conf (or several, combined) means before anything runs. */
export interface ParsedLocalConf {
  /** Every [[group|spec]] block DevStack would read, in file order. */
  blocks: MetaBlock[];
  /** All `[[local|localrc]]` content, in order, verbatim, each line ending in a newline. */
  localrc: string;
  /** The plugins enabled in localrc, in registration order (a duplicate is left out and reported). */
  plugins: PluginLine[];
  /** Problems found, each naming file:line in its message. */
  diagnostics: Diagnostic[];
}

/** Builds a diagnostic whose message names `file:line`. */
export function diagnostic(severity: Diagnostic["severity"], file: string, line: number, text: string): Diagnostic {
  return { severity, file, line, message: `${file}:${line}: ${text}` };
}

/** Two diagnostics say the same thing about the same place. */
export function sameDiagnostic(a: Diagnostic, b: Diagnostic): boolean {
  return a.severity === b.severity && a.file === b.file && a.line === b.line && a.path === b.path && a.message === b.message;
}

/** Removes repeated diagnostics, keeping the first of each. */
export function uniqueDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return list.filter((d) => {
    const key = JSON.stringify([d.severity, d.file, d.line, d.path, d.message]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
