import { z } from "zod";
import { ManifestSchema } from "./manifest.js";

/** A JSON Schema node as zod writes it, with the metadata of manifest.ts (`FieldDoc`). */
interface Node {
  type?: string | string[];
  enum?: unknown[];
  anyOf?: Node[];
  items?: Node;
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: Node | boolean;
  minItems?: number;
  maxItems?: number;
  exclusiveMinimum?: number;
  minimum?: number;
  minLength?: number;
  description?: string;
  typeName?: string;
  default?: string;
  example?: string;
}

/** A lab that uses most keys; docs/lab.md shows it, and its test validates it. */
export const REFERENCE_EXAMPLE = `lab: lab1
defaults:
  failurePolicy: abort
  maxFail: "25%"
  phaseTimeout: 45m
  ackTimeout: 30s
  heartbeatTimeout: 15s
  waveSteps: [extra, test-config]
  runner: devstack
  devstackUser: stack
  unstackErrors: warn
plugins:
  order: registration
  reclone: false
  offline: false
  allowSchemes: [https, http]
  mirrors:
    - { prefix: "https://opendev.org/", replace: "http://mirror.local/git/" }
  credentials:
    - { prefix: "https://git.example/", username: ci, password: s3cret }
  limits:
    maxFileBytes: 64MiB
    maxFiles: 20000
    maxUnpackedBytes: 1GiB
    maxDepth: 32
    maxDownloadBytes: 512MiB
common:
  localConf: common.conf
hosts:
  - name: controller
    wave: 1
    labels: { role: controller }
    localConf: controller.conf
  - name: compute1
    wave: 2
    runner: hooks
    localConfText: |
      [[local|localrc]]
      SERVICE_HOST=10.0.0.11
finally:
  - hosts: [controller]
    run: ./tools/discover_hosts.sh
    kinds: [stack]
`;

const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
const code = (text: string) => (text.includes("\n") ? `<code>${text.replaceAll("\n", "↵")}</code>` : `\`${text}\``);

function isObject(node: Node): boolean {
  return node.type === "object" && node.properties !== undefined;
}

/** The type of a node, as a reader says it. */
function typeOf(node: Node): string {
  if (node.typeName) return node.typeName;
  if (node.enum) return `one of ${node.enum.map((v) => `\`${String(v)}\``).join(", ")}`;
  if (node.anyOf) return node.anyOf.map(typeOf).join(" or ");
  if (Array.isArray(node.type)) return node.type.map((t) => typeOf({ type: t })).join(" or ");
  switch (node.type) {
    case "array": {
      const items = node.items ?? {};
      const of = isObject(items) ? "mappings (below)" : typeOf(items);
      const bounds = [node.minItems ? `at least ${node.minItems}` : "", node.maxItems ? `at most ${node.maxItems}` : ""].filter(Boolean).join(", ");
      return `list of ${of}${bounds ? ` (${bounds})` : ""}`;
    }
    case "object":
      if (node.properties) return "mapping (below)";
      if (typeof node.additionalProperties === "object") return `mapping of name to ${typeOf(node.additionalProperties)}`;
      return "mapping";
    case "integer":
      return node.exclusiveMinimum === 0 || (node.minimum ?? 0) > 0 ? "positive whole number" : "whole number";
    case "number":
      return "number";
    case "string":
      return node.minLength ? "non-empty string" : "string";
    case "boolean":
      return "`true` or `false`";
    case "null":
      return "`null`";
    default:
      return "any";
  }
}

interface Section {
  path: string;
  node: Node;
}

/** The table of one mapping's keys, and the mappings below it (objects, lists of objects) as sections of their own. */
function table(section: Section, below: Section[]): string[] {
  const { node, path } = section;
  const required = new Set(node.required ?? []);
  const rows = ["| key | type | default | example | what |", "| --- | --- | --- | --- | --- |"];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const where = path === "" ? key : `${path}.${key}`;
    if (isObject(child)) below.push({ path: where, node: child });
    else if (child.type === "array" && child.items && isObject(child.items)) below.push({ path: `${where}[]`, node: { ...child.items, description: child.description ?? child.items.description } });
    const fallback = required.has(key) ? "required" : "—";
    rows.push(`| \`${key}\` | ${cell(typeOf(child))} | ${child.default !== undefined ? cell(code(child.default)) : fallback} | ${child.example !== undefined ? cell(code(child.example)) : ""} | ${cell(child.description ?? "")} |`);
  }
  return rows;
}

