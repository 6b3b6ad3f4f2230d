import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeRunRecord, encodeRunRecord, MAX_LAB_HOSTS, type RunEvent, type RunSpec, type StepId, type StepResult, type StepStatus } from "@stackbus/protocol";
import { planAttempt, RunMachine, type Decision, type EventDraft } from "./machine.js";

function spec(
  hosts: Array<[string, number] | [string, number, "hooks" | "devstack"]>,
  policy: Partial<RunSpec["policy"]> = {},
  kind: RunSpec["kind"] = "stack",
  finallyCommands: RunSpec["finally"] = [],
): RunSpec {
  return {
    lab: "lab",
    runId: "r1",
    kind,
    hosts: hosts.map(([name, wave, runner]) => ({ name, wave, runner: runner ?? "hooks" })),
    configRevision: 1,
    policy: { failurePolicy: "abort", maxFail: null, phaseTimeoutMs: 60_000, ackTimeoutMs: 5_000, heartbeatTimeoutMs: 3_000, waveSteps: null, ...policy },
    createdAt: 0,
    finally: finallyCommands,
  };
}

/** A tiny world: the machine, a log of published events, and agents that answer as told. */
class World {
  now = 0;
  events: RunEvent[] = [];
  sent: Array<{ host: string; step: StepId; at: number }> = [];
  outcome: (host: string, step: StepId) => StepStatus | "silent" | "no-ack" = () => "ok";
  constructor(readonly m: RunMachine) {
    const plan = planAttempt(undefined, m.spec);
    this.publish({ type: "run.attempt", attempt: 1, steps: plan.steps, reason: "start", from: plan.from, carried: {} });
  }
  publish(draft: EventDraft): void {
    const event = { ...draft, lab: "lab", runId: "r1", at: this.now } as RunEvent;
    this.events.push(event);
    this.m.applyEvent(event);
  }
  result(host: string, step: StepId, status: StepStatus): StepResult {
    return {
      lab: "lab", runId: "r1", host, attempt: this.m.attempt, step, status, startedAt: this.now, finishedAt: this.now, durationMs: 0, hooks: [],
      failures: status === "ok" ? [] : [{ host, step, reason: "hook", hook: "extras.d/50-x.sh", exitCode: 3, signal: null, message: "failed", outputTail: ["boom"] }],
      facts: {}, warnings: [],
    };
  }
  /** Runs decisions until the machine waits for time to pass. */
  settle(): Decision[] {
    const all: Decision[] = [];
    for (let i = 0; i < 1000; i++) {
      const ds = this.m.decide(this.now).filter((d) => d.kind !== "wake");
      if (ds.length === 0) return all;
      all.push(...ds);
      for (const d of ds) {
        if (d.kind === "event") this.publish(d.event);
        else if (d.kind === "send") {
          this.sent.push({ host: d.host, step: d.command.step, at: this.now });
          this.m.noteSent(d.host, this.now);
          const what = this.outcome(d.host, d.command.step);
          if (what === "no-ack") continue;
          this.m.noteAck(d.host, { host: d.host, instance: "i", state: "started" }, this.now);
          if (what !== "silent") this.m.applyResult(this.result(d.host, d.command.step, what));
        }
      }
    }
    throw new Error("did not settle");
  }
  finished(): RunEvent | undefined {
    return this.events.find((e) => e.type === "run.finished");
  }
}

const STACK: StepId[] = ["prepare", "override_defaults", "source", "pre-install", "install", "post-config", "extra", "test-config"];

