import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { networkInterfaces, userInfo } from "node:os";
import { join } from "node:path";
import { bashlibEntry, stackbusFunctionsPath } from "@stackbus/bashlib";
import { expansionScript, mergeConfigGroup, nodeMergeFiles, parseExpansionOutput, parseLocalConf, type Expander } from "@stackbus/localconf";
import { installPlugin } from "@stackbus/plugin-install";
import { orderPlugins } from "@stackbus/plugins";
import {
  ConfigGetRequestSchema,
  ErrorCode,
  HostConfigSchema,
  OBJECT_STORES,
  redactUrl,
  PluginResolveReplySchema,
  PluginResolveRequestSchema,
  StackbusError,
  findStep,
  subjects,
  type HostConfig,
  type RunKind,
  type Step,
  type MergeGroup,
  type PluginResolveReply,
  type PluginResolveRequest,
} from "@stackbus/protocol";
import type { Bus, Logger } from "@stackbus/bus";
import { BashSession, sessionScriptPath, shq, type HookRun, type OutputSink } from "./session.js";
import { hooksFor, type HookPlaces, type InstalledPlugin } from "./hooks.js";
import { describeFailure } from "./step.js";

/** DevStack's default ENABLED_SERVICES (stackrc), used when localrc does not set it. */
export const DEVSTACK_DEFAULT_SERVICES =
  "key,n-api,n-cpu,n-cond,n-sch,n-novnc,n-api-meta,placement-api,placement-client,g-api,c-sch,c-api,c-vol,ovn-controller,ovn-northd,ovs-vswitchd,ovsdb-server,q-svc,q-ovn-agent,horizon,rabbit,tempest,mysql,etcd3,dstat";

export interface HostDirs {
  topDir: string;
  dest: string;
  stateDir: string;
  /** A DevStack checkout whose `functions` file replaces the helper library. */
  devstackDir?: string | undefined;
}

