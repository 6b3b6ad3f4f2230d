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

const spec: RunSpec = {
  lab: "lab",
  runId: "r1",
  kind: "unstack",
  hosts: [{ name: "controller", wave: 1, runner: "hooks" }, { name: "compute1", wave: 2, runner: "hooks" }],
  configRevision: 1,
  policy: { failurePolicy: "abort", maxFail: null, phaseTimeoutMs: 1000, ackTimeoutMs: 1000, heartbeatTimeoutMs: 1000, waveSteps: null },
  createdAt: 1000,
  finally: [],
};
const ev = (e: Record<string, unknown>, at: number) => ({ kind: "event" as const, event: { lab: "lab", runId: "r1", at, ...e } as RunEvent, seq: 0, pending: 0 });
const result = (host: string, step: StepResult["step"], status: StepResult["status"], hooks: StepResult["hooks"] = []): { kind: "result"; result: StepResult; seq: number; pending: number } => ({
  kind: "result",
  result: { lab: "lab", runId: "r1", host, attempt: 1, step, status, startedAt: 1000, finishedAt: 1500, durationMs: 500, hooks, failures: status === "ok" ? [] : [{ host, step, reason: "hook", hook: "extras.d/50-x.sh", exitCode: 2, signal: null, message: "extras.d/50-x.sh failed with exit status 2", outputTail: ["boom"] }], facts: {}, warnings: [] },
  seq: 0,
  pending: 0,
});

describe("watch - the run view", () => {
  it("shows running cells with elapsed time and finished cells with their duration", () => {
    const v = new RunView();
    v.apply(ev({ type: "run.created", spec }, 1000));
    v.apply(ev({ type: "run.attempt", attempt: 1, steps: ["prepare", "override_defaults", "source", "unstack"], reason: "start", from: "prepare", carried: {} }, 1000));
    v.apply(ev({ type: "step.started", attempt: 1, step: "prepare", wave: 1, hosts: ["controller"] }, 1000));
    v.apply(result("controller", "prepare", "ok"));
    v.apply(ev({ type: "step.started", attempt: 1, step: "prepare", wave: 2, hosts: ["compute1"] }, 1600));
    v.applyProgress({ runId: "r1", host: "compute1", attempt: 1, step: "prepare", hook: "fetch demo-plugin", at: 1600, done: 1024, total: 4096 });
    assert.equal(cellText(v.cell("controller", "prepare"), 5000), "✓ 500ms");
    assert.equal(cellText(v.cell("compute1", "prepare"), 3600), "▶ 2.0s");
    const screen = renderMatrix(v, 3600);
    assert.match(screen, /controller/);
    assert.match(screen, /fetch demo-plugin 1KiB\/4KiB/);
    assert.match(screen, /prepare: 1\/2 hosts done/);
  });

  it("names the failed host, step and hook with its output tail", () => {
    const v = new RunView();
    v.apply(ev({ type: "run.created", spec }, 1000));
    v.apply(ev({ type: "run.attempt", attempt: 1, steps: ["prepare", "override_defaults", "source", "unstack"], reason: "start", from: "prepare", carried: {} }, 1000));
    v.apply(result("compute1", "unstack", "failed"));
    const fin = result("compute1", "unstack", "failed").result.failures;
    v.apply(ev({ type: "run.finished", attempt: 1, status: "failed", failures: fin, durationMs: 900 }, 1900));
    const screen = renderMatrix(v, 2000);
    assert.match(screen, /compute1 \/ unstack \/ extras\.d\/50-x\.sh \/ exit 2/);
    assert.match(screen, /\| boom/);
    assert.equal(v.status, "failed");
  });

  it("summarises the slowest host and hook per step, and each hook's time per host", () => {
    const v = new RunView();
    v.apply(ev({ type: "run.created", spec }, 1000));
    v.apply(ev({ type: "run.attempt", attempt: 1, steps: ["prepare", "override_defaults", "source", "unstack"], reason: "start", from: "prepare", carried: {} }, 1000));
    const hook = (name: string, ms: number) => ({ hook: name, command: `source ${name}`, status: "ok" as const, durationMs: ms, exitCode: 0, signal: null });
    v.apply({ ...result("controller", "unstack", "ok", [hook("extras.d/10-a.sh", 100), hook("extras.d/20-b.sh", 300)]), result: { ...result("controller", "unstack", "ok").result, durationMs: 400, hooks: [hook("extras.d/10-a.sh", 100), hook("extras.d/20-b.sh", 300)] } });
    v.apply({ ...result("compute1", "unstack", "ok"), result: { ...result("compute1", "unstack", "ok").result, durationMs: 900, hooks: [hook("extras.d/10-a.sh", 800), hook("extras.d/20-b.sh", 50)] } });
    assert.deepEqual(v.slowest().find((s) => s.step === "unstack"), { step: "unstack", host: "compute1", durationMs: 900, hook: "extras.d/10-a.sh", hookMs: 800 });
    const a = v.hookTimes().find((r) => r.hook === "extras.d/10-a.sh");
    assert.deepEqual(a?.byHost, { controller: 100, compute1: 800 });
    assert.match(renderSummary(v), /extras\.d\/20-b\.sh/);
  });
});