describe("engine - lockstep barrier", () => {
  it("sends no host step k+1 before every host finished step k", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0], ["c", 0]])));
    w.settle();
    const order = w.sent.map((s) => STACK.indexOf(s.step));
    for (let i = 1; i < order.length; i++) assert.ok((order[i] as number) >= (order[i - 1] as number));
    assert.equal(w.sent.length, 3 * STACK.length);
    const fin = w.finished();
    assert.ok(fin?.type === "run.finished" && fin.status === "succeeded");
  });

  it("within each step, runs wave 1 before wave 2", () => {
    const w = new World(new RunMachine(spec([["compute1", 2], ["controller", 1], ["compute2", 2]])));
    w.settle();
    for (const step of STACK) {
      const hosts = w.sent.filter((s) => s.step === step).map((s) => s.host);
      assert.equal(hosts[0], "controller", step);
      assert.deepEqual(hosts.slice(1).sort(), ["compute1", "compute2"]);
    }
    const started = w.events.filter((e) => e.type === "step.started").map((e) => e.type === "step.started" && `${e.step}:${e.wave}`);
    assert.deepEqual(started.slice(0, 4), ["prepare:1", "prepare:2", "override_defaults:1", "override_defaults:2"]);
  });

  it("with waveSteps, a step outside them starts on every host at once; a step in them keeps wave order", () => {
    const w = new World(new RunMachine(spec([["controller", 1], ["compute1", 2], ["compute2", 2]], { waveSteps: ["extra"] })));
    w.outcome = (host, step) => (host === "controller" && (step === "install" || step === "extra") ? "silent" : "ok");
    w.settle();
    assert.deepEqual(w.sent.filter((s) => s.step === "install").map((s) => s.host).sort(), ["compute1", "compute2", "controller"], "computes install while the controller installs");
    w.m.applyResult(w.result("controller", "install", "ok"));
    w.settle();
    assert.deepEqual(w.sent.filter((s) => s.step === "extra").map((s) => s.host), ["controller"], "extra waits for wave 1");
    w.m.applyResult(w.result("controller", "extra", "ok"));
    w.settle();
    assert.deepEqual(w.sent.filter((s) => s.step === "extra").map((s) => s.host).sort(), ["compute1", "compute2", "controller"]);
    const started = w.events.filter((e) => e.type === "step.started").map((e) => e.type === "step.started" && `${e.step}:${e.wave}`);
    assert.ok(started.includes("install:1") && !started.includes("install:2"));
    assert.ok(started.includes("extra:1") && started.includes("extra:2"));
    assert.equal(w.finished()?.type === "run.finished" && w.finished()?.type, "run.finished");
  });

  it("finally runs after the last step, on the hosts its commands name only", () => {
    const w = new World(new RunMachine(spec([["controller", 1], ["compute1", 2]], {}, "stack", [{ hosts: ["controller"], command: "./tools/discover_hosts.sh" }])));
    w.settle();
    const last = w.sent.map((s) => s.step);
    assert.deepEqual(w.sent.filter((s) => s.step === "finally").map((s) => s.host), ["controller"]);
    assert.equal(last.indexOf("finally"), last.length - 1, "finally comes after every host's test-config");
    assert.equal(w.sent.filter((s) => s.step === "test-config").length, 2);
    assert.equal(w.m.cells.get("compute1")?.has("finally"), false, "a host that runs no finally command has no cell for it");
    const fin = w.finished();
    assert.ok(fin?.type === "run.finished" && fin.status === "succeeded");
  });

  it("keeps waiting while one host has not answered", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]])));
    w.outcome = (host, step) => (host === "b" && step === "source" ? "silent" : "ok");
    w.settle();
    assert.deepEqual(w.sent.filter((s) => s.step === "pre-install"), []);
    assert.equal(w.finished(), undefined);
    w.m.applyResult(w.result("b", "source", "ok"));
    w.settle();
    assert.ok(w.finished());
  });
});