/** Writes a file only its owner may read: local.conf and the localrc hold passwords. */
export function writePrivate(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Asks the config service for this host's configuration at a lab revision. */
export async function fetchHostConfig(bus: Bus, lab: string, host: string, revision?: number): Promise<HostConfig> {
  return bus.request(subjects.configGet(lab, host), ConfigGetRequestSchema, revision ? { revision } : {}, HostConfigSchema, { timeoutMs: 15_000 });
}

/** The files a session sources before any hook: control functions, then the helper library. */
export function sessionPreamble(dirs: HostDirs): string[] {
  if (dirs.devstackDir) return [sessionScriptPath(), join(dirs.devstackDir, "functions"), stackbusFunctionsPath()];
  return [sessionScriptPath(), bashlibEntry()];
}

/**
 * Session code run after the preamble: with DevStack's own functions, make its die safe for
 * the session and define what stack.sh itself adds (read_password).
 */
export function sessionSetup(dirs: HostDirs): string {
  return dirs.devstackDir ? `__sb_devstack_setup ${shq(dirs.devstackDir)}` : "true";
}

/** The environment a session starts with; a run adds STACKBUS_RUN and STACKBUS_FACTS_FILE. */
export function baseEnv(lab: string, host: string): Record<string, string> {
  return {
    PATH: process.env["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: process.env["HOME"] ?? "/root",
    USER: process.env["USER"] ?? "",
    LANG: "C.UTF-8",
    LC_ALL: "C.UTF-8",
    TERM: "dumb",
    STACKBUS_LAB: lab,
    STACKBUS_HOST: host,
  };
}

/** Starts a session shell in TOP_DIR and sources the preamble in it. */
function openShell(dirs: HostDirs, env: Record<string, string>, logger: Logger, onOutput: OutputSink): Promise<BashSession> {
  return BashSession.open({ cwd: dirs.topDir, env, preamble: sessionPreamble(dirs), logger, onOutput });
}

/**
 * DevStack's STACK_USER default, as stackrc sets it before the localrc: `stack` when the
 * agent runs as root (EUID 0; DevStack never runs its services as root), else the user
 * the agent runs as (`whoami`). Computed here, without a fork in the session.
 */
export function stackUserDefault(euid: number | undefined = process.geteuid?.()): string {
  if (euid === 0) return "stack";
  try {
    return userInfo().username;
  } catch {
    return process.env["USER"] ?? "";
  }
}

/**
 * The host's first IPv4 address that is not loopback, as `hostname -I | awk '{print $1}'`
 * finds it for DevStack's HOST_IP default; 127.0.0.1 when there is none.
 */
export function defaultHostIp(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  return "127.0.0.1";
}

/**
 * A session opened ahead of the next run: bash started and the preamble sourced, nothing
 * of any run in it yet. Taking it saves the run the shell's start; a spare whose
 * preamble files changed since (a DevStack checkout updated) is thrown away.
 */
export class SpareSession {
  readonly #dirs: HostDirs;
  readonly #env: Record<string, string>;
  readonly #logger: Logger;
  #next: Promise<{ session: BashSession; stamp: string } | undefined> | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: { dirs: HostDirs; lab: string; host: string; logger: Logger }) {
    this.#dirs = options.dirs;
    this.#env = baseEnv(options.lab, options.host);
    this.#logger = options.logger;
  }

  /**
   * Starts a spare after `delayMs` (a run that just ended leaves the host's CPU to the
   * other hosts' last steps first) unless one is ready or starting.
   */
  warmSoon(delayMs = 1_000): void {
    if (this.#timer || this.#next || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.warm();
    }, delayMs);
    this.#timer.unref();
  }

  /** Starts a spare now unless one is ready or starting. */
  warm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#next || this.#closed) return;
    const stamp = preambleStamp(this.#dirs);
    this.#next = (async () => {
      mkdirSync(this.#dirs.topDir, { recursive: true });
      const session = await openShell(this.#dirs, this.#env, this.#logger, () => undefined);
      return { session, stamp };
    })().catch((err: unknown) => {
      this.#logger.warn({ err }, "could not open a spare session; the next run opens its own");
      return undefined;
    });
  }

  /** The spare, for a run that sends its output to `onOutput`; a new session when there is none fit to use. */
  async take(onOutput: OutputSink): Promise<BashSession> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const next = this.#next;
    this.#next = undefined;
    const spare = next ? await next : undefined;
    if (spare && !spare.session.ended && spare.stamp === preambleStamp(this.#dirs)) {
      spare.session.redirectOutput(onOutput);
      return spare.session;
    }
    spare?.session.kill("SIGKILL");
    return this.fresh(onOutput);
  }

  /** A new session, not the spare (the spare died between take() and its first use). */
  fresh(onOutput: OutputSink): Promise<BashSession> {
    return openShell(this.#dirs, this.#env, this.#logger, onOutput);
  }

  /** Ends the spare (if any) without closing: a later warm() opens a new one. */
  drop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const next = this.#next;
    this.#next = undefined;
    void next?.then((spare) => spare?.session.close());
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    const next = this.#next;
    this.#next = undefined;
    void next?.then((spare) => spare?.session.close());
  }
}

/** What the preamble files are now (their modification times): a spare opened on other files is stale. */
function preambleStamp(dirs: HostDirs): string {
  return sessionPreamble(dirs)
    .map((f) => {
      try {
        return String(statSync(f).mtimeMs);
      } catch {
        return "-";
      }
    })
    .join(",");
}

/** What openSession opened. */
export interface OpenedSession {
  session: BashSession;
  factsFile: string;
  /** With --devstack-dir: the checkout and the run's directory of links to it (see HookPlaces). */
  devstack?: HookPlaces["devstack"];
  /**
   * The prepare hook that ends the run on this host, if one did: it called die, ended or
   * was killed with the session, or failed under stack.sh's errexit.
   */
  failed?: HookRun;
  /** What the run's prepare result says besides: failures the script goes on past, an unused --dest, LOGDIR not created. */
  warnings: string[];
}

