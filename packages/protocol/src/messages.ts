/**
 * zod schemas for every message that crosses the bus. Every publisher and every receiver
 * parses with these; inside a process, the inferred types are trusted.
 */
import { z } from "zod";
import { ErrorCode } from "./errors.js";
import { nameProblem, type NameKind } from "./names.js";
import { MERGE_GROUPS, RUN_KINDS, RUNNERS, STEP_IDS, type StepId } from "./phases.js";

/** A string that must be a safe subject token; the issue names the kind and the value. */
export function nameSchema(kind: NameKind) {
  return z.string().superRefine((value, ctx) => {
    const problem = nameProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: `${kind} name ${JSON.stringify(value)} ${problem}` });
  });
}

export const LabName = nameSchema("lab");
export const HostName = nameSchema("host");
export const PluginName = nameSchema("plugin");
export const RunId = nameSchema("run");

const Millis = z.number().int().nonnegative();
const Timestamp = z.number().int().nonnegative();
export const RunKindSchema = z.enum(RUN_KINDS);
export const StepIdSchema = z.enum(STEP_IDS as [StepId, ...StepId[]]);
export const MergeGroupSchema = z.enum(MERGE_GROUPS);
export const RunnerSchema = z.enum(RUNNERS);
/** Steps in which wave order holds; null: every step. */
const WaveStepsSchema = z.array(StepIdSchema).nullable().default(null);

// ---------------------------------------------------------------------------
// Errors and replies

export const WireErrorSchema = z.object({
  code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]),
  message: z.string(),
  data: z.record(z.string(), z.unknown()).optional(),
});

function buildReplySchema<T extends z.ZodType>(value: T) {
  return z.discriminatedUnion("ok", [
    z.object({ ok: z.literal(true), value }),
    z.object({ ok: z.literal(false), error: WireErrorSchema }),
  ]);
}
const replySchemas = new WeakMap<z.ZodType, unknown>();

/**
 * Every request is answered with `{ ok: true, value }` or `{ ok: false, error }`. Built
 * once per value schema: requests and replies are on the hot path of every step.
 */
export function replySchema<T extends z.ZodType>(value: T): ReturnType<typeof buildReplySchema<T>> {
  let schema = replySchemas.get(value) as ReturnType<typeof buildReplySchema<T>> | undefined;
  if (!schema) replySchemas.set(value, (schema = buildReplySchema(value)));
  return schema;
}

/** A problem found in a user's file: the file, the line or field path, and what is wrong. */
export const DiagnosticSchema = z.object({
  severity: z.enum(["error", "warning"]),
  file: z.string(),
  line: z.number().int().positive().optional(),
  path: z.string().optional(),
  message: z.string(),
});
export type Diagnostic = z.infer<typeof DiagnosticSchema>;

// ---------------------------------------------------------------------------
// Lab definition (config service)

/**
 * Most hosts a lab may have. The run record (`RunRecord`, one KV value) holds every host's
 * state for every step: with 1000 hosts of 64-character names a finished `stack` run's
 * record is about 1.2 MB of JSON, stored packed (`encodeRunRecord`) in about 120 KB, under
 * NATS's default max_payload of 1 MiB with eight times the room (failures' output tails add
 * to it, bounded per result).
 */
export const MAX_LAB_HOSTS = 1000;

export const FailurePolicySchema = z.enum(["abort", "continue"]);
export const MaxFailSchema = z.union([
  z.object({ count: z.number().int().nonnegative() }),
  z.object({ percent: z.number().min(0).max(100) }),
]);
export type MaxFail = z.infer<typeof MaxFailSchema>;

/** Run defaults a lab sets; a run request may override each. */
export const RunDefaultsSchema = z.object({
  failurePolicy: FailurePolicySchema,
  maxFail: MaxFailSchema.nullable(),
  phaseTimeoutMs: Millis,
  ackTimeoutMs: Millis,
  heartbeatTimeoutMs: Millis,
  waveSteps: WaveStepsSchema,
});
export type RunDefaults = z.infer<typeof RunDefaultsSchema>;