describe("engine - failure policy", () => {
  it("abort lets the failing step finish on the other hosts, then stops with host, hook and exit code", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0], ["c", 0]])));
    w.outcome = (host, step) => (host === "b" && step === "install" ? "failed" : "ok");
    w.settle();
    assert.equal(w.sent.filter((s) => s.step === "install").length, 3);
    assert.deepEqual(w.sent.filter((s) => s.step === "post-config"), []);
    const fin = w.finished();
    assert.ok(fin?.type === "run.finished");
    assert.equal(fin.status, "failed");
    assert.deepEqual(fin.failures.map((f) => [f.host, f.step, f.hook, f.exitCode]), [["b", "install", "extras.d/50-x.sh", 3]]);
  });

  it("abort does not start a later wave after an earlier wave failed the step", () => {
    const w = new World(new RunMachine(spec([["controller", 1], ["compute", 2]])));
    w.outcome = (host, step) => (host === "controller" && step === "install" ? "failed" : "ok");
    w.settle();
    assert.deepEqual(w.sent.filter((s) => s.step === "install").map((s) => s.host), ["controller"]);
    assert.equal(w.finished()?.type, "run.finished");
  });

  it("continue runs to the end without the failed host and reports every failure", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0], ["c", 0]], { failurePolicy: "continue" })));
    w.outcome = (host, step) => ((host === "b" && step === "install") || (host === "c" && step === "extra") ? "failed" : "ok");
    w.settle();
    assert.deepEqual(w.sent.filter((s) => s.step === "test-config").map((s) => s.host), ["a"]);
    const fin = w.finished();
    assert.ok(fin?.type === "run.finished");
    assert.equal(fin.status, "failed");
    assert.deepEqual(fin.failures.map((f) => `${f.host}@${f.step}`).sort(), ["b@install", "c@extra"]);
  });

  it("max-fail as a count aborts only when exceeded", () => {
    const hosts: Array<[string, number]> = [["a", 0], ["b", 0], ["c", 0], ["d", 0]];
    const once = new World(new RunMachine(spec(hosts, { maxFail: { count: 1 } })));
    once.outcome = (host, step) => (host === "a" && step === "install" ? "failed" : "ok");
    once.settle();
    assert.equal(once.sent.filter((s) => s.step === "test-config").length, 3, "one failure is within max-fail 1");
    const twice = new World(new RunMachine(spec(hosts, { maxFail: { count: 1 } })));
    twice.outcome = (host, step) => ((host === "a" || host === "b") && step === "install" ? "failed" : "ok");
    twice.settle();
    assert.deepEqual(twice.sent.filter((s) => s.step === "post-config"), [], "two failures exceed max-fail 1");
  });

  it("max-fail as a percentage of the run's hosts", () => {
    const hosts: Array<[string, number]> = [["a", 0], ["b", 0], ["c", 0], ["d", 0]];
    const w = new World(new RunMachine(spec(hosts, { maxFail: { percent: 50 } })));
    w.outcome = (host, step) => ((host === "a" && step === "install") || (host === "b" && step === "extra") ? "failed" : "ok");
    w.settle();
    assert.equal(w.sent.filter((s) => s.step === "test-config").length, 2, "2 of 4 is within 50%");
    const w2 = new World(new RunMachine(spec(hosts, { maxFail: { percent: 25 } })));
    w2.outcome = (host, step) => ((host === "a" || host === "b") && step === "install" ? "failed" : "ok");
    w2.settle();
    assert.deepEqual(w2.sent.filter((s) => s.step === "post-config"), []);
  });

  it("unstack and clean go on past failures and the run still reports them", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]], {}, "clean")));
    w.outcome = (host, step) => (host === "a" && step === "unstack" ? "failed" : "ok");
    w.settle();
    assert.deepEqual(w.sent.filter((s) => s.step === "clean").map((s) => s.host).sort(), ["a", "b"]);
    const fin = w.finished();
    assert.ok(fin?.type === "run.finished" && fin.status === "failed");
  });
});

