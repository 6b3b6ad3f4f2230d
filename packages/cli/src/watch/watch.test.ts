import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { stripVTControlCharacters } from "node:util";
import type { RunEvent, RunSpec, StepResult } from "@stackbus/protocol";
import { RunView } from "./model.js";
import * as render from "./render.js";

// The renderer colours its output when the terminal (or CI=1) asks for it; the
// assertions are about the text people read.
const plain = (s: string) => stripVTControlCharacters(s);
const cellText = (...a: Parameters<typeof render.cellText>) => plain(render.cellText(...a));
const renderMatrix = (...a: Parameters<typeof render.renderMatrix>) => plain(render.renderMatrix(...a));
const renderSummary = (...a: Parameters<typeof render.renderSummary>) => plain(render.renderSummary(...a));

const STACK = ["prepare", "override_defaults", "source", "pre-install", "install", "post-config", "extra", "test-config"] as const;

function makeSpec(kind: RunSpec["kind"], hosts: Array<[string, number]>): RunSpec {
  return {
    lab: "lab",
    runId: "r1",
    kind,
    hosts: hosts.map(([name, wave]) => ({ name, wave, runner: "hooks" as const })),
    configRevision: 1,
    policy: { failurePolicy: "abort", maxFail: null, phaseTimeoutMs: 1000, ackTimeoutMs: 1000, heartbeatTimeoutMs: 1000, waveSteps: null },
    createdAt: 1000,
    finally: [],
  };
}
const spec = makeSpec("unstack", [["controller", 1], ["compute1", 2]]);
const ev = (e: Record<string, unknown>, at: number) => ({ kind: "event" as const, event: { lab: "lab", runId: "r1", at, ...e } as RunEvent, seq: 0, pending: 0 });
const hook = (name: string, ms: number) => ({ hook: name, command: `source ${name}`, status: "ok" as const, durationMs: ms, exitCode: 0, signal: null });
function result(host: string, step: StepResult["step"], status: StepResult["status"], extra: Partial<StepResult> = {}): { kind: "result"; result: StepResult; seq: number; pending: number } {
  const failures = status === "ok" ? [] : [{ host, step, reason: "hook" as const, hook: "extras.d/50-x.sh", exitCode: 2, signal: null, message: "extras.d/50-x.sh failed with exit status 2", outputTail: ["boom"], command: "false", location: "extras.d/50-x.sh:source:4" }];
  return { kind: "result", result: { lab: "lab", runId: "r1", host, attempt: 1, step, status, startedAt: 1000, finishedAt: 1500, durationMs: 500, hooks: [], failures, facts: {}, warnings: [], ...extra }, seq: 0, pending: 0 };
}
const acked = (host: string, step: string, at: number, attempt = 1) => ev({ type: "host.acked", attempt, step, host }, at);
const started = (step: string, wave: number, hosts: string[], at: number, attempt = 1) => ev({ type: "step.started", attempt, step, wave, hosts }, at);

/** A stack run of ctl (wave 1) and cmp1, cmp2 (wave 2) that stopped at install on cmp1. */
function failedStack(): RunView {
  const v = new RunView();
  v.apply(ev({ type: "run.created", spec: makeSpec("stack", [["ctl", 1], ["cmp1", 2], ["cmp2", 2]]) }, 1000));
  v.apply(ev({ type: "run.attempt", attempt: 1, steps: [...STACK], reason: "start", from: "prepare", carried: {} }, 1000));
  for (const step of STACK.slice(0, 5)) {
    for (const [wave, hosts] of [[1, ["ctl"]], [2, ["cmp1", "cmp2"]]] as const) {
      for (const h of hosts) v.apply(result(h, step, step === "install" && h === "cmp1" ? "failed" : "ok", { durationMs: 10_000 }));
      void wave;
    }
    v.apply(ev({ type: "step.finished", attempt: 1, step, status: step === "install" ? "failed" : "ok", failedHosts: step === "install" ? ["cmp1"] : [], durationMs: 20_000 }, 2000));
  }
  v.apply(ev({ type: "run.finished", attempt: 1, status: "failed", failures: v.cell("cmp1", "install").failures, durationMs: 100_000 }, 101_000));
  return v;
}

