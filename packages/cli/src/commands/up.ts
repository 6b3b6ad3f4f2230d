import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import { join, resolve } from "node:path";
import { Option, type Command } from "commander";
import pc from "picocolors";
import { Bus, silentLogger } from "@stackbus/bus";
import type { Lab } from "@stackbus/lab";
import {
  ConfigApplyReplySchema,
  ConfigApplyRequestSchema,
  ErrorCode,
  LabListRequestSchema,
  LabListSchema,
  StackbusError,
  subjects,
  type Diagnostic,
} from "@stackbus/protocol";
import { AGENT_NODE_FLAGS } from "@stackbus/agent/node-flags";
import { busOptions, EXIT, withBusOptions, type BusFlags, exitWith } from "../common.js";
import { CLI_TIMEOUT_MS } from "../timeouts.js";

const CLI_BIN = new URL("../../bin/stackbus.js", import.meta.url).pathname;

export interface UpOptions {
  /** Use this bus instead of starting a nats-server. */
  nats?: string | undefined;
  /** Port of the nats-server `up` starts. @default 4222 */
  port?: number | undefined;
  /** Where up keeps NATS data, logs, and the local hosts' dirs. @default ./.stackbus */
  dataDir: string;
  /** Manifest to apply; its `local: true` hosts get an agent. */
  labFile?: string | undefined;
  flags: BusFlags;
  say: (line: string) => void;
}

export interface UpHandle {
  natsUrl: string;
  lab: Lab | undefined;
  /** Resolves when a process of the tree exits on its own (not through stop). */
  crashed: Promise<string>;
  stop(): Promise<void>;
}

interface Child {
  name: string;
  proc: ChildProcess;
  log: string;
}

/**
 * Brings up a whole stackbus on this machine as one process tree: a nats-server (unless
 * a bus is given), the config, fetcher and coordinator services, the lab applied, and an
 * agent for each host marked `local: true`.
 */