describe("engine - hosts that do not answer", () => {
  it("a host that never acknowledges fails as lost after the ack timeout, never as success", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]])));
    w.outcome = (host) => (host === "b" ? "no-ack" : "ok");
    w.settle();
    assert.equal(w.finished(), undefined);
    w.now = 5_000;
    w.settle();
    const lost = w.events.find((e) => e.type === "host.finished" && e.host === "b");
    assert.ok(lost?.type === "host.finished");
    assert.equal(lost.status, "lost");
    assert.match(lost.failures[0]?.message ?? "", /did not acknowledge prepare within 5s/);
    const fin = w.finished();
    assert.ok(fin?.type === "run.finished" && fin.status === "failed");
  });

  it("sends an unacknowledged command again after 4 s, then at doubling gaps up to 8 s; after 1 s while nobody listens for it", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]], { ackTimeoutMs: 60_000, heartbeatTimeoutMs: 60_000 })));
    w.outcome = (host) => (host === "b" ? "no-ack" : "ok");
    const sendsToB = () => w.sent.filter((s) => s.host === "b").map((s) => s.at);
    const until = (end: number) => {
      for (let t = w.now; t <= end; t += 250) {
        w.now = t;
        w.settle();
      }
    };
    until(36_000);
    assert.deepEqual(sendsToB(), [0, 4_000, 12_000, 20_000, 28_000, 36_000]);
    w.m.noteUnheard("b"); // nats-server answered the copy of 36 s: nobody listens on b's subject
    until(42_000);
    assert.deepEqual(sendsToB().slice(6), [37_000, 41_000], "1 s after the copy nobody heard, then the first gap again");
  });

  it("a host whose agent had the step and went away before acknowledging it is lost after the heartbeat timeout; a slow agent, or one nobody listened for from the start, after the ack timeout", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0], ["c", 0], ["d", 0]], { ackTimeoutMs: 10_000, heartbeatTimeoutMs: 3_000 })));
    w.outcome = (host) => (host === "a" ? "ok" : "no-ack");
    w.settle();
    w.m.noteUnheard("c"); // nats-server: nobody listens on c's subject, from the first copy
    const lostAt = (host: string) => w.events.find((e) => e.type === "host.finished" && e.host === host);
    for (const t of [1_000, 2_000, 3_000, 3_999]) {
      w.now = t;
      w.settle();
    }
    assert.equal(lostAt("b"), undefined, "b had its first copy: it may just be slow");
    w.now = 4_000;
    w.settle(); // the second copy to b and d
    w.m.noteUnheard("b"); // nobody listens for b's second copy: b's agent went away
    w.settle();
    const b = lostAt("b");
    assert.ok(b?.type === "host.finished" && b.status === "lost");
    assert.match(b.failures[0]?.message ?? "", /^b stopped sending heartbeats during prepare \(its agent went away before it acknowledged the step; nothing from it for 4s\)$/);
    assert.equal(lostAt("d"), undefined, "d is still listening: slow, not gone");
    assert.equal(lostAt("c"), undefined, "no agent listened for c: it may still be starting");
    w.now = 10_000;
    w.settle();
    for (const h of ["c", "d"]) assert.match((lostAt(h) as { failures: Array<{ message: string }> }).failures[0]?.message ?? "", /did not acknowledge prepare within 10s/);
  });

  it("a host whose heartbeats stop mid-step fails as lost", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]])));
    w.outcome = (host, step) => (host === "b" && step === "install" ? "silent" : "ok");
    w.settle();
    w.now = 2_000;
    w.m.noteHeartbeat({ lab: "lab", host: "b", instance: "i", at: 2_000, busy: null, hook: null }, 2_000);
    w.settle();
    assert.equal(w.finished(), undefined, "a heartbeat keeps the host alive");
    w.now = 5_000;
    w.settle();
    const lost = w.events.find((e) => e.type === "host.finished" && e.host === "b");
    assert.ok(lost?.type === "host.finished" && lost.status === "lost");
    assert.match(lost.failures[0]?.message ?? "", /stopped sending heartbeats during install/);
  });

  it("a step far past its timeout with no word from the agent fails as timeout", () => {
    const w = new World(new RunMachine(spec([["a", 0]], { phaseTimeoutMs: 1_000, heartbeatTimeoutMs: 1_000_000 })));
    w.outcome = (_host, step) => (step === "extra" ? "silent" : "ok");
    w.settle();
    w.now = 20_000;
    w.settle();
    const t = w.events.find((e) => e.type === "host.finished" && e.status === "timeout");
    assert.ok(t);
  });

  it("cancel asks the running hosts to stop, then ends the run canceled", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]])));
    w.outcome = (_h, step) => (step === "install" ? "silent" : "ok");
    w.settle();
    w.publish({ type: "run.cancel-requested", reason: "operator" });
    const ds = w.settle();
    assert.deepEqual(ds.filter((d) => d.kind === "cancel").map((d) => d.kind === "cancel" && d.host).sort(), ["a", "b"]);
    w.m.applyResult(w.result("a", "install", "canceled"));
    w.m.applyResult(w.result("b", "install", "canceled"));
    w.settle();
    const fin = w.finished();
    assert.ok(fin?.type === "run.finished" && fin.status === "canceled");
  });
});