/** Every section of the manifest, top level first, each followed by the mappings it holds. */
function sections(root: Node): string[] {
  const out: string[] = [];
  const queue: Section[] = [{ path: "", node: root }];
  while (queue.length > 0) {
    const section = queue.shift() as Section;
    const below: Section[] = [];
    out.push(`### ${section.path === "" ? "Top level" : `\`${section.path}\``}`, "");
    if (section.path !== "" && section.node.description) out.push(section.node.description, "");
    out.push(...table(section, below), "");
    queue.unshift(...below);
  }
  return out;
}

/**
 * The lab manifest's reference, generated from its zod schema (`ManifestSchema` and the
 * metadata of each field): what docs/lab.md holds. `node scripts/docs.mjs` writes it, and a
 * test fails when the file differs.
 */
export function labReference(): string {
  const schema = z.toJSONSchema(ManifestSchema, { io: "input", unrepresentable: "any" }) as Node;
  return [
    "# The lab manifest (`lab.yaml`)",
    "",
    "<!-- Generated from the manifest's schema (packages/lab/src/manifest.ts) by `node scripts/docs.mjs`; a test fails when it is stale. Do not edit. -->",
    "",
    "A lab manifest names the lab, its hosts and each host's local.conf, and sets run defaults and",
    "plugin settings. `stackbus lab validate FILE` checks it and every local.conf it names, offline,",
    "with every problem at once (file, line, field); `stackbus lab apply FILE` stores it as the lab's",
    "next revision, only when all of it is valid. An unknown key is an error (with the key it most",
    "likely meant).",
    "",
    "```yaml",
    REFERENCE_EXAMPLE.trimEnd(),
    "```",
    "",
    "## Keys",
    "",
    "Durations are milliseconds or a number with a unit (`90s`, `15m`, `1h`, `1h30m`); sizes are bytes",
    "or a number with a unit (`B`, `KB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`).",
    "",
    ...sections(schema),
    "## Plugin sources: the URLs the fetcher accepts",
    "",
    "Every plugin comes through the fetcher, never from a host's own clone. It accepts, in an",
    "`enable_plugin NAME URL [REF]` line (after `plugins.mirrors` rewrote it):",
    "",
    "| source | `allowSchemes` entry | allowed by default |",
    "| --- | --- | --- |",
    "| `https://host/path` | `https` | yes |",
    "| `http://host/path` | `http` | yes |",
    "| `file:///abs/path` (a repository on the fetcher's machine, bare or not) | `file` | no |",
    "| `/abs/path` (the same, as a path) | `path` | no |",
    "",
    "`file` and `path` let a lab make the fetcher read its own disk, so a lab turns them on only by",
    "listing them (`allowSchemes: [https, http, file, path]`). `ssh://`, `git://`, `host:path` and",
    "relative paths are refused, naming the plugin and the URL; map them to http(s) with a mirror",
    "prefix. A URL may carry `user:password@` (or match `plugins.credentials`); it is redacted",
    "everywhere it is shown.",
    "",
    "The ref (`GITREF`, default `master`) may be a branch, a tag or a commit. A run resolves a",
    "moving ref (branch or tag) once, so every host of the run gets the same commit; a resumed run",
    "resolves it again unless `--same-config` is given (docs/cli.md, `stackbus stack`).",
    "",
    "## `plugins.reclone` and DevStack's `RECLONE`",
    "",
    "DevStack's `git_clone` leaves an existing checkout alone unless `RECLONE=True`, which makes it",
    "fetch and reset every repository. stackbus does the same for plugins, per host: when a host's",
    "`$DEST/<plugin>` (its GITDIR) already holds a checkout at the commit the run resolved, nothing is",
    "downloaded; when it holds another commit (the ref moved since the host last stacked), `reclone:",
    "true` replaces the checkout with the resolved one, and `reclone: false` (the default, as",
    "DevStack's `RECLONE=False`) keeps it and warns on the host's prepare step that the lab's ref moved.",
    "`RECLONE` in a local.conf does not change this (plugins are not cloned by the hosts); it still",
    "applies to what DevStack itself clones in DevStack mode.",
    "",
  ].join("\n");
}
