import { execFile } from "node:child_process";
import { chmodSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import {
  ConfigApplyReplySchema,
  ConfigApplyRequestSchema,
  RunEventSchema,
  RunStartReplySchema,
  RunStartRequestSchema,
  subjects,
} from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";
import { devstackEnvironment, devstackHost, DevstackUnavailable, offlineLocalrc } from "@stackbus/testkit";
import { hostName, median } from "./hooks.js";
import { startCliAgent, stopChild as stop } from "./stackbus.js";

const run = promisify(execFile);

/** DevStack mode on one host against plain `./stack.sh` on the same checkout and local.conf. */
export interface DevstackModeRow {
  repetitions: number;
  plainMs: number[];
  stackbusMs: number[];
  medianPlainMs: number;
  medianStackbusMs: number;
  /** stackbus / plain. */
  ratio: number;
}

/**
 * One host, a real DevStack checkout: a `stack` run in DevStack mode (from the start
 * request to run.finished) against `sudo -u USER ./stack.sh` run by hand on the same
 * checkout with the local.conf stackbus wrote (its stackbus line does nothing then),
 * alternated, after one warm-up of each. Undefined (with the reason printed) where the
 * real DevStack cannot run.
 */
export async function benchDevstackMode(options: { bus: Bus; url: string; root: string; reps: number; nodeFlags: readonly string[]; say: (line: string) => void }): Promise<DevstackModeRow | undefined> {
  let env;
  try {
    env = devstackEnvironment();
  } catch (err) {
    if (err instanceof DevstackUnavailable) {
      options.say(`DevStack mode: skipped (${err.message})`);
      return undefined;
    }
    throw err;
  }
  const { bus } = options;
  const lab = "benchdevstack";
  const host = hostName(0);
  const hostDir = join(options.root, host);
  const topDir = join(hostDir, "devstack");
  const dest = join(hostDir, "stack");
  // DevStack's user must reach its checkout through the benchmark's (private) work dir.
  chmodSync(dirname(options.root), 0o755);
  await run("install", ["-d", "-m", "0755", options.root, hostDir]);
  devstackHost(env, { topDir, dest, cacheDir: join(options.root, "mirrors") });
  const manifest = [`lab: ${lab}`, "defaults:", "  runner: devstack", `  devstackUser: ${env.user}`, "hosts:", `  - name: ${host}`, "    localConf: host.conf", ""].join("\n");
  await bus.request(subjects.configApply(lab), ConfigApplyRequestSchema, { file: "lab.yaml", text: manifest, files: { "host.conf": offlineLocalrc(dest) } }, ConfigApplyReplySchema, { timeoutMs: 30_000 });
  const { child, ready } = startCliAgent(options.url, lab, options.root, 0, options.nodeFlags);
  try {
    await ready;
    const finished = new Map<string, (end: { status: string; why: string }) => void>();
    const sub = bus.subscribe(subjects.runEventsAll(lab), RunEventSchema, (e) => {
      if (e.type === "run.finished") finished.get(e.runId)?.({ status: e.status, why: e.failures.map((f) => `${f.host} ${f.step}: ${f.message}`).join("; ") });
    });
    const stackbusOnce = async (): Promise<number> => {
      const t0 = performance.now();
      const reply = await bus.request(subjects.runStart(lab), RunStartRequestSchema, { kind: "stack" }, RunStartReplySchema, { timeoutMs: 30_000 });
      const end = await new Promise<{ status: string; why: string }>((resolve) => finished.set(reply.runId, resolve));
      if (end.status !== "succeeded") throw new Error(`DevStack-mode benchmark run ${reply.runId} ended ${end.status}: ${end.why}`);
      return performance.now() - t0;
    };
    const plainOnce = async (): Promise<number> => {
      const t0 = performance.now();
      await run("sudo", ["-n", "-u", env.user, "-H", "./stack.sh"], { cwd: topDir, maxBuffer: 256 * 2 ** 20 });
      return performance.now() - t0;
    };
    await stackbusOnce();
    await plainOnce();
    const plainMs: number[] = [];
    const stackbusMs: number[] = [];
    for (let i = 0; i < options.reps; i++) {
      stackbusMs.push(await stackbusOnce());
      plainMs.push(await plainOnce());
    }
    sub.unsubscribe();
    const row = { repetitions: options.reps, plainMs, stackbusMs, medianPlainMs: median(plainMs), medianStackbusMs: median(stackbusMs), ratio: median(stackbusMs) / median(plainMs) };
    options.say(
      `DevStack mode, one host: stackbus ${(row.medianStackbusMs / 1000).toFixed(2)} s, plain ./stack.sh ${(row.medianPlainMs / 1000).toFixed(2)} s, x${row.ratio.toFixed(3)}  ` +
        `[stackbus ${stackbusMs.map((v) => (v / 1000).toFixed(2)).join(", ")}] [plain ${plainMs.map((v) => (v / 1000).toFixed(2)).join(", ")}]`,
    );
    return row;
  } finally {
    await stop(child);
  }
}