export const MirrorSchema = z.object({ prefix: z.string().min(1), replace: z.string().min(1) });
export const CredentialSchema = z.object({
  prefix: z.string().min(1),
  username: z.string(),
  password: z.string(),
});

/**
 * Bounds on one plugin, enforced by the fetcher (on the clone and the archive it builds) and
 * by each host (on the archive it unpacks), so a small repository cannot expand into a
 * huge file, a huge tree or an exhausted service ("git bombs").
 */
export const PluginLimitsSchema = z.object({
  /** Largest single file of the plugin (a git object: blob, tree or commit), in bytes. */
  maxFileBytes: z.number().int().positive(),
  /** Most entries of the checkout (files, directories and links, `.git` included). */
  maxFiles: z.number().int().positive(),
  /** Most bytes of the checkout written to disk (`.git` included). */
  maxUnpackedBytes: z.number().int().positive(),
  /** Deepest path of the checkout, in directory levels. */
  maxDepth: z.number().int().positive(),
  /** Most bytes a clone or fetch may download, and the largest archive a host downloads. */
  maxDownloadBytes: z.number().int().positive(),
});
export type PluginLimits = z.infer<typeof PluginLimitsSchema>;

/**
 * The bounds a lab gets unless its manifest sets `plugins.limits`: above every DevStack
 * plugin repository we know of (the largest plugin checkouts hold a few thousand files and
 * a pack of a few hundred MB), far below what exhausts a host.
 */
export const DEFAULT_PLUGIN_LIMITS: Readonly<PluginLimits> = Object.freeze({
  maxFileBytes: 64 * 1024 * 1024,
  maxFiles: 20_000,
  maxUnpackedBytes: 1024 * 1024 * 1024,
  maxDepth: 32,
  maxDownloadBytes: 512 * 1024 * 1024,
});

/** How a lab's plugins are fetched and ordered. Credentials stay inside the fetcher. */
export const PluginSettingsSchema = z.object({
  order: z.enum(["registration", "requires"]),
  reclone: z.boolean(),
  offline: z.boolean(),
  mirrors: z.array(MirrorSchema),
  allowSchemes: z.array(z.enum(["https", "http", "file", "path"])),
  /** @default DEFAULT_PLUGIN_LIMITS */
  limits: PluginLimitsSchema.optional(),
});
export type PluginSettings = z.infer<typeof PluginSettingsSchema>;

/** A plugin a lab registered: an `enable_plugin NAME URL` line of some host's local.conf, URL as written. */
export const RegisteredPluginSchema = z.object({ name: z.string(), url: z.string() });
export type RegisteredPlugin = z.infer<typeof RegisteredPluginSchema>;

/**
 * What the fetcher learns about a lab: its plugin settings, source credentials, its hosts
 * and the plugins it registered (the fetcher resolves nothing else, for nobody else). Only
 * the fetcher asks.
 */
export const LabPluginAccessSchema = PluginSettingsSchema.extend({
  credentials: z.array(CredentialSchema),
  /** The lab's hosts at this revision: only they may have plugins resolved. */
  hosts: z.array(HostName),
  /** Every (name, URL) some host's local.conf enables, in first-seen order. */
  plugins: z.array(RegisteredPluginSchema),
});
export type LabPluginAccess = z.infer<typeof LabPluginAccessSchema>;

/** Fetcher -> config service (`config.plugins`): the lab is in the subject; a revision, or the current one. */
export const LabPluginAccessRequestSchema = z.object({ revision: z.number().int().positive().optional() });
export type LabPluginAccessRequest = z.infer<typeof LabPluginAccessRequestSchema>;

export const LocalConfSourceSchema = z.object({ file: z.string(), text: z.string() });
export type LocalConfSource = z.infer<typeof LocalConfSourceSchema>;