describe("engine - restart and resume", () => {
  it("a machine rebuilt from the stored events and results continues at the same place", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]])));
    const results: StepResult[] = [];
    w.outcome = (host, step) => (step === "post-config" ? "silent" : "ok");
    const original = w.m.applyResult.bind(w.m);
    w.m.applyResult = (r) => {
      results.push(r);
      return original(r);
    };
    w.settle();
    const rebuilt = new RunMachine(w.m.spec);
    for (const e of w.events) rebuilt.applyEvent(e);
    for (const r of results) rebuilt.applyResult(r);
    assert.deepEqual(rebuilt.position(), w.m.position());
    const ds = rebuilt.decide(w.now);
    assert.deepEqual(ds.filter((d) => d.kind === "send").map((d) => d.kind === "send" && `${d.host}:${d.command.step}`).sort(), ["a:post-config", "b:post-config"]);
  });

  it("resume replays the session steps, skips steps done everywhere, and reruns the failed step only where it failed", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]])));
    w.outcome = (host, step) => (host === "b" && step === "post-config" ? "failed" : "ok");
    w.settle();
    const plan = planAttempt(w.m, w.m.spec);
    assert.equal(plan.from, "post-config");
    assert.deepEqual(plan.steps, ["prepare", "override_defaults", "source", "post-config", "extra", "test-config"]);
    assert.deepEqual(plan.carried, { "post-config": ["a"] });
    w.sent = [];
    w.outcome = () => "ok";
    w.publish({ type: "run.attempt", attempt: 2, steps: plan.steps, reason: "resume", from: plan.from, carried: plan.carried });
    w.settle();
    assert.deepEqual(w.sent.filter((s) => s.step === "post-config").map((s) => s.host), ["b"]);
    assert.deepEqual(w.sent.filter((s) => s.step === "install"), []);
    assert.equal(w.sent.filter((s) => s.step === "source").length, 2);
    const fin = w.events.filter((e) => e.type === "run.finished").pop();
    assert.ok(fin?.type === "run.finished" && fin.status === "succeeded" && fin.attempt === 2);
  });

  it("a resumed attempt that picked up a later lab revision sends it in every command, and a rebuilt machine keeps it", () => {
    const w = new World(new RunMachine(spec([["a", 0]])));
    const revisions: number[] = [];
    w.outcome = (_host, step) => (step === "install" ? "failed" : "ok");
    w.settle();
    assert.equal(w.m.command("prepare").configRevision, 1);
    const plan = planAttempt(w.m, w.m.spec);
    w.outcome = () => "ok";
    w.publish({ type: "run.attempt", attempt: 2, steps: plan.steps, reason: "resume", from: plan.from, carried: plan.carried, configRevision: 4, pin: "r1-a2" });
    for (const step of plan.steps) revisions.push(w.m.command(step).configRevision);
    assert.deepEqual([...new Set(revisions)], [4]);
    assert.deepEqual([w.m.record().configRevision, w.m.record().pin], [4, "r1-a2"]);
    const rebuilt = new RunMachine(w.m.spec);
    for (const e of w.events) rebuilt.applyEvent(e);
    assert.equal(rebuilt.command("install").configRevision, 4);
    const same = planAttempt(rebuilt, rebuilt.spec);
    rebuilt.applyEvent({ type: "run.attempt", lab: "lab", runId: "r1", at: 1, attempt: 3, steps: same.steps, reason: "resume", from: same.from, carried: same.carried });
    assert.equal(rebuilt.command("install").configRevision, 4, "an attempt that names no revision keeps the one before");
  });

  it("resume --from reruns that step everywhere", () => {
    const w = new World(new RunMachine(spec([["a", 0], ["b", 0]])));
    w.settle();
    const plan = planAttempt(w.m, w.m.spec, { from: "extra" });
    assert.deepEqual(plan.steps, ["prepare", "override_defaults", "source", "extra", "test-config"]);
    assert.deepEqual(plan.carried, {});
  });

  it("resume in DevStack mode reruns every step on a host that did not finish, and carries one that finished everything", () => {
    const w = new World(new RunMachine(spec([["controller", 1, "devstack"], ["compute1", 2, "devstack"], ["hookhost", 2, "hooks"]], { failurePolicy: "continue" })));
    w.outcome = (host, step) => (host === "compute1" && step === "post-config" ? "failed" : "ok");
    w.settle();
    const plan = planAttempt(w.m, w.m.spec);
    assert.deepEqual(plan.steps, STACK, "stack.sh cannot start mid-way: every step is in the attempt");
    for (const step of STACK) assert.ok(plan.carried[step]?.includes("controller"), `controller finished everything: carried in ${step}`);
    for (const step of STACK) assert.ok(!plan.carried[step]?.includes("compute1"), `compute1 reruns ${step}`);
    assert.ok(plan.carried["install"]?.includes("hookhost") && !plan.carried["prepare"]?.includes("hookhost"), "a hooks host replays its session steps and carries the rest");
    w.sent = [];
    w.outcome = () => "ok";
    w.publish({ type: "run.attempt", attempt: 2, steps: plan.steps, reason: "resume", from: plan.from, carried: plan.carried });
    w.settle();
    assert.deepEqual([...new Set(w.sent.filter((s) => s.host === "compute1").map((s) => s.step))], STACK);
    assert.deepEqual(w.sent.filter((s) => s.host === "controller"), [], "nothing is sent to a carried DevStack host");
    const forced = planAttempt(w.m, w.m.spec, { from: "extra" });
    assert.deepEqual(forced.steps, STACK, "--from reruns stack.sh from its start on DevStack hosts");
    assert.ok(!forced.carried["prepare"]?.includes("controller"));
    assert.ok(forced.carried["install"]?.includes("hookhost"), "hooks hosts skip the steps before --from");
  });
});

