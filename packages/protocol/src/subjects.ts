/**
 * The one place NATS subjects, stream names and bucket names are made. Every token that
 * comes from a name (lab, host, run) is validated first, so `a.b`, `*` or `>` can never
 * widen a subject.
 */
import { ErrorCode, StackbusError } from "./errors.js";
import { validateName } from "./names.js";

export const SUBJECT_ROOT = "sb";

/** JetStream streams, KV buckets and the object store stackbus owns. */
export const STREAMS = {
  /** Run events (coordinator) and step results (agents): `sb.<lab>.run.>`. */
  runs: "SB_RUNS",
  /** Hook output: `sb.<lab>.log.>`. */
  logs: "SB_LOGS",
} as const;

export const BUCKETS = {
  /** Lab definitions, one revision per apply: key `<lab>`. */
  labs: "sb_labs",
  /** Run records: key `<lab>.<runId>`. */
  runs: "sb_runs",
  /** Agent registrations: key `<lab>.<host>`. */
  agents: "sb_agents",
  /** Fetcher's resolved refs, for offline serving: key `<hash>`. */
  pluginIndex: "sb_plugin_index",
} as const;

export const OBJECT_STORES = {
  /** Plugin archives, named `<plugin>/<commit>`. */
  plugins: "sb_plugins",
} as const;

const lab = (value: string) => validateName("lab", value);
const host = (value: string) => validateName("host", value);
const run = (value: string) => validateName("run", value);

/** Queue group names, so several instances of a service share the work. */
export const QUEUES = {
  config: "sb-config",
  fetcher: "sb-fetcher",
  coordinator: "sb-coordinator",
} as const;