export const PluginDeclSchema = z.object({
  name: z.string(),
  url: z.string(),
  ref: z.string(),
  file: z.string(),
  line: z.number().int().positive(),
});
export type PluginDecl = z.infer<typeof PluginDeclSchema>;

export const MetaBlockSchema = z.object({
  group: z.string(),
  spec: z.string(),
  file: z.string(),
  line: z.number().int().positive(),
  lines: z.array(z.object({ text: z.string(), line: z.number().int().positive() })),
});
export type MetaBlockWire = z.infer<typeof MetaBlockSchema>;

/** A command the lab runs on some hosts after every host finished a run's last step. */
export const FinallyCommandSchema = z.object({
  /** The run kinds it follows. */
  kinds: z.array(RunKindSchema).min(1),
  /** A bash command line, run in the host's TOP_DIR. */
  command: z.string().min(1),
});
export type FinallyCommand = z.infer<typeof FinallyCommandSchema>;

/** What the config service answers for one host: everything the agent needs to run it. */
export const HostConfigSchema = z.object({
  lab: LabName,
  host: HostName,
  revision: z.number().int().positive(),
  wave: z.number().int(),
  labels: z.record(z.string(), z.string()),
  /** The local.conf sources in the order they apply: the lab's common file, then the host's. */
  localConf: z.array(LocalConfSourceSchema),
  /** All `[[local|localrc]]` content, in order, verbatim. */
  localrc: z.string(),
  blocks: z.array(MetaBlockSchema),
  plugins: z.array(PluginDeclSchema),
  diagnostics: z.array(DiagnosticSchema),
  pluginSettings: PluginSettingsSchema,
  /** How the agent runs this host's steps. */
  runner: RunnerSchema.default("hooks"),
  /** With the devstack runner, the user an agent running as root runs DevStack's scripts as. */
  devstackUser: z.string().default("stack"),
  /** This host's `finally` commands. */
  finally: z.array(FinallyCommandSchema).default([]),
  /** A failing hook in unstack and clean (which DevStack's scripts go on past): a warning, or a failed step. */
  unstackErrors: z.enum(["warn", "fail"]).default("warn"),
});
export type HostConfig = z.infer<typeof HostConfigSchema>;

export const ConfigApplyRequestSchema = z.object({
  /** The manifest's file name, as the user gave it (used in messages). */
  file: z.string(),
  text: z.string(),
  /** Contents of the local.conf files the manifest references, by the path written in it. */
  files: z.record(z.string(), z.string()),
});
export type ConfigApplyRequest = z.infer<typeof ConfigApplyRequestSchema>;

export const ConfigApplyReplySchema = z.object({
  lab: LabName,
  revision: z.number().int().positive(),
  unchanged: z.boolean(),
  hosts: z.array(HostName),
  warnings: z.array(DiagnosticSchema),
});
export type ConfigApplyReply = z.infer<typeof ConfigApplyReplySchema>;

export const ConfigGetRequestSchema = z.object({ revision: z.number().int().positive().optional() });
export const LabShowRequestSchema = z.object({ revision: z.number().int().positive().optional() });

export const LabHostSummarySchema = z.object({
  name: HostName,
  wave: z.number().int(),
  labels: z.record(z.string(), z.string()),
  local: z.boolean(),
  runner: RunnerSchema.default("hooks"),
  topDir: z.string().optional(),
  dest: z.string().optional(),
  plugins: z.array(PluginDeclSchema),
  warnings: z.number().int().nonnegative(),
});
export const LabShowSchema = z.object({
  lab: LabName,
  revision: z.number().int().positive(),
  appliedAt: Timestamp,
  file: z.string(),
  defaults: RunDefaultsSchema,
  pluginSettings: PluginSettingsSchema,
  hosts: z.array(LabHostSummarySchema),
  finally: z.array(FinallyCommandSchema.extend({ hosts: z.array(HostName).min(1) })).default([]),
});
export type LabShow = z.infer<typeof LabShowSchema>;

