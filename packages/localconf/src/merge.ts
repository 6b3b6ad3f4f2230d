import { dirname, resolve } from "node:path";
import { ErrorCode, StackbusError, type Diagnostic } from "@stackbus/protocol";
import { analyseSpec, blocksBySpec, type SectionModel } from "./content.js";
import { referencedVariables, type ExpandRequest, type ExpandResult, type Expander } from "./expand.js";
import { iniAddLiteral, iniDelete, iniSet } from "./ini.js";
import { diagnostic, type MetaBlock } from "./types.js";

/** What one merge group did: the files it wrote (one per file spec) and what it warned about. */
export interface MergeOutcome {
  group: string;
  files: Array<{ spec: string; path: string; created: boolean }>;
  warnings: Diagnostic[];
}

/**
 * The files a merge reads and writes, handed in by the caller (`nodeMergeFiles` is the
 * host's own file system). Paths are absolute. Each may throw; the merge reports it.
 */
export interface MergeFiles {
  /** What is at `path`: a regular file, a directory, something else, or nothing. */
  kind(path: string): "file" | "directory" | "other" | undefined;
  /** The text of the file at `path`, or null when there is none. */
  read(path: string): string | null;
  /** Creates or replaces the file at `path`. */
  write(path: string, text: string): void;
  /** Creates `dir` and its missing parents (`mkdir -p`). */
  makeDirs(dir: string): void;
  /** Removes the file at `path`, if there is one. */
  remove(path: string): void;
  /** Removes the directory `dir` when it is empty; throws otherwise. */
  removeDir(dir: string): void;
}

export interface MergeOptions {
  /** Where the merged files are read and written. */
  files: MergeFiles;
  /** Relative file specs resolve against this directory (the host's TOP_DIR). @default process.cwd() */
  cwd?: string;
}

/** Context of a merge that was refused: nothing of the group was written. */
export interface MergeErrorContext {
  group: string;
  spec?: string | undefined;
  file?: string | undefined;
  line?: number | undefined;
  /** The undefined variables that stopped the merge, when that is the reason. */
  variables?: string[] | undefined;
  /** The path that could not be used (a parent that is a file, a file that cannot be created). */
  path?: string | undefined;
  /** Every problem found, each naming file:line. */
  problems: string[];
}

/** A local.conf merge group that stackbus refused to apply; nothing of the group was written. */
export class MergeError extends StackbusError<typeof ErrorCode.MergeFailed> {
  override name = "MergeError";
  readonly group: string;
  readonly spec: string | undefined;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly variables: readonly string[];
  readonly path: string | undefined;
  readonly problems: readonly string[];

  constructor(message: string, context: MergeErrorContext, options?: { cause?: unknown }) {
    super(ErrorCode.MergeFailed, message, { ...context }, options);
    this.group = context.group;
    this.spec = context.spec;
    this.file = context.file;
    this.line = context.line;
    this.variables = context.variables ?? [];
    this.path = context.path;
    this.problems = context.problems;
  }
}

interface Problem {
  message: string;
  spec: string;
  file: string;
  line: number;
  variables?: string[];
  path?: string;
}

interface SpecPlan {
  spec: string;
  header: MetaBlock;
  specIndex: number;
  sections: Array<{
    section: SectionModel;
    nameIndex: number;
    attrs: Array<{ key: string; file: string; line: number; keyIndex: number; values: Array<{ index: number; file: string; line: number }> }>;
  }>;
}

/** Text the shell would leave as it is, by kind of request: no expansion to ask for. */
const PLAIN: Record<ExpandRequest["kind"], RegExp> = {
  spec: /^$/,
  word: /^[A-Za-z0-9_.:@%+,=/-]+$/,
  value: /^(?:(?!-)[A-Za-z0-9_.:@%+,=/-]+(?: [A-Za-z0-9_.:@%+,=/-]+)*)?$/,
  literal: /^[A-Za-z0-9_.:@%+,=/ -]*$/,
};

/** True when the shell would expand `text` to itself, so the merge need not ask. */
export function isPlain(kind: ExpandRequest["kind"], text: string): boolean {
  return PLAIN[kind].test(text);
}

/** What is at `path`, or undefined when that cannot be looked at. */
function kindOf(files: MergeFiles, path: string): ReturnType<MergeFiles["kind"]> {
  try {
    return files.kind(path);
  } catch {
    return undefined;
  }
}

