import { readFileSync } from "node:fs";
import { isMap, isSeq, type Node } from "yaml";
import { ErrorCode, StackbusError, nameProblem, type Diagnostic } from "@stackbus/protocol";
import { InvalidManifestError } from "./errors.js";
import { YamlSource } from "./yaml.js";

/**
 * Reads only the lab's name and its hosts' names from a manifest file (what `stackbus auth
 * gen` needs), checked as the lab checks them; the rest of the manifest is left to
 * `validateLabFile`. Throws InvalidManifestError naming file, line and field, or NOT_FOUND
 * when the file cannot be read.
 */
export function readLabHosts(file: string): { lab: string; hosts: string[] } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new StackbusError(ErrorCode.NotFound, `cannot read the lab manifest ${file}: ${(err as Error).message}`, { file }, { cause: err });
  }
  const source = new YamlSource(file, text);
  const refuse = (line: number | undefined, path: string, problem: string): InvalidManifestError => {
    const d: Diagnostic = {
      severity: "error",
      file,
      ...(line ? { line } : {}),
      ...(path ? { path } : {}),
      message: `${file}${line ? `:${line}` : ""}: ${path ? `${path}: ` : ""}${problem}`,
    };
    return new InvalidManifestError(file, [d], `${file} does not name a lab and its hosts`);
  };
  const broken = source.diagnostics.find((d) => d.severity === "error");
  if (broken) throw refuse(broken.line, "", `not valid YAML: ${broken.message.slice(`${file}:${broken.line}: `.length)}`);
  const lineOf = (node: unknown) => {
    const range = (node as Node | undefined)?.range;
    return range ? source.lineOf(range[0]) : undefined;
  };
  const root = source.doc.contents;
  if (!isMap(root)) throw refuse(lineOf(root), "", "must be a mapping with lab: and hosts:");

  const labNode = root.get("lab", true);
  const lab = labNode === undefined ? undefined : source.doc.getIn(["lab"]);
  if (lab === undefined) throw refuse(undefined, "lab", "is required");
  const labProblem = nameProblem(lab);
  if (labProblem) throw refuse(lineOf(labNode), "lab", `lab name ${JSON.stringify(lab)} ${labProblem}`);

  const hostsNode = root.get("hosts", true);
  if (!isSeq(hostsNode) || hostsNode.items.length === 0) throw refuse(lineOf(hostsNode), "hosts", "must be a non-empty list of hosts");
  const hosts: string[] = [];
  const seen = new Map<string, number>();
  hostsNode.items.forEach((item, i) => {
    const where = `hosts[${i}].name`;
    if (!isMap(item)) throw refuse(lineOf(item), `hosts[${i}]`, "must be a mapping with name:");
    const nameNode = item.get("name", true);
    const name = item.get("name");
    if (name === undefined) throw refuse(lineOf(item), where, "is required");
    const problem = nameProblem(name);
    if (problem) throw refuse(lineOf(nameNode), where, `host name ${JSON.stringify(name)} ${problem}`);
    const before = seen.get(name as string);
    if (before !== undefined) throw refuse(lineOf(nameNode), where, `host ${JSON.stringify(name)} is already hosts[${before}]`);
    seen.set(name as string, i);
    hosts.push(name as string);
  });
  return { lab: lab as string, hosts };
}
