/**
 * A whole lab on one machine for cross-service tests: a real nats-server, the services
 * and agents as separate processes started through the `stackbus` CLI, hosts as
 * directories with real extras.d hooks, and a client bus for assertions.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ConfigApplyReplySchema,
  ConfigApplyRequestSchema,
  PingReplySchema,
  PingRequestSchema,
  decodeRunRecord,
  BUCKETS,
  keys,
  subjects,
  type ConfigApplyReply,
  type RunRecord,
} from "@stackbus/protocol";
import { Bus, silentLogger } from "@stackbus/bus";
import {
  devstackEnvironment,
  devstackHost,
  giveTo,
  startNats,
  startNatsCluster,
  tempDir,
  track,
  trackGroup,
  untrack,
  waitFor,
  type NatsCluster,
  type NatsServer,
} from "@stackbus/testkit";

export const REPO_ROOT = new URL("../../", import.meta.url).pathname;
export const CLI = join(REPO_ROOT, "packages/cli/bin/stackbus.js");

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  output(): string;
  /** Sends a signal and waits for exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  exited(): Promise<number | null>;
}

/** Starts `stackbus ARGS` as a separate process. */
export function spawnCli(name: string, args: string[], env: Record<string, string> = {}, prefix: string[] = []): Proc {
  const [command, ...rest] = [...prefix, process.execPath, CLI, ...args] as [string, ...string[]];
  const child = spawn(command, rest, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, STACKBUS_LOG_LEVEL: process.env["STACKBUS_LOG_LEVEL"] ?? "warn", ...env },
  });
  return procOf(name, child);
}

/** A started process as a test holds it: tracked (killed if the test run ends), its output gathered. */
export function procOf(name: string, child: ChildProcess): Proc {
  track(child);
  let out = "";
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (out += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    name,
    child,
    output: () => out,
    exited: () => exit,
    async kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exit;
        clearTimeout(timer);
      }
      untrack(child);
    },
  };
}

/** Runs `stackbus ARGS` to completion, as a user would. */
export async function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1", ...env } });
  trackGroup(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearTimeout(timer);
  untrack(child);
  return { code, stdout, stderr };
}

export interface HostSpec {
  name: string;
  wave?: number;
  /** Files under the host's TOP_DIR, e.g. `extras.d/10-a.sh`. */
  files?: Record<string, string>;
  /** The host's local.conf text. */
  localConf?: string;
  /**
   * The host's TOP_DIR is a clone of the real DevStack (../shared/mirrors), at this
   * branch (default master), with its own DEST; everything owned by the DevStack test user.
   */
  devstack?: { branch?: string };
  /** The host's runner in the manifest (default: the lab's defaults, else hooks). */
  runner?: "hooks" | "devstack";
}

export interface LabOptions {
  lab?: string;
  hosts: HostSpec[];
  /** Extra manifest YAML appended at top level (defaults:, plugins:, common:). */
  manifestExtra?: string;
  /** Services to start (default all three). */
  services?: Array<"config" | "fetcher" | "coordinator">;
  /** Heartbeat interval for the agents. @default 300 */
  heartbeatMs?: number;
  /** Start the agents (default true). */
  agents?: boolean;
  /** Address nats-server listens on. @default 127.0.0.1 */
  natsHost?: string;
  /** A command prefix per host for its agent (e.g. `ip netns exec NS`). */
  agentPrefix?: (host: string) => string[];
  /** Run on a 3-node JetStream cluster (streams and buckets with 3 replicas). */
  cluster?: boolean;
  /** Extra environment for the agents. */
  agentEnv?: Record<string, string>;
}

export class Lab implements AsyncDisposable {
  readonly dir = tempDir("sb-lab-");
  readonly name: string;
  /** The latest process of each name (service or agent). */
  readonly procs = new Map<string, Proc>();
  /** Every process started, so stop() ends them all (also ones replaced in `procs`). */
  readonly #all: Proc[] = [];
  nats!: NatsServer;
  cluster: NatsCluster | undefined;
  bus!: Bus;
  readonly hosts: HostSpec[];
  readonly options: LabOptions;

  constructor(options: LabOptions) {
    this.options = options;
    this.name = options.lab ?? "testlab";
    this.hosts = options.hosts;
  }

  static async start(options: LabOptions): Promise<Lab> {
    const lab = new Lab(options);
    await lab.start();
    return lab;
  }

  /** Starts the bus, the services, the lab and the agents; on failure everything started is stopped. */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Every client URL of the bus, comma-separated. */
  get natsUrl(): string {
    return this.cluster?.urls ?? this.nats.url;
  }

  get natsArgs(): string[] {
    return ["--nats", this.natsUrl, ...(this.cluster ? ["--replicas", "3"] : [])];
  }

  hostDir(host: string): string {
    return join(this.dir.path, "hosts", host);
  }

  topDir(host: string): string {
    return join(this.hostDir(host), "devstack");
  }

  /** The host's DEST (the agent's --dest; in DevStack mode, the localrc's DEST). */
  dest(host: string): string {
    return join(this.hostDir(host), "stack");
  }

  /** A file every hook of every host may append to (shared between the agent processes). */
  get shared(): string {
    return join(this.dir.path, "shared.log");
  }

