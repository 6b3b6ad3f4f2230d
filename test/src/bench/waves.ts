import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { ConfigApplyReplySchema, ConfigApplyRequestSchema, RunEventSchema, RunStartReplySchema, RunStartRequestSchema, subjects, type RunStartRequest } from "@stackbus/protocol";
import type { Bus } from "@stackbus/bus";
import { median } from "./hooks.js";
import { startCliAgent, stopChild as stop } from "./stackbus.js";

/**
 * Seconds each stack step's hooks sleep, in the proportions of a DevStack run (install the
 * longest, then post-config, pre-install, extra; a compute does about 40 % of a
 * controller's work).
 */
export const WAVE_SLEEPS: Record<"controller" | "compute", Record<string, number>> = {
  controller: { "pre-install": 0.3, install: 1.0, "post-config": 0.5, extra: 0.15, "test-config": 0.05 },
  compute: { "pre-install": 0.2, install: 0.4, "post-config": 0.15, extra: 0.05, "test-config": 0 },
};

/** One way of ordering the 3-host lab, and what it took. */
export interface WaveCase {
  name: string;
  /** Wall time from the first start request to the last run's end, per repetition. */
  ms: number[];
  medianMs: number;
}

export interface WavesRow {
  repetitions: number;
  /** The hooks' sleeps: the controller's and a compute's total, in seconds. */
  controllerS: number;
  computeS: number;
  cases: WaveCase[];
}

const HOSTS = [
  { name: "controller", wave: 1, role: "controller" as const },
  { name: "compute1", wave: 2, role: "compute" as const },
  { name: "compute2", wave: 2, role: "compute" as const },
];

/**
 * A controller and two computes (wave 1 and wave 2) whose hooks sleep in DevStack's
 * proportions, stacked four ways: wave order in every step; wave order only at `extra`
 * (`waveSteps: [extra]`); the controller whole, then the computes (orchestrate-devstack's
 * order, as two stackbus runs); and no wave order at all (every host in every step at
 * once: what lockstep alone costs).
 */
export async function measureWaves(options: { bus: Bus; url: string; root: string; reps: number; nodeFlags: readonly string[]; say: (line: string) => void }): Promise<WavesRow> {
  const { bus } = options;
  const lab = "benchwaves";
  const manifest = [`lab: ${lab}`, "hosts:", ...HOSTS.flatMap((h) => [`  - name: ${h.name}`, `    wave: ${h.wave}`, "    localConf: host.conf"]), ""].join("\n");
  for (const h of HOSTS) {
    const dir = join(options.root, h.name);
    mkdirSync(join(dir, "devstack", "extras.d"), { recursive: true });
    mkdirSync(join(dir, "stack"), { recursive: true });
    const cases = Object.entries(WAVE_SLEEPS[h.role])
      .filter(([, s]) => s > 0)
      .map(([step, s]) => `    "stack ${step}") sleep ${s} ;;`);
    writeFileSync(join(dir, "devstack", "extras.d", "50-work.sh"), `# sleeps as much as DevStack's ${h.role} works in each phase\ncase "$1 $2" in\n${cases.join("\n")}\nesac\n`);
  }
  await bus.request(subjects.configApply(lab), ConfigApplyRequestSchema, { file: "lab.yaml", text: manifest, files: { "host.conf": "[[local|localrc]]\n" } }, ConfigApplyReplySchema, { timeoutMs: 30_000 });
  const agents: ChildProcess[] = [];
  try {
    const started = HOSTS.map((h) => startCliAgent(options.url, lab, options.root, h.name, options.nodeFlags));
    agents.push(...started.map((s) => s.child));
    await Promise.all(started.map((s) => s.ready));
    const finished = new Map<string, (status: string) => void>();
    const sub = bus.subscribe(subjects.runEventsAll(lab), RunEventSchema, (e) => {
      if (e.type === "run.finished") finished.get(e.runId)?.(e.status);
    });
    const stack = async (req: Omit<RunStartRequest, "kind">): Promise<void> => {
      const reply = await bus.request(subjects.runStart(lab), RunStartRequestSchema, { kind: "stack", ...req }, RunStartReplySchema, { timeoutMs: 30_000 });
      const status = await new Promise<string>((resolve) => finished.set(reply.runId, resolve));
      finished.delete(reply.runId);
      if (status !== "succeeded") throw new Error(`waves benchmark run ${reply.runId} ended ${status}`);
    };
    const ways: Array<{ name: string; run: () => Promise<void> }> = [
      { name: "wave order in every step", run: () => stack({ waveSteps: null }) },
      { name: "wave order only at extra (waveSteps: [extra])", run: () => stack({ waveSteps: ["extra"] }) },
      {
        name: "the controller whole, then the computes (two runs)",
        run: async () => {
          await stack({ hosts: ["controller"] });
          await stack({ hosts: ["compute1", "compute2"] });
        },
      },
      { name: "no wave order (every host in every step at once)", run: () => stack({ waveSteps: [] }) },
    ];
    const cases: WaveCase[] = ways.map((w) => ({ name: w.name, ms: [], medianMs: Number.NaN }));
    for (const w of ways) await w.run();
    for (let i = 0; i < options.reps; i++) {
      for (const [j, w] of ways.entries()) {
        await new Promise((r) => setTimeout(r, 1_000));
        const t0 = performance.now();
        await w.run();
        cases[j]?.ms.push(performance.now() - t0);
      }
    }
    sub.unsubscribe();
    for (const c of cases) c.medianMs = median(c.ms);
    const total = (role: "controller" | "compute") => Object.values(WAVE_SLEEPS[role]).reduce((a, b) => a + b, 0);
    const row: WavesRow = { repetitions: options.reps, controllerS: total("controller"), computeS: total("compute"), cases };
    options.say(
      `waves per step, 3 hosts (hooks sleep ${row.controllerS.toFixed(2)} s on the controller, ${row.computeS.toFixed(2)} s on a compute): ` +
        cases.map((c) => `${c.name} ${(c.medianMs / 1000).toFixed(2)} s`).join("; "),
    );
    return row;
  } finally {
    await Promise.all(agents.map((c) => stop(c)));
  }
}
