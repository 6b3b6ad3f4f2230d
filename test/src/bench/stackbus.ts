import { fork, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Subscription } from "@nats-io/nats-core";
import {
  ConfigApplyReplySchema,
  ConfigApplyRequestSchema,
  RunStartReplySchema,
  RunStartRequestSchema,
  subjects,
} from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";
import { hostName, writeNoopHooks } from "./hooks.js";

const AGENTS_HOST = new URL("./agents-host.js", import.meta.url).pathname;
const CLI = new URL("../../../packages/cli/bin/stackbus.js", import.meta.url).pathname;

/** One timed `stack` run: wall time from the start request to `run.finished`, and where it went. */
export interface StackTiming {
  runId: string;
  totalMs: number;
  /** Milliseconds from the start request to each step's `step.finished`, in order. */
  steps: Array<{ step: string; finishedAtMs: number }>;
}

export interface StackbusSide {
  /** Pids of the agent processes. */
  readonly pids: number[];
  /** Runs `stack` on every host once and times it; `onStep` is told each step as its start is seen. */
  run(onStep?: (step: string) => void): Promise<StackTiming>;
  stop(): Promise<void>;
}

/**
 * The stackbus side for one N: writes the K hooks into every host's TOP_DIR, applies a
 * lab of N hosts (all wave 1), starts the agents in `processes` processes, and times
 * `stack` from the start request to the `run.finished` event. A process that holds one
 * host is the real `stackbus agent` command, started as a deployment starts it (with
 * `nodeFlags`); a process that holds several runs them with `startAgent`.
 */
export async function startStackbusSide(options: {
  bus: Bus;
  url: string;
  lab: string;
  root: string;
  hosts: number;
  processes: number;
  k: number;
  /** Node flags of an agent process, as deployed. */
  nodeFlags: readonly string[];
  /** The coordinator's public key: agents then accept only commands it signed. */
  coordinatorKey?: string | undefined;
}): Promise<StackbusSide> {
  const { bus, lab, root, hosts } = options;
  const files: Record<string, string> = {};
  const manifest = [`lab: ${lab}`, "hosts:"];
  for (let i = 0; i < hosts; i++) {
    const host = hostName(i);
    writeNoopHooks(join(root, host, "devstack"), options.k);
    mkdirSync(join(root, host, "stack"), { recursive: true });
    manifest.push(`  - name: ${host}`, "    wave: 1", "    localConf: host.conf");
  }
  files["host.conf"] = "[[local|localrc]]\n";
  await bus.request(subjects.configApply(lab), ConfigApplyRequestSchema, { file: "lab.yaml", text: `${manifest.join("\n")}\n`, files }, ConfigApplyReplySchema, { timeoutMs: 30_000 });

  const children: ChildProcess[] = [];
  const per = Math.ceil(hosts / options.processes);
  const started: Array<Promise<void>> = [];
  for (let first = 0; first < hosts; first += per) {
    const count = Math.min(per, hosts - first);
    if (count === 1) {
      const { child, ready } = startCliAgent(options.url, lab, root, first, options.nodeFlags, options.coordinatorKey ? ["--coordinator-key", options.coordinatorKey] : []);
      children.push(child);
      started.push(ready);
      continue;
    }
    const child = fork(AGENTS_HOST, [options.url, lab, root, String(first), String(count), ...(options.coordinatorKey ? [options.coordinatorKey] : [])], { stdio: "inherit", execArgv: [...options.nodeFlags] });
    children.push(child);
    started.push(
      new Promise<void>((resolve, reject) => {
        child.once("message", () => resolve());
        child.once("exit", (code) => reject(new Error(`an agents process exited with ${code} before it was ready`)));
      }),
    );
  }
  await Promise.all(started);

  const finished = new Map<string, (event: { status: string }) => void>();
  const observers = new Map<string, (step: string) => void>();
  const stepTimes = new Map<string, Array<{ step: string; at: number }>>();
  const events: Subscription = bus.nc.subscribe(`sb.${lab}.run.*.event`, {
    callback: (_err, msg) => {
      const at = performance.now();
      const event = JSON.parse(new TextDecoder().decode(msg.data)) as { type: string; runId: string; step?: string; status?: string };
      if (event.type === "step.started") observers.get(event.runId)?.(event.step ?? "");
      else if (event.type === "step.finished") {
        let list = stepTimes.get(event.runId);
        if (!list) stepTimes.set(event.runId, (list = []));
        list.push({ step: event.step ?? "", at });
      } else if (event.type === "run.finished") finished.get(event.runId)?.({ status: event.status ?? "" });
    },
  });
  await bus.flush();

  return {
    pids: children.map((c) => c.pid as number),
    async run(onStep) {
      const t0 = performance.now();
      const reply = await bus.request(subjects.runStart(lab), RunStartRequestSchema, { kind: "stack" }, RunStartReplySchema, { timeoutMs: 30_000 });
      if (onStep) observers.set(reply.runId, onStep);
      const end = new Promise<{ status: string }>((resolve) => finished.set(reply.runId, resolve));
      const timeout = setTimeout(() => finished.get(reply.runId)?.({ status: "benchmark timeout" }), 300_000);
      const outcome = await end;
      const totalMs = performance.now() - t0;
      clearTimeout(timeout);
      finished.delete(reply.runId);
      observers.delete(reply.runId);
      if (outcome.status !== "succeeded") throw new Error(`benchmark run ${reply.runId} on ${hosts} hosts ended ${outcome.status}`);
      const steps = (stepTimes.get(reply.runId) ?? []).map((s) => ({ step: s.step, finishedAtMs: s.at - t0 }));
      stepTimes.delete(reply.runId);
      return { runId: reply.runId, totalMs, steps };
    },
    async stop() {
      events.unsubscribe();
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              const timer = setTimeout(() => c.kill("SIGKILL"), 5_000);
              c.once("exit", () => {
                clearTimeout(timer);
                resolve();
              });
              if (c.connected) c.send("stop");
              else c.kill("SIGTERM");
            }),
        ),
      );
    },
  };
}

/**
 * `stackbus agent` for host `index` (or the host of that name), ready when it logs "agent ready". Its log lines of
 * level warn and above are passed on to this process's stderr.
 */
export function startCliAgent(url: string, lab: string, root: string, index: number | string, nodeFlags: readonly string[], extra: readonly string[] = []): { child: ChildProcess; ready: Promise<void> } {
  const host = typeof index === "string" ? index : hostName(index);
  const dir = join(root, host);
  const args = [...nodeFlags, CLI, "agent", "--host", host, "--lab", lab, "--nats", url, ...extra];
  args.push("--top-dir", join(dir, "devstack"), "--dest", join(dir, "stack"), "--state-dir", join(dir, "state"));
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, STACKBUS_LOG_LEVEL: "info" } });
  const ready = new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
    lines.on("line", (line) => {
      let entry: { level?: number; msg?: string } = {};
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        process.stderr.write(`${host}: ${line}\n`);
        return;
      }
      if (entry.msg === "agent ready") resolve();
      else if ((entry.level ?? 0) >= 40) process.stderr.write(`${host}: ${line}\n`);
    });
    child.once("exit", (code) => reject(new Error(`the agent of ${host} exited with ${code} before it was ready`)));
  });
  return { child, ready };
}

/** Stops a process the benchmark started: SIGTERM, then SIGKILL after 5 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await new Promise((resolve) => child.once("exit", resolve));
  clearTimeout(timer);
}