export const subjects = {
  // config service
  /** Which labs the config service holds (used when a command is given no --lab). */
  labList: () => `${SUBJECT_ROOT}.labs.list`,
  configApply: (l: string) => `${SUBJECT_ROOT}.${lab(l)}.config.apply`,
  configGet: (l: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.config.get.${host(h)}`,
  configShow: (l: string) => `${SUBJECT_ROOT}.${lab(l)}.config.show`,
  configRevision: (l: string) => `${SUBJECT_ROOT}.${lab(l)}.config.revision`,
  /** Fetcher -> config: the lab's plugin settings with credentials. */
  configPluginSettings: (l: string) => `${SUBJECT_ROOT}.${lab(l)}.config.plugins`,

  // fetcher
  /**
   * Host -> fetcher: resolve a plugin for this host. The host is a subject token, so the
   * generated permissions let each agent ask only as itself, and the fetcher takes the
   * requester's identity from the subject, never from the payload.
   */
  pluginsResolve: (l: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.plugins.resolve.${host(h)}`,
  /** Coordinator -> fetcher: resolve a resumed run's moving plugin refs again, under a new pin. */
  pluginsPin: (l: string) => `${SUBJECT_ROOT}.${lab(l)}.plugins.pin`,

  // agents
  hostCommand: (l: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.host.${host(h)}.cmd`,
  hostCancel: (l: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.host.${host(h)}.cancel`,
  hostPlan: (l: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.host.${host(h)}.plan`,
  hostPing: (l: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.host.${host(h)}.ping`,
  hostHeartbeat: (l: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.host.${host(h)}.hb`,

  // coordinator
  runStart: (l: string) => `${SUBJECT_ROOT}.${lab(l)}.coord.start`,
  runCancel: (l: string) => `${SUBJECT_ROOT}.${lab(l)}.coord.cancel`,

  // run stream
  runEvent: (l: string, r: string) => `${SUBJECT_ROOT}.${lab(l)}.run.${run(r)}.event`,
  runResult: (l: string, r: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.run.${run(r)}.result.${host(h)}`,
  /** The events of every run of a lab. */
  runEventsAll: (l: string) => `${SUBJECT_ROOT}.${lab(l)}.run.*.event`,
  /** Everything stored about one run (events and results). */
  runAll: (l: string, r: string) => `${SUBJECT_ROOT}.${lab(l)}.run.${run(r)}.>`,

  // logs and live progress
  runLog: (l: string, r: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.log.${run(r)}.${host(h)}`,
  runLogAll: (l: string, r: string) => `${SUBJECT_ROOT}.${lab(l)}.log.${run(r)}.*`,
  runProgress: (l: string, r: string, h: string) => `${SUBJECT_ROOT}.${lab(l)}.progress.${run(r)}.${host(h)}`,
  runProgressAll: (l: string, r: string) => `${SUBJECT_ROOT}.${lab(l)}.progress.${run(r)}.*`,
} as const;

/** Subjects a service subscribes to for every lab at once. Built from constants only. */
export const wildcards = {
  configApply: `${SUBJECT_ROOT}.*.config.apply`,
  configGet: `${SUBJECT_ROOT}.*.config.get.*`,
  configShow: `${SUBJECT_ROOT}.*.config.show`,
  configPluginSettings: `${SUBJECT_ROOT}.*.config.plugins`,
  pluginsResolve: `${SUBJECT_ROOT}.*.plugins.resolve.*`,
  pluginsPin: `${SUBJECT_ROOT}.*.plugins.pin`,
  runStart: `${SUBJECT_ROOT}.*.coord.start`,
  runCancel: `${SUBJECT_ROOT}.*.coord.cancel`,
  heartbeats: `${SUBJECT_ROOT}.*.host.*.hb`,
  runResults: `${SUBJECT_ROOT}.*.run.*.result.*`,
  runStream: `${SUBJECT_ROOT}.*.run.>`,
  logStream: `${SUBJECT_ROOT}.*.log.>`,
} as const;

/**
 * Reads the lab (and the next tokens) back out of a concrete subject received on a
 * wildcard subscription. Returns undefined if the subject is not one of ours.
 */
export function parseSubject(subject: string): { lab: string; tokens: string[] } | undefined {
  const tokens = subject.split(".");
  if (tokens.length < 3 || tokens[0] !== SUBJECT_ROOT) return undefined;
  const [, labToken, ...rest] = tokens;
  return { lab: labToken as string, tokens: rest };
}

/**
 * Who a per-host message comes from, read from its subject: results, logs and progress
 * (`sb.<lab>.run.<run>.result.<host>`, `sb.<lab>.log.<run>.<host>`,
 * `sb.<lab>.progress.<run>.<host>`) and heartbeats (`sb.<lab>.host.<host>.hb`). The
 * permissions let each agent publish only on its own host's subjects, so the subject,
 * not the payload, is the sender's identity. Undefined for any other subject.
 */
export function senderOf(subject: string): { lab: string; host: string; runId?: string } | undefined {
  const parsed = parseSubject(subject);
  if (!parsed) return undefined;
  const t = parsed.tokens;
  if (t[0] === "run" && t[2] === "result" && t.length === 4) return { lab: parsed.lab, runId: t[1] as string, host: t[3] as string };
  if ((t[0] === "log" || t[0] === "progress") && t.length === 3) return { lab: parsed.lab, runId: t[1] as string, host: t[2] as string };
  if (t[0] === "host" && t[2] === "hb" && t.length === 3) return { lab: parsed.lab, host: t[1] as string };
  return undefined;
}

/**
 * Whether a per-host message's payload names the host (and lab and run) its subject does.
 * A message that claims to be another host's is refused: the description says why.
 */
export function senderMismatch(subject: string, payload: { lab?: string; host: string; runId?: string }): string | undefined {
  const from = senderOf(subject);
  if (!from) return `${subject} is not a per-host subject`;
  if (payload.host !== from.host) return `host ${JSON.stringify(from.host)} sent a message that claims to be from host ${JSON.stringify(payload.host)}`;
  if (payload.lab !== undefined && payload.lab !== from.lab) return `a message on lab ${from.lab}'s subject claims lab ${JSON.stringify(payload.lab)}`;
  if (from.runId !== undefined && payload.runId !== undefined && payload.runId !== from.runId) return `host ${JSON.stringify(from.host)} sent a message for run ${from.runId} that claims run ${JSON.stringify(payload.runId)}`;
  return undefined;
}

/**
 * What a subject reaches, as people say it: "the agent of host compute1 in lab lab1", "the
 * config service of lab lab1". Messages name these, not subjects (the subject stays in the
 * error's data).
 */
export function describeSubject(subject: string): string {
  if (subject === subjects.labList()) return "the config service";
  if (subject.startsWith("$JS.") || subject.startsWith("$KV.") || subject.startsWith("$O.")) return "JetStream (is the server running with -js?)";
  const parsed = parseSubject(subject);
  if (!parsed) return subject;
  const [area, ...rest] = parsed.tokens;
  const inLab = `lab ${parsed.lab}`;
  switch (area) {
    case "config":
      return `the config service of ${inLab}`;
    case "plugins":
      return `the plugin fetcher of ${inLab}`;
    case "coord":
      return `the coordinator of ${inLab}`;
    case "host":
      return rest[0] ? `the agent of host ${rest[0]} in ${inLab}` : subject;
    case "run":
    case "log":
    case "progress":
      return rest[0] ? `run ${rest[0]} of ${inLab}` : subject;
    default:
      return subject;
  }
}

/** Root of reply inboxes; a client's own inboxes live under `_INBOX.<identity>`. */
export const INBOX_ROOT = "_INBOX";

/**
 * The reply-inbox prefix of one NATS identity (a user name or an nkey public key):
 * `_INBOX.<identity>`. Giving each identity its own prefix lets the server allow a user to
 * receive only its own replies, so nobody can read the answers another user asked for
 * (a host's local.conf, say).
 */
export function inboxPrefix(identity: string): string {
  return `${INBOX_ROOT}.${validateName("token", identity)}`;
}

/** KV keys, built from validated tokens. */
export const keys = {
  lab: (l: string) => lab(l),
  run: (l: string, r: string) => `${lab(l)}.${run(r)}`,
  agent: (l: string, h: string) => `${lab(l)}.${host(h)}`,
} as const;

/** Object-store name of a plugin archive. */
export function pluginObjectName(plugin: string, commit: string): string {
  validateName("plugin", plugin);
  if (!/^[0-9a-f]{40}$/.test(commit)) {
    throw new StackbusError(ErrorCode.InvalidArgument, `commit ${JSON.stringify(commit)} is not a 40-hex sha`, { commit });
  }
  return `${plugin}/${commit}.tar.gz`;
}

/** A new run id: sortable by time, safe as a token, e.g. `r20261125T061234-8f3a`. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "");
  const random = Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0");
  return `r${stamp}-${random}`;
}