describe("watch - the run view, from the engine's projection", () => {
  it("shows running cells with elapsed time, the running hook with its own time, and finished cells with their duration", () => {
    const v = new RunView();
    v.apply(ev({ type: "run.created", spec }, 1000));
    v.apply(ev({ type: "run.attempt", attempt: 1, steps: ["prepare", "override_defaults", "source", "unstack"], reason: "start", from: "prepare", carried: {} }, 1000));
    v.apply(started("prepare", 1, ["controller"], 1000));
    v.apply(result("controller", "prepare", "ok"));
    v.apply(started("prepare", 2, ["compute1"], 1600));
    v.apply(acked("compute1", "prepare", 1610));
    v.applyProgress({ runId: "r1", host: "compute1", attempt: 1, step: "prepare", hook: "fetch demo-plugin", at: 2600, done: 1024, total: 4096 });
    v.applyLog({ lab: "lab", runId: "r1", host: "compute1", attempt: 1, step: "prepare", seq: 0, lines: [{ at: 2700, hook: "(session)", stream: "agent", text: "resolving plugin demo-plugin" }] });
    assert.equal(cellText(v.cell("controller", "prepare"), 5000), "✓ 0.5s");
    assert.equal(cellText(v.cell("compute1", "prepare"), 3610), "▶ 2.0s");
    const screen = renderMatrix(v, 3610);
    assert.match(screen, /prepare wave 2: 1\/2 hosts done/);
    assert.match(screen, /compute1 fetch demo-plugin 1\.0s 1KiB\/4KiB {2}\| resolving plugin demo-plugin/);
  });

  it("a host of a later wave of the running step waits for that wave, distinct from a step not reached yet", () => {
    const v = new RunView();
    v.apply(ev({ type: "run.created", spec }, 1000));
    v.apply(ev({ type: "run.attempt", attempt: 1, steps: ["prepare", "override_defaults", "source", "unstack"], reason: "start", from: "prepare", carried: {} }, 1000));
    v.apply(started("prepare", 1, ["controller"], 1000));
    assert.equal(v.cell("compute1", "prepare").status, "waiting");
    assert.equal(cellText(v.cell("compute1", "prepare"), 2000), "… w1");
    assert.equal(v.cell("compute1", "source").status, "pending");
    const screen = renderMatrix(v, 2000);
    assert.match(screen, /compute1: waiting for wave 1 to finish prepare/);
    assert.match(screen, /… waits for an earlier wave/, "the legend says what … means");
    assert.match(screen, /· to come/);
  });

  it("names the failed host, step, hook, failing command and place with its output tail, and the command that resumes the run", () => {
    const v = failedStack();
    const screen = renderMatrix(v, 200_000);
    assert.match(screen, /cmp1 \/ install \/ extras\.d\/50-x\.sh \/ exit 2/);
    assert.match(screen, /failing command: false {2}at extras\.d\/50-x\.sh:source:4/);
    assert.match(screen, /\| boom/);
    assert.match(screen, /resume with: stackbus stack --resume r1 --lab lab --wait/);
    assert.equal(v.cell("cmp2", "post-config").status, "skipped");
    assert.equal(v.status, "failed");
  });

  it("after a resume, cells done in an earlier attempt are marked carried, and the failed one runs again", () => {
    const v = failedStack();
    v.apply(ev({ type: "run.attempt", attempt: 2, steps: ["prepare", "override_defaults", "source", "install", "post-config", "extra", "test-config"], reason: "resume", from: "install", carried: { install: ["ctl", "cmp2"] } }, 300_000));
    v.apply(started("prepare", 1, ["ctl"], 300_000, 2));
    assert.equal(v.cell("ctl", "pre-install").status, "carried", "a step before `from`");
    assert.equal(v.cell("ctl", "install").status, "carried", "carried in install");
    assert.equal(v.cell("cmp1", "install").status, "pending");
    assert.equal(cellText(v.cell("ctl", "install"), 0), "↺ 10s");
    assert.match(renderMatrix(v, 300_500), /↺ carried from an earlier attempt/);
    assert.doesNotMatch(renderMatrix(v, 300_500), /resume with/, "the run is running again");
  });

  it("fits 80 columns: every line at most 80, step names shortened with their key, or one symbol per step when even that does not fit", () => {
    const v = failedStack();
    const screen = renderMatrix(v, 200_000, { width: 80 });
    for (const line of screen.split("\n")) assert.ok([...line].length <= 80, `${[...line].length}: ${line}`);
    assert.match(screen, /^host +w prepare +ovr-def +source +pre-ins +install +post-cf +extra +test-cf$/m);
    assert.match(screen, /ovr-def = override_defaults {2}pre-ins = pre-install {2}post-cf = post-config\s+test-cf = test-config/);
    assert.match(screen, /^cmp1 +2 ✓ 10s +✓ 10s +✓ 10s +✓ 10s +✗ 10s +- +- +-$/m);
    const narrow = renderMatrix(v, 200_000, { width: 40 });
    for (const line of narrow.split("\n")) assert.ok([...line].length <= 40, `${[...line].length}: ${line}`);
    assert.match(narrow, /^cmp1 +2 ✓✓✓✓✗--- install ✗ 10s$/m);
    const wide = renderMatrix(v, 200_000, { width: 200 });
    assert.match(wide, /^host +w prepare +override_defaults +source/m, "full names when they fit");
  });

  it("summarises in compact tables: wall time per step and in total, the slowest host and hook; hook wall time is per wave, not host times added", () => {
    const v = new RunView();
    v.apply(ev({ type: "run.created", spec: makeSpec("unstack", [["controller", 1], ["compute1", 2], ["compute2", 2]]) }, 1000));
    v.apply(ev({ type: "run.attempt", attempt: 1, steps: ["prepare", "override_defaults", "source", "unstack"], reason: "start", from: "prepare", carried: {} }, 1000));
    v.apply(result("controller", "unstack", "ok", { durationMs: 400, hooks: [hook("extras.d/10-a.sh", 100), hook("extras.d/20-b.sh", 300)] }));
    v.apply(result("compute1", "unstack", "ok", { durationMs: 900, hooks: [hook("extras.d/10-a.sh", 800), hook("extras.d/20-b.sh", 50)] }));
    v.apply(result("compute2", "unstack", "ok", { durationMs: 700, hooks: [hook("extras.d/10-a.sh", 600), hook("extras.d/20-b.sh", 50)] }));
    v.apply(ev({ type: "step.finished", attempt: 1, step: "unstack", status: "ok", failedHosts: [], durationMs: 1400 }, 2500));
    v.apply(ev({ type: "run.finished", attempt: 1, status: "succeeded", failures: [], durationMs: 5000 }, 6000));
    assert.deepEqual(v.slowest().find((s) => s.step === "unstack"), { step: "unstack", wallMs: 1400, host: "compute1", durationMs: 900, hook: "extras.d/10-a.sh", hookMs: 800 });
    const a = v.hookTimes().find((r) => r.hook === "extras.d/10-a.sh");
    assert.deepEqual(a?.byHost, { controller: 100, compute1: 800, compute2: 600 });
    assert.equal(a?.wallMs, 100 + 800, "wave 1's slowest, then wave 2's");
    const summary = renderSummary(v, 80);
    assert.match(summary, /^unstack +1\.4s +compute1 +900ms +extras\.d\/10-a\.sh +800ms$/m);
    assert.match(summary, /^total +5\.0s$/m);
    assert.match(summary, /^unstack +extras\.d\/10-a\.sh +100ms +800ms +600ms +900ms$/m);
    assert.doesNotMatch(summary, /[─┼│├┤]/, "no rules between rows");
    for (const line of summary.split("\n")) assert.ok([...line].length <= 80, line);
  });
});