/**
 * Opens the run's session the way the run kind's DevStack script starts (the prepare step
 * of the phase model): helper functions (or DevStack's `functions`), base variables, the
 * host's local.conf written to TOP_DIR, its localrc sourced (enable_plugin, enable_service,
 * variables) — with --devstack-dir through DevStack's stackrc or openrc, with the DevStack
 * files the script sources around it — then DevStack's negated-service clean-up and LOGDIR.
 * Takes the spare session when one is given.
 */
export async function openSession(options: {
  dirs: HostDirs;
  config: HostConfig;
  kind: RunKind;
  runId: string;
  runDir: string;
  logger: Logger;
  onOutput: OutputSink;
  /** Write the lab's local.conf to TOP_DIR and create LOGDIR (a run does; a plan does not). @default true */
  writeLocalConf?: boolean;
  spare?: SpareSession | undefined;
}): Promise<OpenedSession> {
  const { dirs, config } = options;
  const run = options.writeLocalConf !== false;
  mkdirSync(dirs.topDir, { recursive: true });
  mkdirSync(options.runDir, { recursive: true, mode: 0o700 });
  const factsFile = join(options.runDir, "facts");
  writePrivate(factsFile, "");
  const localrc = join(run ? dirs.topDir : options.runDir, ".localrc.auto");
  if (run) {
    writePrivate(join(dirs.topDir, "local.conf"), config.localConf.map((s) => (s.text.endsWith("\n") ? s.text : `${s.text}\n`)).join(""));
  }
  writePrivate(localrc, `# Generated by stackbus from the lab's local.conf (revision ${config.revision}), do not edit\n${config.localrc}`);
  const step = findStep(options.kind, "prepare") as Step;
  const devstack = dirs.devstackDir ? { dir: dirs.devstackDir, rcDir: devstackRcDir(options.runDir, dirs.devstackDir, localrc) } : undefined;
  const at = step.actions.findIndex((a) => a.kind === "localrc");
  const via = step.actions[at];
  if (devstack && via?.kind === "localrc" && !existsSync(join(devstack.dir, via.via))) {
    throw new StackbusError(ErrorCode.NotFound, `the DevStack checkout ${devstack.dir} (--devstack-dir) has no ${via.via}`, { path: join(devstack.dir, via.via) });
  }

  const session = await startSession(options, baseVariables(dirs, options.runId, factsFile));
  const places: HookPlaces = { topDir: dirs.topDir, plugins: [], devstack, localrc };
  const opened: OpenedSession = { session, factsFile, devstack, warnings: [] };
  // Up to the localrc no DevStack script has errexit (stack.sh sets it at line 576): a
  // failing command goes on, a die ends the script.
  const early = await session.runBatch(step.actions.slice(0, at + 1).flatMap((a) => hooksFor(a, places)), false);
  opened.failed = early.find((r) => endsRun(r, false, session));
  if (opened.failed) return opened;

  const facts = await session.query(
    [
      "disable_negated_services",
      `HOST_IP=\${HOST_IP:-${shq(defaultHostIp())}}`,
      `SERVICE_HOST=\${SERVICE_HOST:-$HOST_IP}`,
      `__sb_report DEST "\${DEST-}"`,
      `__sb_report LOGDIR "\${LOGDIR-}"`,
      // stack.sh creates LOGDIR right after stackrc (line 344), before any phase.
      ...(run ? ['[[ -z ${LOGDIR:-} || -d $LOGDIR ]] || mkdir -p -- "$LOGDIR" || __sb_report LOGDIR-failed 1'] : []),
    ].join("\n"),
  );
  if (facts["LOGDIR-failed"]) opened.warnings.push(`LOGDIR ${facts["LOGDIR"] ?? ""} could not be created: hooks that write their logs there will fail`);
  if (devstack && facts["DEST"] !== dirs.dest) {
    opened.warnings.push(`DEST is ${facts["DEST"] ?? ""}, as DevStack's stackrc and the localrc set it; the agent's --dest ${dirs.dest} is not used with --devstack-dir`);
  }

  // After it, stack.sh has errexit; unstack.sh and clean.sh never do.
  const errexit = options.kind === "stack";
  const late = step.actions.slice(at + 1).flatMap((a) => hooksFor(a, places));
  const runs = late.length > 0 ? await session.runBatch(late, errexit) : [];
  opened.failed = runs.find((r) => endsRun(r, errexit, session));
  if (!opened.failed) {
    for (const r of runs.filter((x) => x.status === "failed")) opened.warnings.push(`${describeFailure(r, dirs.topDir)} (${scriptName(options.kind)} goes on past it)`);
  }
  return opened;
}