/** Directories `mkdir -p dir` would create, outermost first. */
function missingDirs(files: MergeFiles, dir: string): string[] {
  const missing: string[] = [];
  for (let d = dir; kindOf(files, d) === undefined; d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  return missing;
}

/** One file spec of a group after expansion: where it goes and its sections with names and values expanded. */
interface ExpandedSpec {
  plan: SpecPlan;
  /** The absolute path the spec names; "" when it could not be expanded. */
  path: string;
  sections: Array<{ name: string; attrs: Array<{ key: string; values: string[] }> }>;
}

/** The text of one target file: as read, and as the group leaves it. */
interface FileContent {
  original: string | null;
  text: string;
  spec: string;
  header: MetaBlock;
}

/**
 * DevStack's merge_config_group for one group. Relative paths resolve against options.cwd
 * (the host's TOP_DIR). All-or-nothing: every spec of the group is expanded and checked
 * before any file is written, and a write that fails undoes the group's earlier writes.
 * Throws MergeError (code MERGE_FAILED) naming group, spec, file:line and the undefined
 * variable / bad parent.
 */
export async function mergeConfigGroup(
  blocks: readonly MetaBlock[],
  group: string,
  expand: Expander,
  options: MergeOptions,
): Promise<MergeOutcome> {
  const { files: fs } = options;
  const cwd = options.cwd ?? process.cwd();
  const mine = blocks.filter((b) => b.group === group && b.spec !== "");
  if (mine.length === 0) return { group, files: [], warnings: [] };

  const { plans, requests, plain } = planGroup(group, mine);
  const result = await expandRequests(group, expand, requests, plain);
  const problems: Problem[] = [];
  const warnings: Diagnostic[] = [];
  const expanded = plans.map((plan) => expandSpec(group, plan, result, cwd, problems, warnings));
  for (const spec of expanded) checkTarget(fs, group, spec, problems);
  if (problems.length > 0) throw refused(group, problems);

  const { contents, files } = compose(fs, group, expanded);
  writeAll(fs, group, contents);
  return { group, files, warnings };
}

/** The group's specs, and every text the shell must expand for them (plain text is kept aside). */
function planGroup(group: string, mine: readonly MetaBlock[]): { plans: SpecPlan[]; requests: ExpandRequest[]; plain: string[] } {
  const requests: ExpandRequest[] = [];
  const plain: string[] = [];
  const ask = (kind: ExpandRequest["kind"], text: string) => {
    if (isPlain(kind, text)) return -1 - (plain.push(text) - 1);
    return requests.push({ kind, text }) - 1;
  };
  const structural: Diagnostic[] = [];
  const plans: SpecPlan[] = [...blocksBySpec(mine)].map(([spec, specBlocks]) => {
    const model = analyseSpec(specBlocks);
    structural.push(...model.diagnostics.filter((d) => d.severity === "error"));
    return {
      spec,
      header: specBlocks[0] as MetaBlock,
      specIndex: ask("spec", spec),
      sections: model.sections.map((section) => ({
        section,
        nameIndex: ask("word", section.name),
        attrs: section.attrs.map((attr) => ({
          key: attr.key,
          file: attr.file,
          line: attr.line,
          keyIndex: ask("word", attr.key),
          values: attr.values.map((v, i) => ({
            index: ask(i === attr.values.length - 1 ? "value" : "literal", v.text),
            file: v.file,
            line: v.line,
          })),
        })),
      })),
    };
  });
  if (structural.length > 0) {
    const first = structural[0] as Diagnostic;
    throw new MergeError(
      `[[${group}|...]] not merged, nothing written: ${first.message}${structural.length > 1 ? ` (and ${structural.length - 1} more)` : ""}`,
      { group, file: first.file, line: first.line, problems: structural.map((d) => d.message) },
    );
  }
  return { plans, requests, plain };
}

/** Expands the requests in one batch; returns the result of a request index (negative: plain text). */
async function expandRequests(group: string, expand: Expander, requests: ExpandRequest[], plain: string[]): Promise<(i: number) => ExpandResult> {
  let results: ExpandResult[];
  try {
    results = await expand(requests);
  } catch (err) {
    throw new MergeError(
      `[[${group}|...]] not merged, nothing written: expanding its file specs, names and values failed: ${(err as Error).message}`,
      { group, problems: [] },
      { cause: err },
    );
  }
  if (results.length !== requests.length) {
    throw new MergeError(`[[${group}|...]] not merged: the expander answered ${results.length} of ${requests.length} requests`, {
      group,
      problems: [],
    });
  }
  return (i: number): ExpandResult => (i < 0 ? { value: plain[-1 - i] as string, unset: [] } : (results[i] as ExpandResult));
}

/** One spec with its path, names and values expanded; what cannot be used goes to `problems`, what is doubtful to `warnings`. */
function expandSpec(group: string, plan: SpecPlan, result: (i: number) => ExpandResult, cwd: string, problems: Problem[], warnings: Diagnostic[]): ExpandedSpec {
  const { file, line } = plan.header;
  const where = `${file}:${line}: [[${group}|${plan.spec}]]`;
  const problem = (message: string, extra: Partial<Problem> = {}) => problems.push({ message, spec: plan.spec, file, line, ...extra });
  const specResult = result(plan.specIndex);
  let path = "";
  if (specResult.error !== undefined) {
    problem(`${where}: the file spec cannot be expanded: ${specResult.error}`);
  } else if (specResult.unset.length > 0) {
    const vars = specResult.unset.map((v) => `$${v}`).join(", ");
    problem(`${where}: ${vars} ${specResult.unset.length === 1 ? "is" : "are"} not set in the host's shell (DevStack would warn and skip the rest of the group)`, {
      variables: specResult.unset,
    });
  } else if (specResult.value.trim() === "") {
    // Never an empty path: name what made it empty (a variable set to "" in the host's shell).
    const vars = referencedVariables("spec", plan.spec, { withDefaults: true });
    const why = vars.length > 0 ? `: ${vars.map((v) => `$${v}`).join(", ")} ${vars.length === 1 ? "is" : "are"} empty in the host's shell` : "";
    problem(`${where}: the file spec expands to nothing${why} (DevStack would warn and skip the rest of the group)`, vars.length > 0 ? { variables: vars } : {});
  } else if (/[ \t\n]/.test(specResult.value.trim())) {
    problem(`${where}: the file spec expands to several words (${JSON.stringify(specResult.value)})`);
  } else {
    path = resolve(cwd, specResult.value.trim());
  }

  const name = (index: number, what: string, at: { file: string; line: number }) => {
    const r = result(index);
    const place = `${at.file}:${at.line}: [[${group}|${plan.spec}]]`;
    const unset = r.unset.length > 0 ? ` (${r.unset.map((v) => `$${v}`).join(", ")} not set in the host's shell)` : "";
    if (r.error !== undefined) problem(`${place}: ${what} cannot be expanded: ${r.error}${unset}`, { file: at.file, line: at.line, variables: r.unset });
    else if (r.value === "") problem(`${place}: ${what} expands to nothing${unset}`, { file: at.file, line: at.line, variables: r.unset });
    else if (r.unset.length > 0) {
      warnings.push(diagnostic("warning", at.file, at.line, `${what} uses ${r.unset.map((v) => `$${v}`).join(", ")}, not set in the host's shell`));
    }
    return r.value;
  };
  const value = (key: string, v: { index: number; file: string; line: number }) => {
    const r = result(v.index);
    if (r.error !== undefined) {
      problems.push({ message: `${v.file}:${v.line}: [[${group}|${plan.spec}]]: the value of ${JSON.stringify(key)} cannot be expanded: ${r.error}`, spec: plan.spec, file: v.file, line: v.line });
    } else if (r.unset.length > 0) {
      warnings.push(
        diagnostic(
          "warning",
          v.file,
          v.line,
          `the value of ${JSON.stringify(key)} uses ${r.unset.map((x) => `$${x}`).join(", ")}, not set in the host's shell: it expands to empty, as in DevStack`,
        ),
      );
    }
    return r.value;
  };
  const sections = plan.sections.map((s) => ({
    name: name(s.nameIndex, `section name ${JSON.stringify(s.section.name)}`, s.section),
    attrs: s.attrs.map((a) => ({ key: name(a.keyIndex, `key ${JSON.stringify(a.key)}`, a), values: a.values.map((v) => value(a.key, v)) })),
  }));
  return { plan, path, sections };
}

/** A target whose parent is not a directory, or that is not a regular file, is a problem. */
function checkTarget(fs: MergeFiles, group: string, { plan, path }: ExpandedSpec, problems: Problem[]): void {
  if (path === "") return;
  const { file, line } = plan.header;
  const where = `${file}:${line}: [[${group}|${plan.spec}]]`;
  for (let d = dirname(path); ; d = dirname(d)) {
    const kind = kindOf(fs, d);
    if (kind !== undefined) {
      if (kind !== "directory") {
        problems.push({
          message: `${where}: bogus config file specification: ${d} exists but is not a directory (the spec expands to ${path})`,
          spec: plan.spec,
          file,
          line,
          path: d,
        });
      }
      break;
    }
    if (dirname(d) === d) break;
  }
  const target = kindOf(fs, path);
  if (target !== undefined && target !== "file") {
    problems.push({ message: `${where}: ${path} exists but is not a regular file`, spec: plan.spec, file, line, path });
  }
}

/** Every target file's new text (specs naming one file are applied to it in order), in memory. */
function compose(fs: MergeFiles, group: string, expanded: readonly ExpandedSpec[]): { contents: Map<string, FileContent>; files: MergeOutcome["files"] } {
  const contents = new Map<string, FileContent>();
  const files: MergeOutcome["files"] = [];
  for (const { plan, path, sections } of expanded) {
    let entry = contents.get(path);
    let created = false;
    if (entry === undefined) {
      let original: string | null;
      try {
        original = fs.read(path);
      } catch (err) {
        throw refused(group, [
          {
            message: `${plan.header.file}:${plan.header.line}: [[${group}|${plan.spec}]]: cannot read ${path}: ${(err as Error).message}`,
            spec: plan.spec,
            file: plan.header.file,
            line: plan.header.line,
            path,
          },
        ]);
      }
      created = original === null;
      entry = { original, text: original ?? "", spec: plan.spec, header: plan.header };
      contents.set(path, entry);
    }
    for (const section of sections) {
      for (const attr of [...section.attrs].reverse()) {
        const values = attr.values;
        if (values.length === 1) {
          entry.text = iniSet(entry.text, section.name, attr.key, values[0] as string);
          continue;
        }
        entry.text = iniDelete(entry.text, section.name, attr.key);
        entry.text = iniSet(entry.text, section.name, attr.key, values[values.length - 1] as string);
        for (let l = values.length - 2; l >= 0; l--) entry.text = iniAddLiteral(entry.text, section.name, attr.key, values[l] as string);
      }
    }
    files.push({ spec: plan.spec, path, created });
  }
  return { contents, files };
}

/** Writes every changed file; a write that fails undoes the earlier ones and is reported. */
function writeAll(fs: MergeFiles, group: string, contents: Map<string, FileContent>): void {
  const written: Array<{ path: string; original: string | null; dirs: string[] }> = [];
  for (const [path, entry] of contents) {
    try {
      const dirs = missingDirs(fs, dirname(path));
      written.push({ path, original: entry.original, dirs });
      if (dirs.length > 0) fs.makeDirs(dirname(path));
      if (entry.original === null || entry.text !== entry.original) fs.write(path, entry.text);
    } catch (err) {
      undo(fs, written);
      const { file, line } = entry.header;
      throw new MergeError(
        `${file}:${line}: [[${group}|${entry.spec}]]: could not create config file ${path} (${entry.spec}): ${(err as Error).message}; nothing of [[${group}|...]] was written`,
        { group, spec: entry.spec, file, line, path, problems: [] },
        { cause: err },
      );
    }
  }
}

/** merge_config_file: the blocks of one file spec of a group (a group with only that spec). */
export function mergeConfigFile(
  blocks: readonly MetaBlock[],
  group: string,
  spec: string,
  expand: Expander,
  options: MergeOptions,
): Promise<MergeOutcome> {
  return mergeConfigGroup(
    blocks.filter((b) => b.spec === spec),
    group,
    expand,
    options,
  );
}

function refused(group: string, problems: Problem[]): MergeError {
  const first = problems[0] as Problem;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? "s" : ""})` : "";
  return new MergeError(`${first.message}: [[${group}|...]] not merged, nothing written${more}`, {
    group,
    spec: first.spec,
    file: first.file,
    line: first.line,
    variables: first.variables,
    path: first.path,
    problems: problems.map((p) => p.message),
  });
}

function undo(fs: MergeFiles, written: ReadonlyArray<{ path: string; original: string | null; dirs: string[] }>): void {
  for (const w of [...written].reverse()) {
    try {
      if (w.original === null) fs.remove(w.path);
      else fs.write(w.path, w.original);
    } catch {
      // best effort: the error being reported names the file that failed
    }
    for (const d of [...w.dirs].reverse()) {
      try {
        fs.removeDir(d);
      } catch {
        // not empty or already gone
      }
    }
  }
}
