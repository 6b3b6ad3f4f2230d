import { parse, type ParseEntry } from "shell-quote";
import { nameProblem, type Diagnostic } from "@stackbus/protocol";
import { diagnostic, type MetaBlock, type PluginLine } from "./types.js";

const OPEN = "\u0001";
const CLOSE = "\u0002";
const PLACEHOLDER = new RegExp(`${OPEN}([^${CLOSE}]*)${CLOSE}`, "g");
const KEYWORDS = new Set(["then", "do", "else", "{", "!", "time"]);
const DECLARATIONS = new Set(["export", "declare", "local", "readonly", "typeset"]);

/** A variable: its value, or undefined when set from something stackbus cannot read statically. */
type Vars = Map<string, string | undefined>;

interface Expanded {
  value: string;
  /** Variable references that localrc does not set (plainly) before this line. */
  unknown: string[];
}

function substitute(token: string, vars: Vars): Expanded {
  const unknown: string[] = [];
  const value = token.replace(PLACEHOLDER, (_all, ref: string) => {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(:?[-=+?])?(.*)$/s.exec(ref);
    if (!m) {
      unknown.push(ref === "" ? "$(...)" : `\${${ref}}`);
      return "";
    }
    const [, name = "", op, rest = ""] = m;
    const known = vars.has(name);
    const current = vars.get(name);
    if (known && current === undefined) {
      unknown.push(`$${name}`);
      return "";
    }
    const isSet = known;
    const nonEmpty = isSet && current !== "";
    switch (op) {
      case ":-":
      case ":=":
        return nonEmpty ? (current as string) : rest;
      case "-":
      case "=":
        return isSet ? (current as string) : rest;
      case ":+":
        return nonEmpty ? rest : "";
      case "+":
        return isSet ? rest : "";
      default:
        if (!isSet) unknown.push(`$${name}`);
        return current ?? "";
    }
  });
  return { value, unknown };
}

function words(text: string): ParseEntry[][] {
  let entries: ParseEntry[];
  try {
    entries = parse(text, (key: string) => `${OPEN}${key}${CLOSE}`);
  } catch {
    return [];
  }
  const commands: ParseEntry[][] = [[]];
  for (const e of entries) {
    if (typeof e === "object" && "comment" in e) break;
    if (typeof e === "object" && "op" in e && e.op !== "glob") {
      commands.push([]);
      continue;
    }
    commands[commands.length - 1]?.push(e);
  }
  return commands;
}

function tokenText(e: ParseEntry): string | undefined {
  if (typeof e === "string") return e;
  if (typeof e === "object" && "op" in e && e.op === "glob") return e.pattern;
  return undefined;
}

/**
 * Lists the `enable_plugin NAME GITURL [GITREF]` calls of localrc content statically, for
 * planning before any host runs. Simple assignments earlier in localrc (`GIT_BASE=...`) are
 * followed so `$GIT_BASE/openstack/x` resolves; anything else a plugin line depends on is an
 * error, because plugin sources are resolved centrally, not in a host's shell.
 */
export function listPlugins(localrcBlocks: readonly MetaBlock[]): { plugins: PluginLine[]; diagnostics: Diagnostic[] } {
  const plugins: PluginLine[] = [];
  const diagnostics: Diagnostic[] = [];
  const vars: Vars = new Map();
  for (const block of localrcBlocks) {
    for (const { text, line } of block.lines) {
      if (!/\S/.test(text) || /^\s*#/.test(text)) continue;
      const report = (severity: Diagnostic["severity"], message: string) =>
        diagnostics.push(diagnostic(severity, block.file, line, message));
      for (const command of words(text)) {
        let rest = command.map(tokenText).filter((t): t is string => t !== undefined);
        while (rest.length > 0 && KEYWORDS.has(rest[0] as string)) rest = rest.slice(1);
        if (rest.length > 0 && DECLARATIONS.has(rest[0] as string)) {
          rest = rest.slice(1).filter((t) => !t.startsWith("-"));
          for (const t of rest) assign(vars, t);
          continue;
        }
        while (rest.length > 0 && assign(vars, rest[0] as string)) rest = rest.slice(1);
        if (rest[0] !== "enable_plugin") continue;
        const args = rest.slice(1).map((t) => substitute(t, vars));
        const unknown = [...new Set(args.slice(0, 3).flatMap((a) => a.unknown))];
        if (args.length < 2) {
          report("error", `enable_plugin needs NAME and GITURL (got ${args.length === 0 ? "nothing" : JSON.stringify(args[0]?.value)})`);
          continue;
        }
        if (unknown.length > 0) {
          report(
            "error",
            `enable_plugin uses ${unknown.join(", ")}, which localrc does not set before this line: stackbus reads plugin sources from local.conf before any host runs, so they must be spelled out or set by a plain assignment above`,
          );
          continue;
        }
        const [name, url, ref] = args.map((a) => a.value) as [string, string, string | undefined];
        const problem = nameProblem(name);
        if (problem !== undefined) {
          report("error", `enable_plugin: plugin name ${JSON.stringify(name)} ${problem}`);
          continue;
        }
        if (url === "") {
          report("error", `enable_plugin ${name}: GITURL is empty`);
          continue;
        }
        if (args.length > 3) {
          report("warning", `enable_plugin ${name}: arguments after GITREF are ignored, as DevStack ignores them`);
        }
        if (/^\s/.test(text)) {
          report(
            "warning",
            `enable_plugin ${name} is indented (inside an if or a function?): stackbus plans plugins from the text of local.conf and counts it whether or not that code runs`,
          );
        }
        const first = plugins.find((p) => p.name === name);
        if (first !== undefined) {
          report(
            "error",
            `plugin ${JSON.stringify(name)} is enabled twice (first at ${first.file}:${first.line}); DevStack dies with "Plugin attempted to be enabled twice"`,
          );
          continue;
        }
        plugins.push({ name, url, ref: ref === undefined || ref === "" ? "master" : ref, file: block.file, line });
      }
    }
  }
  return { plugins, diagnostics };
}

function assign(vars: Vars, token: string): boolean {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(\+?)=(.*)$/s.exec(token);
  if (!m) return false;
  const [, name = "", append, raw = ""] = m;
  const { value, unknown } = substitute(raw, vars);
  if (unknown.length > 0) {
    vars.set(name, undefined);
    return true;
  }
  vars.set(name, append ? (vars.get(name) ?? "") + value : value);
  return true;
}