/** The session variables set before any hook: TOP_DIR and the helper library's defaults, or what stackrc leaves to its caller. */
function baseVariables(dirs: HostDirs, runId: string, factsFile: string): string[] {
  // With a DevStack checkout, stackrc sets DEST, DATA_DIR, LOGDIR, STACK_USER and the
  // default ENABLED_SERVICES itself (LOGDIR and ENABLED_SERVICES only when unset).
  const defaults = dirs.devstackDir
    ? []
    : [`DEST=${shq(dirs.dest)}`, `DATA_DIR=$DEST/data`, `LOGDIR=$DEST/logs`, `STACK_USER=${shq(stackUserDefault())}`, `ENABLED_SERVICES=${shq(DEVSTACK_DEFAULT_SERVICES)}`];
  return [
    `export STACKBUS_RUN=${shq(runId)} STACKBUS_FACTS_FILE=${shq(factsFile)}`,
    sessionSetup(dirs),
    `TOP_DIR=${shq(dirs.topDir)}`,
    `FILES=$TOP_DIR/files`,
    ...defaults,
    `DISABLED_SERVICES=""`,
    `cd "$TOP_DIR"`,
  ];
}

/** The run's shell (the spare when there is one alive) with the base variables set. */
async function startSession(options: { dirs: HostDirs; config: HostConfig; logger: Logger; onOutput: OutputSink; spare?: SpareSession | undefined }, base: string[]): Promise<BashSession> {
  let session = options.spare
    ? await options.spare.take(options.onOutput)
    : await openShell(options.dirs, baseEnv(options.config.lab, options.config.host), options.logger, options.onOutput);
  let status: number;
  try {
    status = await session.eval(base.join("\n"));
  } catch (err) {
    // A spare can die while idle (killed, out of memory) and be seen dead only now.
    if (!options.spare || !session.ended) throw err;
    session = await options.spare.fresh(options.onOutput);
    status = await session.eval(base.join("\n"));
  }
  if (status !== 0) throw new StackbusError(ErrorCode.SessionEnded, `setting the base variables failed with status ${status}`);
  return session;
}

/** True when a prepare hook's outcome ends the run on the host, as it would end the DevStack script. */
function endsRun(run: HookRun, errexit: boolean, session: BashSession): boolean {
  if (run.status === "timeout" || run.status === "canceled") return true;
  if (run.status !== "failed") return false;
  return run.died || session.ended || errexit;
}

function scriptName(kind: RunKind): string {
  return kind === "stack" ? "stack.sh" : kind === "unstack" ? "unstack.sh" : "clean.sh";
}

/** The entries of a DevStack checkout that are not linked into the run's RC_DIR: a localrc of its own, and an earlier stack.sh's state. */
const NOT_LINKED = new Set(["local.conf", "localrc", ".localrc.auto", ".localrc.password", ".stackenv"]);

/**
 * The directory stackrc and openrc are sourced from, so that their RC_DIR (the directory
 * they are in) holds the run's localrc: `<runDir>/devstack-rc`, a link to every top-level
 * entry of the DevStack checkout except a localrc of its own and an earlier stack.sh's
 * state (local.conf, localrc, .localrc.auto, .localrc.password, .stackenv), and
 * `.localrc.auto` linked to the run's localrc. The checkout is neither edited nor copied.
 */