/** Remove a lab and every revision of it; its runs' records stay. */
export const LabDeleteRequestSchema = z.object({});
export const LabDeleteReplySchema = z.object({
  lab: LabName,
  /** False when the lab was not there. */
  deleted: z.boolean(),
  /** The revision that was current, when there was one. */
  revision: z.number().int().positive().nullable(),
});
export type LabDeleteReply = z.infer<typeof LabDeleteReplySchema>;

export const LabListRequestSchema = z.object({});
export const LabListSchema = z.object({
  labs: z.array(z.object({ lab: LabName, revision: z.number().int().positive(), hosts: z.array(HostName) })),
});
export type LabList = z.infer<typeof LabListSchema>;

export const ConfigRevisionEventSchema = z.object({
  lab: LabName,
  revision: z.number().int().positive(),
  appliedAt: Timestamp,
  hosts: z.array(HostName),
});

// ---------------------------------------------------------------------------
// Plugins (fetcher)

export const PluginResolveRequestSchema = z.object({
  name: PluginName,
  url: z.string().min(1),
  ref: z.string().min(1),
  /** Requests of one run resolve a moving ref once, so every host gets the same commit. */
  runId: RunId.optional(),
  /** The lab revision the host runs: the plugin must be registered in it. @default the current revision */
  revision: z.number().int().positive().optional(),
});
export type PluginResolveRequest = z.infer<typeof PluginResolveRequestSchema>;

export const PluginResolveReplySchema = z.object({
  name: PluginName,
  url: z.string(),
  ref: z.string(),
  commit: z.string().regex(/^[0-9a-f]{40}$/),
  /** Object-store name of the archive. */
  object: z.string(),
  size: z.number().int().nonnegative(),
  /** `sha256-<hex>` of the archive bytes. */
  digest: z.string(),
  /** The name the plugin defines for itself (`define_plugin`), if any. */
  defines: z.string().nullable(),
  /** Plugins this one requires (`plugin_requires <self> <other>`), in file order. */
  requires: z.array(z.string()),
  warnings: z.array(z.string()),
});
export type PluginResolveReply = z.infer<typeof PluginResolveReplySchema>;

/**
 * Coordinator -> fetcher (`plugins.pin`), before a resumed attempt that picks up the lab's
 * current config: resolve each moving plugin ref again, once for every host of the run, under
 * a new pin (`pin`), and say what the previous pin (`previous`) had.
 */
export const PluginPinRequestSchema = z.object({
  runId: RunId,
  /** The pin the attempt's hosts resolve under from now on (`<run>` for attempt 1, `<run>-a<N>` after). */
  pin: nameSchema("token"),
  /** The pin of the attempt before. */
  previous: nameSchema("token"),
  /** The lab revision the attempt runs: the plugins must be registered in it. */
  revision: z.number().int().positive(),
  /** Each plugin of the run's hosts: its ref now, and in the revision the attempt before ran. */
  plugins: z.array(z.object({ name: PluginName, ref: z.string().min(1), previousRef: z.string().min(1).optional() })),
});
export type PluginPinRequest = z.infer<typeof PluginPinRequestSchema>;

export const PluginPinReplySchema = z.object({
  plugins: z.array(
    z.object({
      name: PluginName,
      /** The URL as shown (credentials redacted). */
      url: z.string(),
      ref: z.string(),
      /** The commit the attempt before had (null: it resolved none, e.g. it failed before). */
      before: z.string().nullable(),
      /** The commit the attempt gets. */
      after: z.string(),
    }),
  ),
  warnings: z.array(z.string()),
});
export type PluginPinReply = z.infer<typeof PluginPinReplySchema>;

// ---------------------------------------------------------------------------
// Agents

export const AgentInfoSchema = z.object({
  lab: LabName,
  host: HostName,
  instance: z.string().min(1),
  pid: z.number().int().positive(),
  hostname: z.string(),
  version: z.string(),
  startedAt: Timestamp,
});
export type AgentInfo = z.infer<typeof AgentInfoSchema>;

