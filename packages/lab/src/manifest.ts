import { dirname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { combineLocalConfs, parseLocalConf, uniqueDiagnostics, type ParsedLocalConf } from "@stackbus/localconf";
import {
  DEFAULT_PLUGIN_LIMITS,
  MAX_LAB_HOSTS,
  nameProblem,
  parseDuration,
  RUN_KINDS,
  RUNNERS,
  STEP_IDS,
  type RunKind,
  type RunnerKind,
  type StepId,
  type ConfigApplyRequest,
  type Diagnostic,
  type LocalConfSource,
  type MaxFail,
  type PluginLimits,
  type PluginSettings,
  type RunDefaults,
} from "@stackbus/protocol";
import { YamlSource, type FieldPath } from "./yaml.js";

/** The run defaults a lab gets when its manifest does not set them. */
export const DEFAULT_RUN_DEFAULTS: RunDefaults = {
  failurePolicy: "abort",
  maxFail: null,
  phaseTimeoutMs: 15 * 60_000,
  ackTimeoutMs: 30_000,
  heartbeatTimeoutMs: 15_000,
  waveSteps: null,
};

/** The user an agent running as root runs DevStack's scripts as, when the manifest names none. */
export const DEFAULT_DEVSTACK_USER = "stack";

/**
 * The plugin settings a lab gets when its manifest does not set them. Only network
 * sources are allowed by default: a `file://` URL or a local path would make the fetcher
 * read a repository on its own machine, so a lab turns them on explicitly
 * (`plugins.allowSchemes: [https, http, file, path]`).
 */
export const DEFAULT_PLUGIN_SETTINGS: PluginSettings = {
  order: "registration",
  reclone: false,
  offline: false,
  mirrors: [],
  allowSchemes: ["https", "http"],
  limits: { ...DEFAULT_PLUGIN_LIMITS },
};

/** A source credential for plugin repositories. Never logged, never in `lab show`. */
export interface Credential {
  prefix: string;
  username: string;
  password: string;
}

/** One host of a validated lab. */
export interface LabHost {
  name: string;
  /** Lower waves run a phase first. @default 0 */
  wave: number;
  labels: Record<string, string>;
  /** An agent that `stackbus up` starts on this machine. */
  local: boolean;
  /** How the agent runs this host's steps. @default "hooks" */
  runner: RunnerKind;
  /** With the devstack runner: the user an agent running as root runs DevStack's scripts as. */
  devstackUser: string;
  /** Absolute (resolved against the manifest's directory). */
  topDir?: string;
  dest?: string;
  /** The local.conf sources in the order they apply: the lab's common file first, then the host's. */
  localConf: LocalConfSource[];
  /** The host's local.conf(s), combined. */
  parsed: ParsedLocalConf;
}

/** A lab manifest that validated, with defaults applied. */
export interface Lab {
  name: string;
  /** The manifest file, as the bundle names it. */
  file: string;
  defaults: RunDefaults;
  pluginSettings: PluginSettings;
  credentials: Credential[];
  hosts: LabHost[];
  /** Commands run on named hosts after every host finished a run's last step. */
  finally: LabFinally[];
  /** A failing hook in unstack and clean: a warning (DevStack goes on past it) or a failed step. @default "warn" */
  unstackErrors: "warn" | "fail";
}

/** One `finally` entry of a lab. */
export interface LabFinally {
  hosts: string[];
  kinds: RunKind[];
  command: string;
}

/** The outcome of validating a lab: ok when no diagnostic is an error. */
export interface LabValidation {
  ok: boolean;
  lab?: Lab;
  diagnostics: Diagnostic[];
}

const Duration = z.union([z.string(), z.number()]);
const Runner = z.enum(RUNNERS);
const StepName = z.enum(STEP_IDS as [StepId, ...StepId[]]);
const ByteSize = z.union([z.string(), z.number()]);
const Count = z.number().int().positive();

/** Fields of `plugins.limits` that are sizes in bytes (a number, or "64MiB"), and those that are counts. */
const SIZE_LIMITS = ["maxFileBytes", "maxUnpackedBytes", "maxDownloadBytes"] as const;
const COUNT_LIMITS = ["maxFiles", "maxDepth"] as const;

const BYTE_UNITS: Record<string, number> = { "": 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** A size in bytes: a whole number, or a number with a unit (B, KB, MB, GB, KiB, MiB, GiB). Undefined when it is none. */
function parseByteSize(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value > 0 ? value : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(value);
  const unit = m ? BYTE_UNITS[(m[2] ?? "").toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const bytes = Math.round(Number(m[1]) * unit);
  return bytes > 0 ? bytes : undefined;
}
/** A mebibyte-style size for the reference: 64 MiB, 1 GiB. */
function sizeText(bytes: number): string {
  for (const [unit, n] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) if (bytes % n === 0) return `${bytes / n}${unit}`;
  return String(bytes);
}
/** A duration for the reference: 15m, 30s. */
function durationText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * What the reference (docs/lab.md) says about a field, beside its type: `typeName` names a
 * type zod's shape does not (a duration, a size), `default` is what applies when the field
 * is absent, `example` a value as written in YAML.
 */
type FieldDoc = {
  description: string;
  typeName?: string;
  default?: string;
  example?: string;
};
const doc = (meta: FieldDoc) => meta;

const LocalConfFields = {
  localConf: z.string().meta(doc({ description: "A local.conf file, relative to the manifest (or absolute). Give this or `localConfText`, not both.", example: "controller.conf" })).optional(),
  localConfText: z.string().meta(doc({ description: "The local.conf text itself, inline (its line numbers in messages are the manifest's).", example: '"[[local|localrc]]\\nSERVICE_HOST=10.0.0.11\\n"' })).optional(),
};

const Defaults = z
  .strictObject({
    failurePolicy: z.enum(["abort", "continue"]).meta(doc({ description: "After a step in which hosts failed: `abort` ends the run; `continue` goes on with the hosts that did not fail.", default: DEFAULT_RUN_DEFAULTS.failurePolicy })).optional(),
    maxFail: z.union([z.number(), z.string()]).nullable().meta(doc({ description: "Abort only when more than this many hosts (or this share of them) have failed; null: any failure counts, as `failurePolicy` says.", typeName: "count or percentage", default: "null", example: '"25%"' })).optional(),
    phaseTimeout: Duration.meta(doc({ description: "A step's hooks on a host are killed after this long (DevStack mode: DevStack's own work between two phases, e.g. `45m`).", typeName: "duration", default: durationText(DEFAULT_RUN_DEFAULTS.phaseTimeoutMs), example: "45m" })).optional(),
    ackTimeout: Duration.meta(doc({ description: "A host whose agent does not acknowledge a step within this fails it as lost.", typeName: "duration", default: durationText(DEFAULT_RUN_DEFAULTS.ackTimeoutMs) })).optional(),
    heartbeatTimeout: Duration.meta(doc({ description: "A host whose agent sends no heartbeat for this long while it runs a step fails it as lost.", typeName: "duration", default: durationText(DEFAULT_RUN_DEFAULTS.heartbeatTimeoutMs) })).optional(),
    waveSteps: z.array(StepName).meta(doc({ description: "The steps in which wave order holds (wave 1 finishes the step before wave 2 starts it); in the others every host takes the step at once. A run may override it (`--wave-steps`).", default: "every step", example: "[extra, test-config]" })).optional(),
    runner: Runner.meta(doc({ description: "How each host runs its steps: `hooks`, stackbus's own bash session with the hooks only; `devstack`, the host's own DevStack checkout's stack.sh, unstack.sh and clean.sh (docs/devstack-mode.md). A host may set its own.", default: "hooks" })).optional(),
    devstackUser: z.string().min(1).meta(doc({ description: "With `runner: devstack`: the user an agent running as root runs DevStack's scripts as (an agent running as that user runs them as itself). A host may set its own.", default: DEFAULT_DEVSTACK_USER })).optional(),
    unstackErrors: z.enum(["warn", "fail"]).meta(doc({ description: "A failing hook in unstack and clean, which DevStack's scripts go on past: `warn` records a warning on the host's result; `fail` fails the step.", default: "warn" })).optional(),
  })
  .meta(doc({ description: "Run defaults; each run may override the policy and timeouts (see `stackbus stack --help`)." }));

const Limits = z
  .strictObject({
    maxFileBytes: ByteSize.meta(doc({ description: "Largest single file of a plugin (a git object: blob, tree or commit).", typeName: "size", default: sizeText(DEFAULT_PLUGIN_LIMITS.maxFileBytes) })).optional(),
    maxFiles: Count.meta(doc({ description: "Most entries of a checkout (files, directories and links, `.git` included).", default: String(DEFAULT_PLUGIN_LIMITS.maxFiles) })).optional(),
    maxUnpackedBytes: ByteSize.meta(doc({ description: "Most bytes of a checkout written to disk (`.git` included).", typeName: "size", default: sizeText(DEFAULT_PLUGIN_LIMITS.maxUnpackedBytes) })).optional(),
    maxDepth: Count.meta(doc({ description: "Deepest path of a checkout, in directory levels.", default: String(DEFAULT_PLUGIN_LIMITS.maxDepth) })).optional(),
    maxDownloadBytes: ByteSize.meta(doc({ description: "Most bytes a clone or fetch may download, and the largest archive a host downloads.", typeName: "size", default: sizeText(DEFAULT_PLUGIN_LIMITS.maxDownloadBytes) })).optional(),
  })
  .meta(doc({ description: "Bounds on each plugin, checked by the fetcher (on the clone and the archive it builds) and by each host (on the archive it unpacks)." }));

const Plugins = z
  .strictObject({
    order: z.enum(["registration", "requires"]).meta(doc({ description: "The order plugins run in: `registration`, the order of the `enable_plugin` lines (DevStack's); `requires`, that order changed only as `plugin_requires` needs.", default: DEFAULT_PLUGIN_SETTINGS.order })).optional(),
    reclone: z.boolean().meta(doc({ description: "A host whose plugin checkout is at another commit than the lab's ref now resolves to: `true` replaces it (DevStack's `RECLONE=True`); `false` keeps it, with a warning. See below.", default: String(DEFAULT_PLUGIN_SETTINGS.reclone) })).optional(),
    offline: z.boolean().meta(doc({ description: "The fetcher contacts no plugin source: it serves what it resolved before (its index and clone cache), as DevStack's `OFFLINE=True` uses existing checkouts.", default: String(DEFAULT_PLUGIN_SETTINGS.offline) })).optional(),
    mirrors: z
      .array(
        z.strictObject({
          prefix: z.string().min(1).meta(doc({ description: "A URL prefix as written in `enable_plugin` lines.", example: '"https://opendev.org/"' })),
          replace: z.string().min(1).meta(doc({ description: "What the fetcher contacts instead (DevStack's `GIT_BASE`, for air-gapped labs).", example: '"http://mirror.local/git/"' })),
        }),
      )
      .meta(doc({ description: "URL rewrites: the longest matching prefix wins; the checkout's `origin` stays the URL as written.", default: "[]" }))
      .optional(),
    allowSchemes: z
      .array(z.enum(["https", "http", "file", "path"]))
      .meta(doc({ description: "The plugin sources the fetcher may use: `https://` and `http://` URLs; `file://` URLs and absolute paths (a repository on the fetcher's own machine) only when listed here. See below.", default: `[${DEFAULT_PLUGIN_SETTINGS.allowSchemes.join(", ")}]`, example: "[https, http, file, path]" }))
      .optional(),
    limits: Limits.optional(),
    credentials: z
      .array(
        z.strictObject({
          prefix: z.string().min(1).meta(doc({ description: "The URL prefix the credential is for (the longest matching one is used).", example: '"https://git.example/"' })),
          username: z.string().meta(doc({ description: "HTTP basic-auth user." })),
          password: z.string().meta(doc({ description: "HTTP basic-auth password or token. Only the fetcher ever reads it; it is never logged, shown by `lab show`, or sent to a host." })),
        }),
      )
      .meta(doc({ description: "Credentials for private plugin repositories over http(s).", default: "[]" }))
      .optional(),
  })
  .meta(doc({ description: "How the lab's plugins (`enable_plugin` lines) are fetched, ordered and bounded." }));

const Host = z
  .strictObject({
    name: z.string().meta(doc({ description: "The host's name in the lab: letters, digits, `_` and `-` (it becomes a NATS subject token). Its agent runs with `--host NAME`.", example: "compute1" })),
    wave: z.number().int().meta(doc({ description: "Lower waves take a step first (where wave order holds, see `defaults.waveSteps`).", default: "0", example: "2" })).optional(),
    labels: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).meta(doc({ description: "Free-form labels, shown by `lab show`.", typeName: "mapping of name to string", default: "{}", example: "{ role: compute }" })).optional(),
    local: z.boolean().meta(doc({ description: "`stackbus up` starts this host's agent on the machine it runs on.", default: "false" })).optional(),
    runner: Runner.meta(doc({ description: "This host's runner, over `defaults.runner`.", default: "defaults.runner" })).optional(),
    devstackUser: z.string().min(1).meta(doc({ description: "This host's DevStack user, over `defaults.devstackUser`.", default: "defaults.devstackUser" })).optional(),
    topDir: z.string().min(1).meta(doc({ description: "With `local: true`: the agent's TOP_DIR (DevStack checkout, extras.d/), relative to the manifest.", example: "./hosts/controller/devstack" })).optional(),
    dest: z.string().min(1).meta(doc({ description: "With `local: true`: the agent's DEST (where plugins are installed), relative to the manifest.", example: "./hosts/controller/stack" })).optional(),
    ...LocalConfFields,
  })
  .meta(doc({ description: "One host of the lab." }));

const Finally = z
  .strictObject({
    hosts: z.array(z.string()).min(1).meta(doc({ description: "The hosts that run the command (hosts of the lab).", example: "[controller]" })),
    run: z.string().min(1).meta(doc({ description: "A bash command line, run in the host's TOP_DIR (as DevStack's user in DevStack mode) after every host finished the run's last step; its output is in `logs`, a failure fails the run.", example: "./tools/discover_hosts.sh" })),
    kinds: z.array(z.enum(RUN_KINDS)).min(1).meta(doc({ description: "The run kinds it follows.", default: "[stack]" })).optional(),
  })
  .meta(doc({ description: "A command run after a run's last step (a step `finally` of the run)." }));

/** The lab manifest as a user writes it. docs/lab.md is generated from it (`labReference`). */
export const ManifestSchema = z
  .strictObject({
    lab: z.string().meta(doc({ description: "The lab's name: letters, digits, `_` and `-`.", example: "lab1" })),
    defaults: Defaults.optional(),
    plugins: Plugins.optional(),
    common: z.strictObject(LocalConfFields).meta(doc({ description: "A local.conf applied on every host before the host's own (passwords, ranges, LOGFILE)." })).optional(),
    hosts: z.array(Host).min(1).max(MAX_LAB_HOSTS).meta(doc({ description: `The lab's hosts: at least one, at most ${MAX_LAB_HOSTS}.` })),
    finally: z.array(Finally).meta(doc({ description: "Commands run on named hosts after every host finished a run's last step, in order.", default: "[]" })).optional(),
  })
  .meta(doc({ description: "A stackbus lab." }));
type Manifest = z.infer<typeof ManifestSchema>;

const KNOWN_FIELDS: Record<string, readonly string[]> = {
  "": ["lab", "defaults", "plugins", "common", "hosts", "finally"],
  defaults: ["failurePolicy", "maxFail", "phaseTimeout", "ackTimeout", "heartbeatTimeout", "waveSteps", "runner", "devstackUser", "unstackErrors"],
  plugins: ["order", "reclone", "offline", "mirrors", "allowSchemes", "limits", "credentials"],
  "plugins.limits": [...SIZE_LIMITS, ...COUNT_LIMITS],
  common: ["localConf", "localConfText"],
  host: ["name", "wave", "labels", "local", "runner", "devstackUser", "topDir", "dest", "localConf", "localConfText"],
  finally: ["hosts", "run", "kinds"],
  mirror: ["prefix", "replace"],
  credential: ["prefix", "username", "password"],
};

function fieldsAt(path: FieldPath): readonly string[] {
  if (path.length === 2 && path[0] === "hosts") return KNOWN_FIELDS["host"] ?? [];
  if (path.length === 2 && path[0] === "finally") return KNOWN_FIELDS["finally"] ?? [];
  if (path.length === 3 && path[0] === "plugins" && path[1] === "mirrors") return KNOWN_FIELDS["mirror"] ?? [];
  if (path.length === 3 && path[0] === "plugins" && path[1] === "credentials") return KNOWN_FIELDS["credential"] ?? [];
  return KNOWN_FIELDS[path.map(String).join(".")] ?? [];
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

function suggestion(key: string, known: readonly string[]): string {
  const best = known.map((k) => ({ k, d: distance(key, k) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean "${best.k}"?)` : ` (known fields: ${known.join(", ")})`;
}

function valueAt(data: unknown, path: FieldPath): unknown {
  let cur = data;
  for (const part of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[part];
  }
  return cur;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `a ${typeof value}`;
}

function describeValue(value: unknown): string {
  if (value === null || typeof value === "object") return describeType(value);
  return `${typeof value} ${JSON.stringify(value)}`;
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

function issueDiagnostics(source: YamlSource, data: unknown, issue: z.core.$ZodIssue): Diagnostic[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  const value = valueAt(data, path);
  const secret = path.includes("credentials");
  const describe = (v: unknown) => (secret ? describeType(v) : describeValue(v));
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => source.at("error", path, `unknown field${suggestion(key, fieldsAt(path))}`, key));
    case "invalid_type": {
      if (value === undefined) return [source.at("error", path, "is required")];
      const integer = path[path.length - 1] === "wave" && issue.expected === "number";
      const expected = integer ? "an integer" : (EXPECTED[issue.expected] ?? issue.expected);
      return [source.at("error", path, `must be ${expected}, not ${describe(value)}`)];
    }
    case "invalid_value":
      return [source.at("error", path, `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, not ${describe(value)}`)];
    case "invalid_union": {
      const last = path[path.length - 1];
      const expected =
        last === "maxFail"
          ? "a count or a percentage such as \"25%\""
          : path.some((p) => p === "labels")
            ? "a string"
            : (SIZE_LIMITS as readonly unknown[]).includes(last)
              ? "a size in bytes, or one such as \"64MiB\" or \"1GiB\""
              : "a duration such as \"90s\" or \"15m\", or milliseconds";
      return [source.at("error", path, `must be ${expected}, not ${describe(value)}`)];
    }
    case "too_big":
      if (path.length === 1 && path[0] === "hosts" && Array.isArray(value)) {
        return [source.at("error", path, `has ${value.length} hosts, more than the ${MAX_LAB_HOSTS} a lab may have (its run record must fit in one NATS message)`)];
      }
      return [source.at("error", path, issue.message)];
    case "too_small":
      if (path.length === 1 && path[0] === "hosts") return [source.at("error", path, "needs at least one host")];
      if (issue.origin === "number") return [source.at("error", path, `must be a positive whole number, not ${describe(value)}`)];
      return [source.at("error", path, "may not be empty")];
    default:
      return [source.at("error", path, issue.message)];
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The checks zod's shapes do not express, run on the raw data so every error shows at once. */
function semanticDiagnostics(source: YamlSource, data: Record<string, unknown>): Diagnostic[] {
  const out: Diagnostic[] = [];
  if (typeof data["lab"] === "string") {
    const problem = nameProblem(data["lab"]);
    if (problem) out.push(source.at("error", ["lab"], `${JSON.stringify(data["lab"])} ${problem}`));
  }
  const defaults = data["defaults"];
  if (isRecord(defaults)) {
    for (const field of ["phaseTimeout", "ackTimeout", "heartbeatTimeout"]) {
      const v = defaults[field];
      if (typeof v !== "string" && typeof v !== "number") continue;
      try {
        parseDuration(v, field);
      } catch {
        out.push(source.at("error", ["defaults", field], `${JSON.stringify(v)} is not a duration (use milliseconds or e.g. "90s", "15m", "1h")`));
      }
    }
    const maxFail = defaults["maxFail"];
    if ((typeof maxFail === "number" || typeof maxFail === "string") && toMaxFail(maxFail) === undefined) {
      out.push(source.at("error", ["defaults", "maxFail"], `${JSON.stringify(maxFail)} must be a whole number of hosts or a percentage from 0% to 100%`));
    }
  }
  const plugins = data["plugins"];
  const limits = isRecord(plugins) ? plugins["limits"] : undefined;
  if (isRecord(limits)) {
    for (const field of SIZE_LIMITS) {
      const v = limits[field];
      if ((typeof v === "string" || typeof v === "number") && parseByteSize(v) === undefined) {
        out.push(source.at("error", ["plugins", "limits", field], `${JSON.stringify(v)} is not a size (use bytes, or e.g. "64MiB", "1GiB", "500MB")`));
      }
    }
  }
  const common = data["common"];
  if (isRecord(common)) out.push(...exclusiveSource(source, ["common"], common, true));
  const hosts = data["hosts"];
  if (Array.isArray(hosts)) {
    const seen = new Map<string, number>();
    hosts.forEach((host, i) => {
      if (!isRecord(host)) return;
      const name = host["name"];
      if (typeof name === "string") {
        const problem = nameProblem(name);
        if (problem) out.push(source.at("error", ["hosts", i, "name"], `${JSON.stringify(name)} ${problem}`));
        const first = seen.get(name);
        if (first !== undefined) {
          out.push(source.at("error", ["hosts", i, "name"], `${JSON.stringify(name)} is already the name of hosts[${first}] (line ${source.line(["hosts", first, "name"]) ?? "?"})`));
        } else seen.set(name, i);
      }
      const labels = host["labels"];
      if (isRecord(labels)) {
        for (const key of Object.keys(labels)) {
          const problem = nameProblem(key);
          if (problem) out.push(source.at("error", ["hosts", i, "labels"], `label name ${JSON.stringify(key)} ${problem}`, key));
        }
      }
      if (host["local"] !== true) {
        for (const field of ["topDir", "dest"]) {
          if (host[field] !== undefined) out.push(source.at("error", ["hosts", i, field], "is only used with local: true"));
        }
      }
      out.push(...exclusiveSource(source, ["hosts", i], host, false));
    });
  }
  const finallyList = data["finally"];
  if (Array.isArray(finallyList) && Array.isArray(hosts)) {
    const names = new Set(hosts.filter(isRecord).map((h) => h["name"]).filter((n): n is string => typeof n === "string"));
    finallyList.forEach((entry, i) => {
      if (!isRecord(entry) || !Array.isArray(entry["hosts"])) return;
      entry["hosts"].forEach((name, j) => {
        if (typeof name === "string" && !names.has(name)) {
          out.push(source.at("error", ["finally", i, "hosts", j], `${JSON.stringify(name)} is not a host of this lab (its hosts: ${[...names].join(", ")})`));
        }
      });
    });
  }
  return out;
}

function exclusiveSource(source: YamlSource, path: FieldPath, obj: Record<string, unknown>, required: boolean): Diagnostic[] {
  if (obj["localConf"] !== undefined && obj["localConfText"] !== undefined) {
    return [source.at("error", path, "give localConf (a file) or localConfText (inline), not both", "localConfText")];
  }
  if (required && obj["localConf"] === undefined && obj["localConfText"] === undefined) {
    return [source.at("error", path, "needs localConf (a file) or localConfText (inline)")];
  }
  return [];
}

function toMaxFail(value: number | string | null | undefined): MaxFail | null | undefined {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? { count: value } : undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return { count: Number(text) };
  const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (m && Number(m[1]) <= 100) return { percent: Number(m[1]) };
  return undefined;
}

/** Where a local.conf named in the manifest is, for messages: beside the manifest. */
export function localConfFileName(manifestFile: string, ref: string): string {
  return isAbsolute(ref) ? ref : join(dirname(manifestFile), ref);
}

/**
 * Validates a whole bundle (manifest + every local.conf): every error at once. Manifest
 * diagnostics name the manifest file, the YAML line and the field path; local.conf
 * diagnostics name that local.conf and its line (inline text: the manifest's lines).
 */
export function validateLab(request: ConfigApplyRequest): LabValidation {
  const source = new YamlSource(request.file, request.text);
  const diagnostics: Diagnostic[] = [...source.diagnostics];
  if (source.doc.errors.length > 0) return { ok: false, diagnostics };
  const data = source.data();
  if (data === null || data === undefined) {
    return { ok: false, diagnostics: [...diagnostics, source.at("error", [], "the manifest is empty: it needs at least lab and hosts")] };
  }
  if (!isRecord(data)) {
    return { ok: false, diagnostics: [...diagnostics, source.at("error", [], `the manifest must be a mapping with lab and hosts, not ${describeType(data)}`)] };
  }
  const parsed = ManifestSchema.safeParse(data);
  if (!parsed.success) diagnostics.push(...parsed.error.issues.flatMap((issue) => issueDiagnostics(source, data, issue)));
  diagnostics.push(...semanticDiagnostics(source, data));

  const load = (path: FieldPath, obj: unknown): ParsedLocalConf | undefined => {
    if (!isRecord(obj)) return undefined;
    const ref = obj["localConf"];
    const inline = obj["localConfText"];
    if (typeof ref === "string" && inline === undefined) {
      const text = Object.hasOwn(request.files, ref) ? request.files[ref] : undefined;
      if (text === undefined) {
        diagnostics.push(source.at("error", [...path, "localConf"], `${ref} was not sent with the manifest (could it be read?)`));
        return undefined;
      }
      return parseLocalConf(text, localConfFileName(request.file, ref));
    }
    if (typeof inline === "string" && ref === undefined) {
      return parseLocalConf(inline, request.file, { firstLine: source.textLine([...path, "localConfText"]) });
    }
    return undefined;
  };
  const common = load(["common"], data["common"]);
  if (common) diagnostics.push(...common.diagnostics);
  const hosts = Array.isArray(data["hosts"]) ? data["hosts"] : [];
  const combined = hosts.map((host, i) => {
    const own = load(["hosts", i], host);
    const parts = [common, own].filter((p): p is ParsedLocalConf => p !== undefined);
    const result = combineLocalConfs(parts);
    diagnostics.push(...result.diagnostics);
    return result;
  });

  const unique = byPlace(uniqueDiagnostics(diagnostics), request.file);
  const ok = !unique.some((d) => d.severity === "error");
  if (!ok || !parsed.success) return { ok: false, diagnostics: unique };
  return { ok: true, lab: buildLab(request, parsed.data, combined), diagnostics: unique };
}

/** The manifest's diagnostics first, then each local.conf's, each in line order. */
function byPlace(list: Diagnostic[], manifest: string): Diagnostic[] {
  const files = [manifest, ...new Set(list.map((d) => d.file).filter((f) => f !== manifest))];
  return list
    .map((d, i) => ({ d, i }))
    .sort((a, b) => files.indexOf(a.d.file) - files.indexOf(b.d.file) || (a.d.line ?? 0) - (b.d.line ?? 0) || a.i - b.i)
    .map((x) => x.d);
}

function sourceOf(request: ConfigApplyRequest, obj: { localConf?: string | undefined; localConfText?: string | undefined }): LocalConfSource[] {
  if (obj.localConf !== undefined) return [{ file: localConfFileName(request.file, obj.localConf), text: request.files[obj.localConf] ?? "" }];
  if (obj.localConfText !== undefined) return [{ file: request.file, text: obj.localConfText }];
  return [];
}

function pluginLimits(given: { [K in keyof PluginLimits]?: string | number | undefined } | undefined): PluginLimits {
  const limits: PluginLimits = { ...DEFAULT_PLUGIN_LIMITS };
  for (const field of SIZE_LIMITS) {
    const v = given?.[field];
    if (v !== undefined) limits[field] = parseByteSize(v) ?? limits[field];
  }
  for (const field of COUNT_LIMITS) {
    const v = given?.[field];
    if (typeof v === "number") limits[field] = v;
  }
  return limits;
}

function buildLab(request: ConfigApplyRequest, manifest: Manifest, combined: ParsedLocalConf[]): Lab {
  const d = manifest.defaults ?? {};
  const p = manifest.plugins ?? {};
  const base = dirname(resolve(request.file));
  const common = manifest.common ? sourceOf(request, manifest.common) : [];
  return {
    name: manifest.lab,
    file: request.file,
    defaults: {
      failurePolicy: d.failurePolicy ?? DEFAULT_RUN_DEFAULTS.failurePolicy,
      maxFail: toMaxFail(d.maxFail) ?? null,
      phaseTimeoutMs: d.phaseTimeout !== undefined ? parseDuration(d.phaseTimeout) : DEFAULT_RUN_DEFAULTS.phaseTimeoutMs,
      ackTimeoutMs: d.ackTimeout !== undefined ? parseDuration(d.ackTimeout) : DEFAULT_RUN_DEFAULTS.ackTimeoutMs,
      heartbeatTimeoutMs: d.heartbeatTimeout !== undefined ? parseDuration(d.heartbeatTimeout) : DEFAULT_RUN_DEFAULTS.heartbeatTimeoutMs,
      waveSteps: d.waveSteps !== undefined ? [...new Set(d.waveSteps)] : DEFAULT_RUN_DEFAULTS.waveSteps,
    },
    pluginSettings: {
      order: p.order ?? DEFAULT_PLUGIN_SETTINGS.order,
      reclone: p.reclone ?? DEFAULT_PLUGIN_SETTINGS.reclone,
      offline: p.offline ?? DEFAULT_PLUGIN_SETTINGS.offline,
      mirrors: p.mirrors ?? [],
      allowSchemes: p.allowSchemes ?? [...DEFAULT_PLUGIN_SETTINGS.allowSchemes],
      limits: pluginLimits(p.limits),
    },
    credentials: p.credentials ?? [],
    hosts: manifest.hosts.map((h, i) => ({
      name: h.name,
      wave: h.wave ?? 0,
      labels: Object.fromEntries(Object.entries(h.labels ?? {}).map(([k, v]) => [k, String(v)])),
      local: h.local ?? false,
      runner: h.runner ?? d.runner ?? "hooks",
      devstackUser: h.devstackUser ?? d.devstackUser ?? DEFAULT_DEVSTACK_USER,
      ...(h.topDir !== undefined ? { topDir: resolve(base, h.topDir) } : {}),
      ...(h.dest !== undefined ? { dest: resolve(base, h.dest) } : {}),
      localConf: [...common, ...sourceOf(request, h)],
      parsed: combined[i] as ParsedLocalConf,
    })),
    unstackErrors: d.unstackErrors ?? "warn",
    finally: (manifest.finally ?? []).map((f) => ({ hosts: [...new Set(f.hosts)], kinds: f.kinds ?? ["stack"], command: f.run })),
  };
}