export function devstackRcDir(runDir: string, checkout: string, localrc: string): string {
  const dir = join(runDir, "devstack-rc");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const entry of readdirSync(checkout)) {
    if (!NOT_LINKED.has(entry)) symlinkSync(join(checkout, entry), join(dir, entry));
  }
  symlinkSync(localrc, join(dir, ".localrc.auto"));
  return dir;
}

/** A plugin as enable_plugin registered it: name, URL, ref, and its GITDIR. */
export interface RegisteredPlugin {
  name: string;
  url: string;
  ref: string;
  /** `GITDIR[name]`: `$DEST/<name>` as DEST was when enable_plugin ran (empty: under `dest`). */
  dir: string;
}

/**
 * Gets every registered plugin through the fetcher and installs it where DevStack would
 * have cloned it, in registration order. `onInstalled` is told each checkout's directory
 * (the devstack runner hands it to DevStack's user).
 */
export async function fetchPlugins(options: {
  bus: Bus;
  config: HostConfig;
  runId: string;
  registered: readonly RegisteredPlugin[];
  dest: string;
  log: (line: string) => void;
  onProgress: (plugin: string, done: number, total: number) => void;
  onInstalled?: (path: string) => Promise<void> | void;
  /** The run's directory on this host: what earlier attempts of the run placed is recorded there. */
  runDir?: string;
}): Promise<{ plugins: InstalledPlugin[]; replies: PluginResolveReply[]; warnings: string[] }> {
  const { bus, config, registered } = options;
  const placed = readPlaced(options.runDir);
  if (registered.length === 0) return { plugins: [], replies: [], warnings: [] };
  const warnings: string[] = [];
  const store = await bus.objectStore(OBJECT_STORES.plugins);
  const replies: PluginResolveReply[] = await Promise.all(
    registered.map(async ({ name, url, ref }) => {
      options.log(`resolving plugin ${name} (${redactUrl(url)} ${ref})`);
      return resolvePlugin(bus, subjects.pluginsResolve(config.lab, config.host), { name, url, ref, runId: options.runId, revision: config.revision }, options.log);
    }),
  );
  const installed: InstalledPlugin[] = [];
  for (const [i, reply] of replies.entries()) {
    const dir = registered[i]?.dir || join(options.dest, reply.name);
    warnings.push(...reply.warnings.map((w) => `${reply.name}: ${w}`));
    const outcome = await installPlugin({
      store,
      plugin: reply,
      dest: dirParent(dir),
      reclone: config.pluginSettings.reclone,
      replaceable: placed[join(dirParent(dir), reply.name)] ?? [],
      limits: config.pluginSettings.limits,
      onProgress: (done, total) => options.onProgress(reply.name, done, total),
    });
    options.log(`plugin ${reply.name} at ${reply.commit.slice(0, 12)}: ${outcome.action} in ${outcome.path}`);
    if (outcome.warning) warnings.push(outcome.warning);
    await options.onInstalled?.(outcome.path);
    installed.push({ name: reply.name, url: reply.url, ref: reply.ref, dir: outcome.path, commit: outcome.commit });
    if (outcome.action !== "kept") (placed[outcome.path] ??= []).push(outcome.commit);
  }
  writePlaced(options.runDir, placed);
  return { plugins: installed, replies, warnings };
}

/** Per checkout path, the commits this run's attempts placed there (`runs/<run>/plugins.json`). */
function readPlaced(runDir: string | undefined): Record<string, string[]> {
  if (!runDir) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(runDir, "plugins.json"), "utf8"));
    return parsed !== null && typeof parsed === "object" ? (parsed as Record<string, string[]>) : {};
  } catch {
    return {};
  }
}

function writePlaced(runDir: string | undefined, placed: Record<string, string[]>): void {
  if (!runDir) return;
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  writePrivate(join(runDir, "plugins.json"), JSON.stringify(placed));
}