export const StepRefSchema = z.object({ runId: RunId, attempt: z.number().int().positive(), step: StepIdSchema });
export type StepRef = z.infer<typeof StepRefSchema>;

export const HeartbeatSchema = z.object({
  lab: LabName,
  host: HostName,
  instance: z.string(),
  at: Timestamp,
  busy: StepRefSchema.nullable(),
  /** The hook running now, when busy. */
  hook: z.string().nullable(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

export const PingRequestSchema = z.object({});
/** An agent's answer to a ping: who it is, and what it is doing now (absent from older agents). */
export const PingReplySchema = AgentInfoSchema.extend({
  /** The step it runs now, or null when idle. */
  busy: StepRefSchema.nullable().optional(),
  /** The hook running now, when busy. */
  hook: z.string().nullable().optional(),
  /** When it last sent a heartbeat, and how often it sends them. */
  heartbeatAt: Timestamp.optional(),
  heartbeatMs: Millis.optional(),
});
export type PingReply = z.infer<typeof PingReplySchema>;

/** Values hosts exported with `stackbus_export`, by host then variable. */
export const FactsSchema = z.record(z.string(), z.record(z.string(), z.string()));
export type Facts = z.infer<typeof FactsSchema>;

/** Coordinator -> agent: run one step of a run on this host. */
export const PhaseCommandSchema = z.object({
  lab: LabName,
  runId: RunId,
  kind: RunKindSchema,
  attempt: z.number().int().positive(),
  step: StepIdSchema,
  /** The lab revision the run was created from; the prepare step fetches this config. */
  configRevision: z.number().int().positive(),
  timeoutMs: Millis,
  /** The run's heartbeat timeout: while the step is in hand the agent beats often enough for it (a quarter of it). */
  heartbeatTimeoutMs: Millis.optional(),
  /** The run's ack timeout: the agent acknowledges a step still running well within it (and the heartbeat timeout). */
  ackTimeoutMs: Millis.optional(),
  facts: FactsSchema,
  /** The coordinator's signature over the subject and the rest of the command (see the bus package's signing). */
  sig: z.string().optional(),
});
export type PhaseCommand = z.infer<typeof PhaseCommandSchema>;

export const HookStatusSchema = z.enum(["ok", "failed", "timeout", "canceled", "skipped"]);

/** One hook's run, mirroring execa's result. */
export const HookResultSchema = z.object({
  hook: z.string(),
  command: z.string(),
  status: HookStatusSchema,
  durationMs: Millis,
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
});
export type HookResult = z.infer<typeof HookResultSchema>;

export const FailureReasonSchema = z.enum(["hook", "devstack", "prepare", "merge", "timeout", "canceled", "lost", "session", "busy", "internal"]);
export type FailureReason = z.infer<typeof FailureReasonSchema>;

/** Why a host failed a step: host, step, hook, exit status, and the output tail. */
export const FailureSchema = z.object({
  host: HostName,
  step: StepIdSchema,
  reason: FailureReasonSchema,
  hook: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  message: z.string(),
  outputTail: z.array(z.string()),
  /** The command that failed, when known (e.g. `false`, `install_foo`). */
  command: z.string().optional(),
  /** Where it failed, as DevStack's xtrace writes it: `file:function:line`. */
  location: z.string().optional(),
  /** DevStack's own log of the run on the host (its LOGFILE), when it keeps one. */
  logFile: z.string().optional(),
});
export type Failure = z.infer<typeof FailureSchema>;

export const StepStatusSchema = z.enum(["ok", "failed", "timeout", "canceled", "lost"]);
export type StepStatus = z.infer<typeof StepStatusSchema>;

/** What a step in DevStack mode adds: DevStack's log, its last summary line, its own timings. */
export const DevstackStepSchema = z.object({
  /** The DevStack script the step ran (`stack.sh`, `unstack.sh`, `clean.sh`). */
  script: z.string(),
  /** DevStack's LOGFILE on the host, or null when the localrc sets none. */
  logFile: z.string().nullable(),
  /** The last `echo_summary` line DevStack printed during the step. */
  summary: z.string().nullable(),
  /** DevStack's `time_totals` (seconds by component), printed at the end of stack.sh. */
  timeTotals: z.record(z.string(), z.number()),
});
export type DevstackStep = z.infer<typeof DevstackStepSchema>;

/** Agent -> stream: the outcome of one step on one host. */
export const StepResultSchema = z.object({
  lab: LabName,
  runId: RunId,
  host: HostName,
  attempt: z.number().int().positive(),
  step: StepIdSchema,
  status: StepStatusSchema,
  startedAt: Timestamp,
  finishedAt: Timestamp,
  durationMs: Millis,
  hooks: z.array(HookResultSchema),
  /** Failures of this step on this host (several when errexit is off). */
  failures: z.array(FailureSchema),
  facts: z.record(z.string(), z.string()),
  warnings: z.array(z.string()),
  /** Set by the devstack runner. */
  devstack: DevstackStepSchema.optional(),
});
export type StepResult = z.infer<typeof StepResultSchema>;

/** Agent's reply to a PhaseCommand. `done` carries the stored result of a step already finished. */
export const CommandAckSchema = z.object({
  host: HostName,
  instance: z.string(),
  state: z.enum(["started", "running", "done"]),
  result: StepResultSchema.optional(),
});
export type CommandAck = z.infer<typeof CommandAckSchema>;

/** Ask an agent what a run of this kind would run on its host, running nothing. */
export const PlanRequestSchema = z.object({ kind: RunKindSchema });
export const PlanEntrySchema = z.object({
  action: z.enum(["session", "extras", "plugin", "merge", "hypervisor", "builtin", "devstack", "command"]),
  name: z.string(),
  args: z.array(z.string()),
  /** False when the host's configuration means it will be skipped (note says why). */
  active: z.boolean(),
  note: z.string().nullable(),
});
export type PlanEntry = z.infer<typeof PlanEntrySchema>;
export const HostPlanSchema = z.object({
  lab: LabName,
  host: HostName,
  revision: z.number().int().positive(),
  kind: RunKindSchema,
  runner: RunnerSchema.default("hooks"),
  steps: z.array(z.object({ step: StepIdSchema, label: z.string(), errexit: z.boolean(), entries: z.array(PlanEntrySchema) })),
});
export type HostPlan = z.infer<typeof HostPlanSchema>;

export const CancelRequestSchema = z.object({
  runId: RunId,
  reason: z.string(),
  /** The run is over: release what the host holds for it (a session, a paused stack.sh). */
  end: z.boolean().optional(),
  /** With end: the attempt that ended (a later attempt of the same run is left alone). */
  attempt: z.number().int().positive().optional(),
  /** The coordinator's signature, as on a PhaseCommand. */
  sig: z.string().optional(),
});
export type CancelRequest = z.infer<typeof CancelRequestSchema>;
export const CancelReplySchema = z.object({ host: HostName, canceled: z.boolean() });

/** One batch of output lines from the hooks of one step on one host. */
export const LogBatchSchema = z.object({
  lab: LabName,
  runId: RunId,
  host: HostName,
  attempt: z.number().int().positive(),
  step: StepIdSchema,
  seq: z.number().int().nonnegative(),
  lines: z.array(
    z.object({
      at: Timestamp,
      hook: z.string(),
      stream: z.enum(["stdout", "stderr", "agent"]),
      text: z.string(),
    }),
  ),
});
export type LogBatch = z.infer<typeof LogBatchSchema>;

/** Live, unstored: the hook a host has just started. */
export const ProgressSchema = z.object({
  runId: RunId,
  host: HostName,
  attempt: z.number().int().positive(),
  step: StepIdSchema,
  hook: z.string(),
  at: Timestamp,
  /** Work counters for long actions, e.g. plugin download bytes. */
  done: z.number().nonnegative().optional(),
  total: z.number().nonnegative().optional(),
  /** What the host is doing, in its own words (DevStack's `echo_summary` lines). */
  activity: z.string().optional(),
});
export type Progress = z.infer<typeof ProgressSchema>;

// ---------------------------------------------------------------------------
// Runs (coordinator)

export const RunPolicySchema = z.object({
  failurePolicy: FailurePolicySchema,
  maxFail: MaxFailSchema.nullable(),
  phaseTimeoutMs: Millis,
  ackTimeoutMs: Millis,
  heartbeatTimeoutMs: Millis,
  waveSteps: WaveStepsSchema,
});
export type RunPolicy = z.infer<typeof RunPolicySchema>;

export const RunHostSchema = z.object({ name: HostName, wave: z.number().int(), runner: RunnerSchema.default("hooks") });

export const RunSpecSchema = z.object({
  lab: LabName,
  runId: RunId,
  kind: RunKindSchema,
  hosts: z.array(RunHostSchema).min(1),
  configRevision: z.number().int().positive(),
  policy: RunPolicySchema,
  createdAt: Timestamp,
  /** The lab's `finally` commands for this run's kind, with the hosts that run them. */
  finally: z.array(z.object({ hosts: z.array(HostName).min(1), command: z.string() })).default([]),
});
export type RunSpec = z.infer<typeof RunSpecSchema>;

export const RunStartRequestSchema = z.object({
  kind: RunKindSchema,
  hosts: z.array(HostName).optional(),
  failurePolicy: FailurePolicySchema.optional(),
  maxFail: MaxFailSchema.nullable().optional(),
  phaseTimeoutMs: Millis.optional(),
  ackTimeoutMs: Millis.optional(),
  heartbeatTimeoutMs: Millis.optional(),
  /** Steps in which wave order holds (null: every step); default: the lab's. */
  waveSteps: z.array(StepIdSchema).nullable().optional(),
  /** Continue this failed run instead of starting a new one. */
  resume: RunId.optional(),
  /** With resume: the step to start from (default: the first step not finished everywhere). */
  from: StepIdSchema.optional(),
  /**
   * With resume: keep the failed attempt's lab revision and plugin commits. By default a
   * resume runs the lab's current revision and resolves moving plugin refs again.
   */
  sameConfig: z.boolean().optional(),
});
export type RunStartRequest = z.infer<typeof RunStartRequestSchema>;

/** What a resumed attempt changes against the attempt before: the lab revision, plugin commits. */
export const AttemptChangesSchema = z.object({
  /** The revision the attempt before ran, and the one this attempt runs. */
  revision: z.object({ from: z.number().int().positive(), to: z.number().int().positive() }),
  /** True with `--same-config`: nothing was looked up again. */
  sameConfig: z.boolean(),
  plugins: PluginPinReplySchema.shape.plugins,
  warnings: z.array(z.string()),
});
export type AttemptChanges = z.infer<typeof AttemptChangesSchema>;

export const RunStartReplySchema = z.object({
  runId: RunId,
  attempt: z.number().int().positive(),
  steps: z.array(StepIdSchema),
  hosts: z.array(RunHostSchema),
  /** The lab revision the attempt runs. */
  configRevision: z.number().int().positive().optional(),
  /** The step the attempt starts from, and per step the hosts carried over (they do not run it). */
  from: StepIdSchema.optional(),
  carried: z.record(z.string(), z.array(HostName)).optional(),
  /** Set for a resume. */
  changes: AttemptChangesSchema.optional(),
});
export type RunStartReply = z.infer<typeof RunStartReplySchema>;

export const RunCancelRequestSchema = z.object({ runId: RunId, reason: z.string().optional() });
export const RunCancelReplySchema = z.object({ runId: RunId, canceled: z.boolean(), status: z.string() });

export const RunStatusSchema = z.enum(["running", "succeeded", "failed", "canceled"]);
export type RunStatus = z.infer<typeof RunStatusSchema>;

const EventBase = { lab: LabName, runId: RunId, at: Timestamp };

/** Coordinator -> stream: what happened to a run. A late watcher replays these. */
export const RunEventSchema = z.discriminatedUnion("type", [
  z.object({ ...EventBase, type: z.literal("run.created"), spec: RunSpecSchema }),
  z.object({
    ...EventBase,
    type: z.literal("run.attempt"),
    attempt: z.number().int().positive(),
    steps: z.array(StepIdSchema),
    reason: z.enum(["start", "resume"]),
    from: StepIdSchema,
    /** Per step, hosts that already finished it in an earlier attempt and do not run it again. */
    carried: z.record(z.string(), z.array(HostName)),
    /** The lab revision this attempt runs. @default the run's (`spec.configRevision`) */
    configRevision: z.number().int().positive().optional(),
    /** The pin plugin refs resolve under in this attempt (`PluginPinRequest.pin`). @default the run id */
    pin: z.string().optional(),
    /** What changed against the attempt before (a resume). */
    changes: AttemptChangesSchema.optional(),
  }),
  z.object({
    ...EventBase,
    type: z.literal("step.started"),
    attempt: z.number().int().positive(),
    step: StepIdSchema,
    wave: z.number().int(),
    hosts: z.array(HostName),
  }),
  z.object({
    ...EventBase,
    type: z.literal("host.acked"),
    attempt: z.number().int().positive(),
    step: StepIdSchema,
    host: HostName,
  }),
  z.object({
    ...EventBase,
    type: z.literal("host.finished"),
    attempt: z.number().int().positive(),
    step: StepIdSchema,
    host: HostName,
    status: StepStatusSchema,
    durationMs: Millis,
    failures: z.array(FailureSchema),
    /** True when the coordinator decided the outcome (lost, timeout) rather than the agent. */
    decided: z.boolean(),
  }),
  z.object({
    ...EventBase,
    type: z.literal("step.finished"),
    attempt: z.number().int().positive(),
    step: StepIdSchema,
    status: z.enum(["ok", "failed"]),
    failedHosts: z.array(HostName),
    durationMs: Millis,
  }),
  z.object({
    ...EventBase,
    type: z.literal("run.cancel-requested"),
    reason: z.string(),
  }),
  z.object({
    ...EventBase,
    type: z.literal("run.finished"),
    attempt: z.number().int().positive(),
    status: RunStatusSchema.exclude(["running"]),
    failures: z.array(FailureSchema),
    durationMs: Millis,
  }),
]);
export type RunEvent = z.infer<typeof RunEventSchema>;
export type RunEventType = RunEvent["type"];

/** Per host, per step: the latest known state. */
export const HostStepStateSchema = z.object({
  status: z.enum(["pending", "running", "ok", "failed", "timeout", "canceled", "lost", "skipped"]),
  attempt: z.number().int().nonnegative(),
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  durationMs: Millis.nullable(),
  failures: z.array(FailureSchema),
  /** Set for a step a host ran in DevStack mode. */
  devstack: DevstackStepSchema.optional(),
});
export type HostStepState = z.infer<typeof HostStepStateSchema>;

/** The run record kept in KV: a snapshot of the run, rebuilt from events after a restart. */
export const RunRecordSchema = z.object({
  spec: RunSpecSchema,
  status: RunStatusSchema,
  attempt: z.number().int().positive(),
  steps: z.array(StepIdSchema),
  currentStep: StepIdSchema.nullable(),
  hosts: z.record(z.string(), z.record(z.string(), HostStepStateSchema)),
  facts: FactsSchema,
  failures: z.array(FailureSchema),
  startedAt: Timestamp,
  finishedAt: Timestamp.nullable(),
  /** Stream sequence of the run.created event: where a replay of this run starts. */
  firstSeq: z.number().int().nonnegative(),
  /** The lab revision the current attempt runs. @default spec.configRevision */
  configRevision: z.number().int().positive().optional(),
  /** The plugin pin of the current attempt. @default the run id */
  pin: z.string().optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

export const RunListRequestSchema = z.object({ limit: z.number().int().positive().max(1000).optional() });
