import { readFileSync } from "node:fs";
import { isMap, isSeq, LineCounter, parseDocument, type Node } from "yaml";
import { ErrorCode, StackbusError, nameProblem } from "@stackbus/protocol";
import { generateAuth, writeAuth, type AuthOptions, type GeneratedAuth } from "./generate.js";

/** A lab manifest that cannot give a lab name and host list. Names the file, line and field path. */
export class InvalidManifestError extends StackbusError {
  override name = "InvalidManifestError";
  readonly file: string;
  readonly line: number | undefined;
  readonly path: string;
  constructor(file: string, line: number | undefined, path: string, problem: string) {
    super(ErrorCode.InvalidManifest, `${file}${line ? `:${line}` : ""}: ${path ? `${path}: ` : ""}${problem}`, {
      file,
      ...(line ? { line } : {}),
      path,
    });
    this.file = file;
    this.line = line;
    this.path = path;
  }
}

/**
 * Reads only what identities need from a lab manifest: `lab:` and `hosts[].name`. Everything
 * else in the file is left to the lab's own validation.
 */
export function readLabHosts(file: string): { lab: string; hosts: string[] } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new StackbusError(ErrorCode.NotFound, `cannot read the lab manifest ${file}: ${(err as Error).message}`, { file }, { cause: err });
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const first = doc.errors[0];
  if (first) throw new InvalidManifestError(file, first.linePos?.[0]?.line, "", `not valid YAML: ${first.message.split("\n")[0]}`);
  const lineOf = (node: unknown) => {
    const range = (node as Node | undefined)?.range;
    return range ? lines.linePos(range[0]).line : undefined;
  };
  const root = doc.contents;
  if (!isMap(root)) throw new InvalidManifestError(file, lineOf(root), "", "must be a mapping with lab: and hosts:");

  const labNode = root.get("lab", true);
  const lab = labNode === undefined ? undefined : doc.getIn(["lab"]);
  if (lab === undefined) throw new InvalidManifestError(file, undefined, "lab", "is required");
  const labProblem = nameProblem(lab);
  if (labProblem) throw new InvalidManifestError(file, lineOf(labNode), "lab", `lab name ${JSON.stringify(lab)} ${labProblem}`);

  const hostsNode = root.get("hosts", true);
  if (!isSeq(hostsNode) || hostsNode.items.length === 0) {
    throw new InvalidManifestError(file, lineOf(hostsNode), "hosts", "must be a non-empty list of hosts");
  }
  const hosts: string[] = [];
  const seen = new Map<string, number>();
  hostsNode.items.forEach((item, i) => {
    const where = `hosts[${i}].name`;
    if (!isMap(item)) throw new InvalidManifestError(file, lineOf(item), `hosts[${i}]`, "must be a mapping with name:");
    const nameNode = item.get("name", true);
    const name = item.get("name");
    if (name === undefined) throw new InvalidManifestError(file, lineOf(item), where, "is required");
    const problem = nameProblem(name);
    if (problem) throw new InvalidManifestError(file, lineOf(nameNode), where, `host name ${JSON.stringify(name)} ${problem}`);
    const before = seen.get(name as string);
    if (before !== undefined) {
      throw new InvalidManifestError(file, lineOf(nameNode), where, `host ${JSON.stringify(name)} is already hosts[${before}]`);
    }
    seen.set(name as string, i);
    hosts.push(name as string);
  });
  return { lab: lab as string, hosts };
}

/**
 * `stackbus auth gen --lab FILE --out DIR`: reads the lab and its hosts from the manifest,
 * generates the identities and configs, and writes them under `outDir`.
 */
export async function authGenFromManifestFile(
  path: string,
  outDir: string,
  options: Omit<AuthOptions, "lab" | "hosts"> & { overwrite?: boolean },
): Promise<{ generated: GeneratedAuth; written: string[] }> {
  const { lab, hosts } = readLabHosts(path);
  const { overwrite, ...rest } = options;
  const generated = await generateAuth({ ...rest, lab, hosts });
  const written = writeAuth(outDir, generated, { overwrite: overwrite ?? false });
  return { generated, written };
}
