import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
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
  subjects,
  type HostConfig,
  type MergeGroup,
  type PluginResolveReply,
  type PluginResolveRequest,
} from "@stackbus/protocol";
import type { Bus, Logger } from "@stackbus/bus";
import { BashSession, sessionScriptPath, shq, type OutputSink } from "./session.js";
import type { InstalledPlugin } from "./hooks.js";

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

/** Asks the config service for this host's configuration at a lab revision. */
export async function fetchHostConfig(bus: Bus, lab: string, host: string, revision?: number): Promise<HostConfig> {
  return bus.request(subjects.configGet(lab, host), ConfigGetRequestSchema, revision ? { revision } : {}, HostConfigSchema, { timeoutMs: 15_000 });
}

/** The files a session sources before any hook: control functions, then the helper library. */
export function sessionPreamble(dirs: HostDirs): string[] {
  if (dirs.devstackDir) return [sessionScriptPath(), join(dirs.devstackDir, "functions"), stackbusFunctionsPath()];
  return [sessionScriptPath(), bashlibEntry()];
}

/** Session code run after the preamble: with DevStack's own functions, make its die safe for the session. */
export function sessionSetup(dirs: HostDirs): string {
  return dirs.devstackDir ? "__sb_wrap_devstack_die" : "true";
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

/** The user the agent runs as (DevStack's STACK_USER default, `id -un`). */
function currentUser(): string {
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

/**
 * Opens the run's session the way stack.sh starts: helper functions, base variables,
 * the host's local.conf written to TOP_DIR, its localrc sourced (enable_plugin,
 * enable_service, variables), then DevStack's negated-service clean-up. Takes the
 * spare session when one is given.
 */
export async function openSession(options: {
  dirs: HostDirs;
  config: HostConfig;
  runId: string;
  runDir: string;
  logger: Logger;
  onOutput: OutputSink;
  /** Write the lab's local.conf to TOP_DIR (a run does; a plan does not). @default true */
  writeLocalConf?: boolean;
  spare?: SpareSession | undefined;
}): Promise<{ session: BashSession; factsFile: string; localrcStatus: number; localrcDied: boolean }> {
  const { dirs, config } = options;
  mkdirSync(dirs.topDir, { recursive: true });
  mkdirSync(options.runDir, { recursive: true });
  const factsFile = join(options.runDir, "facts");
  writeFileSync(factsFile, "");
  const localrc = join(options.writeLocalConf === false ? options.runDir : dirs.topDir, ".localrc.auto");
  if (options.writeLocalConf !== false) {
    writeFileSync(join(dirs.topDir, "local.conf"), config.localConf.map((s) => (s.text.endsWith("\n") ? s.text : `${s.text}\n`)).join(""));
  }
  writeFileSync(localrc, `# Generated by stackbus from the lab's local.conf (revision ${config.revision}), do not edit\n${config.localrc}`);

  let session = options.spare
    ? await options.spare.take(options.onOutput)
    : await openShell(dirs, baseEnv(config.lab, config.host), options.logger, options.onOutput);
  const base = [
    `export STACKBUS_RUN=${shq(options.runId)} STACKBUS_FACTS_FILE=${shq(factsFile)}`,
    sessionSetup(dirs),
    `TOP_DIR=${shq(dirs.topDir)}`,
    `DEST=${shq(dirs.dest)}`,
    `FILES=$TOP_DIR/files`,
    `DATA_DIR=$DEST/data`,
    `LOGDIR=$DEST/logs`,
    `STACK_USER=${shq(currentUser())}`,
    `ENABLED_SERVICES=${shq(DEVSTACK_DEFAULT_SERVICES)}`,
    `DISABLED_SERVICES=""`,
    `cd "$TOP_DIR"`,
  ];
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
  const after = [
    "disable_negated_services",
    `HOST_IP=\${HOST_IP:-${shq(defaultHostIp())}}`,
    `SERVICE_HOST=\${SERVICE_HOST:-$HOST_IP}`,
  ];
  const [run] = await session.runBatch([{ name: "localrc", kind: "noargs", target: localrc, args: [] }], false);
  await session.eval(after.join("\n"));
  return { session, factsFile, localrcStatus: run?.exitCode ?? 0, localrcDied: run?.died ?? false };
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
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, "plugins.json"), JSON.stringify(placed));
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
    writeFileSync(out, "");
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