/**
 * The hooks runner's plugins: those the session's localrc registered, fetched and
 * installed (fetchPlugins), in the order the lab asks for (registration by default).
 */
export async function installPlugins(options: {
  bus: Bus;
  session: BashSession;
  config: HostConfig;
  runId: string;
  runDir?: string;
  dest: string;
  log: (line: string) => void;
  onProgress: (plugin: string, done: number, total: number) => void;
}): Promise<{ plugins: InstalledPlugin[]; warnings: string[] }> {
  const { session, config } = options;
  const registered = (await session.listPlugins()).map(([name = "", url = "", ref = "", dir = ""]) => ({ name, url, ref, dir }));
  const { plugins: installed, replies, warnings } = await fetchPlugins({ ...options, registered });
  if (config.pluginSettings.order === "requires" && replies.length > 0) {
    const order = orderPlugins(
      replies.map((r) => ({ name: r.name, requires: r.requires })),
      "requires",
    );
    installed.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    await session.eval(`DEVSTACK_PLUGINS=${shq("," + order.join(","))}`);
    options.log(`plugin order (plugin_requires): ${order.join(", ")}`);
  }
  return { plugins: installed, warnings };
}

/** How long one plugin request waits for the fetcher. @default 120 s (`STACKBUS_PLUGIN_REQUEST_TIMEOUT`, ms) */
function pluginRequestTimeout(): number {
  return Number(process.env["STACKBUS_PLUGIN_REQUEST_TIMEOUT"] ?? 120_000);
}

/**
 * Asks the fetcher for a plugin, again and again while no fetcher answers (it is
 * restarting, or was killed mid-fetch): the same run id makes every retry resolve the
 * same commit, and a fetcher already cloning serves the retry from that clone. Coded
 * errors (unknown ref, refused URL, ...) are not retried. Gives up after 15 minutes.
 */
async function resolvePlugin(bus: Bus, subject: string, req: PluginResolveRequest, log: (line: string) => void): Promise<PluginResolveReply> {
  const deadline = Date.now() + 15 * 60_000;
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await bus.request(subject, PluginResolveRequestSchema, req, PluginResolveReplySchema, { timeoutMs: pluginRequestTimeout() });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code !== ErrorCode.Unavailable && code !== ErrorCode.Timeout) || Date.now() + delay > deadline) throw err;
      log(`the plugin fetcher did not answer for ${req.name} (${(err as Error).message}); asking again (attempt ${attempt + 1})`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}

function dirParent(dir: string): string {
  const i = dir.replace(/\/+$/, "").lastIndexOf("/");
  return i > 0 ? dir.slice(0, i) : "/";
}

/**
 * DevStack's merge_config_group for one group, on `$TOP_DIR/local.conf` as it is now
 * (a plugin may have edited it with localconf_set), with names and values expanded in
 * the live session.
 */
export async function mergeInSession(session: BashSession, topDir: string, runDir: string, group: MergeGroup): Promise<{ files: string[]; warnings: string[] }> {
  const file = join(topDir, "local.conf");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return { files: [], warnings: [] };
  }
  const parsed = parseLocalConf(text, file);
  if (!parsed.blocks.some((b) => b.group === group)) return { files: [], warnings: [] };
  const expand: Expander = async (requests) => {
    const out = join(runDir, "expand.out");
    writePrivate(out, "");
    const status = await session.eval(`exec 5>${shq(out)}\n${expansionScript(requests, 5)}\nexec 5>&-`);
    if (status !== 0) throw new StackbusError(ErrorCode.MergeFailed, `expanding the [[${group}|...]] file names and values failed (status ${status})`);
    return parseExpansionOutput(readFileSync(out, "utf8"), requests.length);
  };
  const outcome = await mergeConfigGroup(parsed.blocks, group, expand, { cwd: topDir, files: nodeMergeFiles });
  return {
    files: outcome.files.map((f) => f.path),
    warnings: outcome.warnings.map((d) => d.message),
  };
}