export async function up(options: UpOptions): Promise<UpHandle> {
  const dataDir = resolve(options.dataDir);
  const logDir = join(dataDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const children: Child[] = [];
  let stopping = false;
  let crash: (what: string) => void = () => undefined;
  const crashed = new Promise<string>((r) => (crash = r));

  const start = (name: string, command: string, args: string[], env: Record<string, string> = {}): Child => {
    const log = join(logDir, `${name}.log`);
    const out = createWriteStream(log, { flags: "a" });
    const proc = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    proc.stdout?.pipe(out);
    proc.stderr?.pipe(out);
    const child = { name, proc, log };
    children.push(child);
    proc.once("exit", (code, signal) => {
      if (!stopping) crash(`${name} exited (${signal ?? `status ${code}`}); its log is ${log}`);
    });
    proc.once("error", (err) => {
      if (!stopping) crash(`${name} could not start: ${err.message}`);
    });
    return child;
  };

  const stop = async () => {
    stopping = true;
    const order = [...children].reverse();
    await Promise.all(
      order.map(
        (c) =>
          new Promise<void>((done) => {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) return done();
            const timer = setTimeout(() => c.proc.kill("SIGKILL"), CLI_TIMEOUT_MS.stopGrace);
            c.proc.once("exit", () => {
              clearTimeout(timer);
              done();
            });
            c.proc.kill("SIGTERM");
          }),
      ),
    );
  };

  try {
    let natsUrl = options.nats;
    if (!natsUrl) {
      const port = options.port ?? 4222;
      if (await portInUse(port)) {
        throw new StackbusError(ErrorCode.Conflict, `port ${port} is already in use (another "stackbus up"?): stop it, or use the running server with --nats nats://127.0.0.1:${port}`);
      }
      const storeDir = join(dataDir, "nats");
      mkdirSync(storeDir, { recursive: true });
      const nats = start("nats-server", process.env["NATS_SERVER_BIN"] ?? "nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir]);
      natsUrl = `nats://127.0.0.1:${port}`;
      await waitForPort(port, nats, CLI_TIMEOUT_MS.natsUp);
      options.say(`nats-server on ${natsUrl} (data in ${storeDir})`);
    }
    const flags: BusFlags = { ...options.flags, nats: natsUrl };
    const common = busArgs(flags);
    start("config", process.execPath, [CLI_BIN, "serve", "config", ...common]);
    start("fetcher", process.execPath, [CLI_BIN, "serve", "fetcher", "--cache-dir", join(dataDir, "fetcher-cache"), ...common]);
    start("coordinator", process.execPath, [CLI_BIN, "serve", "coordinator", ...common]);

    const bus = await Bus.connect(busOptions(flags, "stackbus-up", silentLogger()));
    try {
      await waitFor(async () => bus.request(subjects.labList(), LabListRequestSchema, {}, LabListSchema, { timeoutMs: CLI_TIMEOUT_MS.probe }), CLI_TIMEOUT_MS.configUp, "the config service");
      options.say("config, fetcher and coordinator services are running");
      let lab: Lab | undefined;
      if (options.labFile) {
        const { validateLabFile } = await import("@stackbus/lab");
        const validation = validateLabFile(options.labFile);
        const request = validation.request;
        if (!validation.ok || !validation.lab) {
          throw new StackbusError(ErrorCode.InvalidManifest, `${options.labFile} is not a valid lab`, { diagnostics: validation.diagnostics });
        }
        lab = validation.lab;
        const applied = await bus.request(subjects.configApply(lab.name), ConfigApplyRequestSchema, request, ConfigApplyReplySchema, { timeoutMs: CLI_TIMEOUT_MS.apply });
        options.say(`lab ${applied.lab} revision ${applied.revision} applied (${applied.hosts.length} hosts)`);
        for (const w of applied.warnings) options.say(pc.yellow(`warning ${formatDiagnostic(w)}`));
        for (const host of lab.hosts.filter((h) => h.local)) {
          const base = join(dataDir, "hosts", host.name);
          const topDir = host.topDir ?? join(base, "devstack");
          const dest = host.dest ?? join(base, "stack");
          mkdirSync(topDir, { recursive: true });
          mkdirSync(dest, { recursive: true });
          start(`agent-${host.name}`, process.execPath, [
            ...AGENT_NODE_FLAGS, CLI_BIN, "agent", "--host", host.name, "--lab", lab.name, "--top-dir", topDir, "--dest", dest, "--state-dir", join(base, "state"), ...common,
          ]);
        }
        const locals = lab.hosts.filter((h) => h.local).map((h) => h.name);
        if (locals.length > 0) {
          await waitForAgents(bus, lab.name, locals);
          options.say(`agents running for ${locals.join(", ")}`);
        }
      }
      return { natsUrl, lab, crashed, stop };
    } finally {
      await bus.drain();
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

function busArgs(flags: BusFlags): string[] {
  const args = ["--nats", flags.nats ?? ""];
  const pairs: Array<[string, string | undefined]> = [
    ["--user", flags.user],
    ["--password", flags.password],
    ["--nkey", flags.nkey],
    ["--creds", flags.creds],
    ["--tls-ca", flags.tlsCa],
    ["--tls-cert", flags.tlsCert],
    ["--tls-key", flags.tlsKey],
  ];
  for (const [flag, value] of pairs) if (value) args.push(flag, value);
  return args;
}

/** Diagnostic messages already name their file, line and field. */
function formatDiagnostic(d: Diagnostic): string {
  return d.message;
}

async function waitFor<T>(fn: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new StackbusError(ErrorCode.Timeout, `${what} did not come up within ${timeoutMs / 1000}s: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function waitForAgents(bus: Bus, lab: string, hosts: string[]): Promise<void> {
  const { PingRequestSchema, PingReplySchema } = await import("@stackbus/protocol");
  await Promise.all(
    hosts.map((h) => waitFor(() => bus.request(subjects.hostPing(lab, h), PingRequestSchema, {}, PingReplySchema, { timeoutMs: CLI_TIMEOUT_MS.probe }), CLI_TIMEOUT_MS.agentUp, `the agent of ${h}`)),
  );
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolvePort(true);
    });
    socket.once("error", () => resolvePort(false));
  });
}

async function waitForPort(port: number, child: Child, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await portInUse(port))) {
    if (child.proc.exitCode !== null) throw new StackbusError(ErrorCode.Unavailable, `nats-server exited with status ${child.proc.exitCode}; see ${child.log}`);
    if (Date.now() > deadline) throw new StackbusError(ErrorCode.Timeout, `nats-server did not listen on ${port} within ${timeoutMs / 1000}s; see ${child.log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Checks that nats-server can be run, with an installation hint when it cannot. */
export function natsServerHint(): string {
  return existsSync("/usr/bin/nats-server") ? "" : " (install it: sudo apt-get install -y nats-server)";
}

export function registerUpCommand(program: Command): void {
  const cmd = program
    .command("up")
    .description("Start stackbus on this machine in the foreground: nats-server (unless --nats is given), the services, the lab, and the agents of its local hosts. Ctrl-C stops everything.")
    .option("--lab <file>", "lab manifest to apply; hosts marked local: true get an agent here")
    .addOption(new Option("--data-dir <dir>", "where NATS data, logs and local hosts' dirs live").default("./.stackbus"))
    .addOption(new Option("--port <port>", "port of the nats-server started here").default("4222"))
    .addHelpText("after", "\nExamples:\n  stackbus up --lab examples/demo/lab.yaml\n  stackbus up --nats nats://10.0.0.1:4222 --lab lab.yaml");
  withBusOptions(cmd).action(exitWith(async (flags: BusFlags & { lab?: string; dataDir: string; port: string }, command: Command) => {
    const natsGiven = command.getOptionValueSource("nats") !== "default";
    const say = (line: string) => process.stdout.write(`${pc.cyan("stackbus up")} ${line}\n`);
    const handle = await up({
      nats: natsGiven ? flags.nats : undefined,
      port: Number(flags.port),
      dataDir: flags.dataDir,
      labFile: flags.lab,
      flags,
      say,
    });
    say(`ready. Logs in ${resolve(flags.dataDir, "logs")}. Ctrl-C to stop.`);
    return new Promise<number>((resolveExit) => {
      let done = false;
      const finish = (code: number) => {
        if (done) return;
        done = true;
        void handle.stop().then(() => resolveExit(code));
      };
      process.once("SIGINT", () => finish(EXIT.ok));
      process.once("SIGTERM", () => finish(EXIT.ok));
      void handle.crashed.then((what) => {
        process.stderr.write(`${pc.red("error:")} ${what}\n`);
        finish(EXIT.failed);
      });
    });
  }));
}