  async #start(): Promise<void> {
    if (this.options.cluster) {
      this.cluster = await startNatsCluster(3);
      this.nats = this.cluster.servers[0] as NatsServer;
    } else {
      this.nats = await startNats(this.options.natsHost ? { host: this.options.natsHost } : {});
    }
    this.bus = await Bus.connect({ servers: this.natsUrl, name: "test-client", logger: silentLogger(), replicas: this.cluster ? 3 : 1 });
    if (this.cluster) await waitFor("JetStream in the cluster", () => this.bus.kv("sb_ready").then(() => true), 30_000, 500);
    for (const h of this.hosts) this.writeHostFiles(h);
    writeFileSync(this.shared, "");
    for (const s of this.options.services ?? ["config", "fetcher", "coordinator"]) this.startService(s);
    await this.apply(this.manifest());
    if (this.options.agents !== false) {
      for (const h of this.hosts) this.startAgent(h.name);
      await this.waitForAgents(this.hosts.map((h) => h.name));
    }
  }

  writeHostFiles(h: HostSpec): void {
    const top = this.topDir(h.name);
    if (h.devstack) {
      chmodSync(this.dir.path, 0o755);
      mkdirSync(this.hostDir(h.name), { recursive: true, mode: 0o755 });
      devstackHost(devstackEnvironment(), { topDir: top, dest: this.dest(h.name), cacheDir: join(this.dir.path, "mirrors"), ...(h.devstack.branch ? { branch: h.devstack.branch } : {}) });
    }
    mkdirSync(join(top, "extras.d"), { recursive: true });
    mkdirSync(join(this.hostDir(h.name), "stack"), { recursive: true });
    for (const [path, body] of Object.entries(h.files ?? {})) {
      const target = join(top, path);
      mkdirSync(join(target, ".."), { recursive: true });
      writeFileSync(target, body);
    }
    if (h.devstack) giveTo(top, devstackEnvironment());
    writeFileSync(join(this.dir.path, `${h.name}.conf`), h.localConf ?? "[[local|localrc]]\n");
  }

  manifest(): string {
    const lines = [`lab: ${this.name}`, "hosts:"];
    for (const h of this.hosts) {
      lines.push(`  - name: ${h.name}`, `    wave: ${h.wave ?? 1}`, `    localConf: ${h.name}.conf`, ...(h.runner ? [`    runner: ${h.runner}`] : []));
    }
    if (this.options.manifestExtra) lines.push(this.options.manifestExtra);
    return `${lines.join("\n")}\n`;
  }

  /** Applies a manifest (text) with the local.conf files of the hosts. */
  async apply(text: string, files?: Record<string, string>): Promise<ConfigApplyReply> {
    const bundle: Record<string, string> = files ?? {};
    if (!files) {
      for (const h of this.hosts) bundle[`${h.name}.conf`] = h.localConf ?? "[[local|localrc]]\n";
    }
    await waitFor("the config service", async () => {
      try {
        return await this.bus.request(subjects.configApply(this.name), ConfigApplyRequestSchema, { file: "lab.yaml", text, files: bundle }, ConfigApplyReplySchema, { timeoutMs: 5_000 });
      } catch (err) {
        if ((err as { code?: string }).code === "UNAVAILABLE") return undefined;
        throw err;
      }
    }, 30_000, 100);
    return this.bus.request(subjects.configApply(this.name), ConfigApplyRequestSchema, { file: "lab.yaml", text, files: bundle }, ConfigApplyReplySchema, { timeoutMs: 10_000 });
  }

  startService(name: "config" | "fetcher" | "coordinator"): Proc {
    const args = ["serve", name, ...this.natsArgs];
    if (name === "fetcher") args.push("--cache-dir", join(this.dir.path, "fetcher-cache"));
    const proc = spawnCli(name, args);
    this.procs.set(name, proc);
    this.#all.push(proc);
    return proc;
  }

  startAgent(host: string, extra: string[] = []): Proc {
    const base = this.hostDir(host);
    const proc = spawnCli(`agent-${host}`, [
      "agent", "--host", host, "--lab", this.name,
      "--top-dir", this.topDir(host), "--dest", this.dest(host), "--state-dir", join(base, "state"),
      "--heartbeat", String(this.options.heartbeatMs ?? 300),
      ...this.natsArgs, ...extra,
    ], this.options.agentEnv ?? {}, this.options.agentPrefix?.(host) ?? []);
    this.procs.set(`agent-${host}`, proc);
    this.#all.push(proc);
    return proc;
  }

  async waitForAgents(hosts: string[]): Promise<void> {
    await Promise.all(
      hosts.map((h) =>
        waitFor(`the agent of ${h}`, () => this.bus.request(subjects.hostPing(this.name, h), PingRequestSchema, {}, PingReplySchema, { timeoutMs: 500 }).catch(() => undefined), 30_000, 100),
      ),
    );
  }

  /** Runs the CLI against this lab's bus. */
  cli(args: string[], timeoutMs?: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli([...args, "--nats", this.natsUrl, "--lab", this.name], {}, timeoutMs);
  }

  async record(runId: string): Promise<RunRecord | undefined> {
    const kv = await this.bus.kv(BUCKETS.runs);
    const entry = await kv.get(keys.run(this.name, runId));
    return entry && entry.operation === "PUT" ? decodeRunRecord(entry.key, entry.value) : undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(this.#all.map((p) => p.kill()));
    await this.bus?.drain().catch(() => undefined);
    if (this.cluster) await this.cluster.stop();
    else await this.nats?.stop();
    this.dir.remove();
  }

  /** `await using lab = await Lab.start(...)` stops every process, the bus and the server at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** A hook body that appends `<host> <phase args> <epoch-µs>` to the shared file. */
export function recordingHook(shared: string, tag = ""): string {
  return `echo "$STACKBUS_HOST ${tag}$* \${EPOCHREALTIME/./}" >> ${JSON.stringify(shared)}\n`;
}