describe("engine - the run record at the largest lab", () => {
  it(`a finished ${MAX_LAB_HOSTS}-host stack run's record, as the runs bucket stores it, is under a quarter of NATS's default max_payload`, () => {
    const names = Array.from({ length: MAX_LAB_HOSTS }, (_, i) => `compute-${String(i).padStart(4, "0")}-${"x".repeat(51)}`);
    assert.equal(names[0]?.length, 64, "host names as long as a host name may be");
    const w = new World(new RunMachine(spec(names.map((n): [string, number] => [n, 1]))));
    w.now = 1_764_600_000_000;
    w.settle();
    const record = w.m.record();
    assert.equal(record.status, "succeeded");
    // As on a real lab, every host's times differ (the world answers at once): a poor case for packing.
    let seed = 7;
    const jitter = () => (seed = (seed * 48271) % 2147483647) % 100_000;
    for (const steps of Object.values(record.hosts)) {
      for (const state of Object.values(steps)) {
        const took = jitter();
        state.startedAt = (state.startedAt ?? w.now) + jitter();
        state.finishedAt = state.startedAt + took;
        state.durationMs = took;
      }
    }
    const json = Buffer.byteLength(JSON.stringify(record));
    const stored = encodeRunRecord(record);
    assert.ok(json > 1024 * 1024 * 0.5, `the JSON alone is ${json} bytes: near max_payload, hence the packing`);
    assert.ok(stored.length < 256 * 1024, `stored: ${stored.length} bytes (JSON ${json} bytes)`);
    console.log(`# ${MAX_LAB_HOSTS}-host record: JSON ${json} bytes, stored ${stored.length} bytes`);
    assert.deepEqual(decodeRunRecord("lab.r1", stored), record);
  });
});
