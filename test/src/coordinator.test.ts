import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { waitFor } from "@stackbus/testkit";
import { Lab, recordingHook } from "./harness.js";

const PHASES = ["override_defaults", "source", "stack pre-install", "stack install", "stack post-config", "stack extra", "stack test-config"];

interface Line {
  host: string;
  phase: string;
  at: number;
}

function readLines(file: string): Line[] {
  const text = readFileSync(file, "utf8").trim();
  if (!text) return [];
  return text.split("\n").map((l) => {
    const parts = l.split(" ");
    return { host: parts[0] as string, phase: parts.slice(1, -1).join(" "), at: Number(parts[parts.length - 1]) };
  });
}

function events(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test("coordinator - five agents in two waves", async (t) => {
  await using lab = await Lab.start({
    hosts: [
      { name: "ctl1", wave: 1 },
      { name: "ctl2", wave: 1 },
      { name: "cmp1", wave: 2 },
      { name: "cmp2", wave: 2 },
      { name: "cmp3", wave: 2 },
    ],
  });
  for (const h of lab.hosts) lab.writeHostFiles({ name: h.name, files: { "extras.d/10-rec.sh": `sleep 0.0$((RANDOM % 4 + 1))\n${recordingHook(lab.shared)}` } });

  await t.test("runs every phase on every host in lockstep, and within each phase every wave-1 host before any wave-2 host", async () => {
    const res = await lab.cli(["stack", "--wait"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = readLines(lab.shared);
    assert.equal(lines.length, 5 * PHASES.length);
    const wave1 = new Set(["ctl1", "ctl2"]);
    for (let k = 0; k < PHASES.length; k++) {
      const phase = lines.filter((l) => l.phase === PHASES[k]);
      assert.equal(phase.length, 5, PHASES[k]);
      const lastWave1 = Math.max(...phase.filter((l) => wave1.has(l.host)).map((l) => l.at));
      const firstWave2 = Math.min(...phase.filter((l) => !wave1.has(l.host)).map((l) => l.at));
      assert.ok(lastWave1 < firstWave2, `${PHASES[k]}: a wave-2 host started before wave 1 finished`);
      if (k + 1 < PHASES.length) {
        const next = lines.filter((l) => l.phase === PHASES[k + 1]);
        assert.ok(Math.max(...phase.map((l) => l.at)) < Math.min(...next.map((l) => l.at)), `${PHASES[k + 1]} began before ${PHASES[k]} ended`);
      }
    }
  });

  await t.test("continue runs the others to the end without the failed host and reports the failure", async () => {
    writeFileSync(lab.shared, "");
    lab.writeHostFiles({ name: "cmp2", files: { "extras.d/20-fail.sh": 'if [[ "$1 $2" == "stack install" ]]; then echo "disk full" >&2; exit 7; fi\n' } });
    const res = await lab.cli(["stack", "--wait", "--failure-policy", "continue"]);
    assert.equal(res.code, 1);
    const testConfig = readLines(lab.shared).filter((l) => l.phase === "stack test-config").map((l) => l.host).sort();
    assert.deepEqual(testConfig, ["cmp1", "cmp3", "ctl1", "ctl2"]);
    assert.match(res.stdout, /cmp2 \/ install \/ extras\.d\/20-fail\.sh \/ exit 7/);
    assert.match(res.stdout, /\| disk full/);
  });

  await t.test("max-fail as a percentage: one failed host of five is within 20%, so the run goes on", async () => {
    writeFileSync(lab.shared, "");
    const res = await lab.cli(["stack", "--wait", "--max-fail", "20%"]);
    assert.equal(res.code, 1, "the run still fails");
    assert.equal(readLines(lab.shared).filter((l) => l.phase === "stack test-config").length, 4);
  });

  await t.test("abort (the default) stops after the failing phase", async () => {
    writeFileSync(lab.shared, "");
    const res = await lab.cli(["stack", "--wait", "--json"]);
    assert.equal(res.code, 1);
    const lines = readLines(lab.shared);
    assert.equal(lines.filter((l) => l.phase === "stack install").length, 5, "the failing phase finished on the other hosts");
    assert.equal(lines.filter((l) => l.phase === "stack post-config").length, 0, "no host started the next phase");
    const finished = events(res.stdout).find((e) => e["type"] === "run.finished");
    assert.equal(finished?.["status"], "failed");
  });

  await t.test("resume, once the failure is fixed, completes without re-running finished steps", async () => {
    const runs = await lab.cli(["runs", "--json"]);
    const failed = JSON.parse(runs.stdout.trim().split("\n")[0] as string) as { runId: string; status: string };
    assert.equal(failed.status, "failed");
    writeFileSync(lab.shared, "");
    lab.writeHostFiles({ name: "cmp2", files: { "extras.d/20-fail.sh": "true\n" } });
    const res = await lab.cli(["stack", "--resume", failed.runId, "--wait"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = readLines(lab.shared);
    // The session is rebuilt on every host (override_defaults and source replayed, as a new stack.sh would).
    assert.equal(lines.filter((l) => l.phase === "source").length, 5);
    assert.equal(lines.filter((l) => l.phase === "stack pre-install").length, 0, "pre-install finished everywhere before: not run again");
    assert.deepEqual(lines.filter((l) => l.phase === "stack install").map((l) => l.host), ["cmp2"], "install runs again only where it failed");
    assert.equal(lines.filter((l) => l.phase === "stack test-config").length, 5);
    const status = await lab.cli(["status", failed.runId, "--json"]);
    assert.equal((JSON.parse(status.stdout) as { status: string; attempt: number }).status, "succeeded");
  });

  await t.test("resume --from forces a starting step on every host", async () => {
    const runs = await lab.cli(["runs", "--json"]);
    const last = JSON.parse(runs.stdout.trim().split("\n")[0] as string) as { runId: string };
    writeFileSync(lab.shared, "");
    const res = await lab.cli(["stack", "--resume", last.runId, "--from", "extra", "--wait"]);
    assert.notEqual(res.code, 2, res.stderr);
    // a succeeded run has nothing to resume
    assert.match(res.stderr, /succeeded; there is nothing to resume/);
    // start a run that fails at extra, then force it from post-config
    lab.writeHostFiles({ name: "ctl1", files: { "extras.d/30-extra.sh": 'if [[ "$1 $2" == "stack extra" && ! -f "$TOP_DIR/fixed" ]]; then exit 4; fi\n' } });
    const failing = await lab.cli(["stack", "--wait", "--json"]);
    assert.equal(failing.code, 1);
    const runId = (events(failing.stdout)[0] as { runId: string }).runId;
    writeFileSync(`${lab.topDir("ctl1")}/fixed`, "");
    writeFileSync(lab.shared, "");
    const forced = await lab.cli(["stack", "--resume", runId, "--from", "post-config", "--wait"]);
    assert.equal(forced.code, 0, forced.stdout + forced.stderr);
    const lines = readLines(lab.shared);
    assert.equal(lines.filter((l) => l.phase === "stack post-config").length, 5, "post-config ran again on every host");
    assert.equal(lines.filter((l) => l.phase === "stack install").length, 0);
  });

  await t.test("a watcher attaching after the run finished replays every event", async () => {
    const res = await lab.cli(["watch", "--json"]);
    assert.equal(res.code, 0);
    const all = events(res.stdout);
    assert.equal(all[0]?.["type"], "run.created");
    const started = all.filter((e) => e["type"] === "step.started").map((e) => `${e["step"]}:${e["wave"]}`);
    assert.ok(started.includes("post-config:1") && started.includes("post-config:2"));
    assert.equal(all.at(-1)?.["type"], "run.finished");
  });

  await t.test("plan prints, per host and step, the hooks a run would run, running nothing", async () => {
    writeFileSync(lab.shared, "");
    const res = await lab.cli(["plan", "stack", "--hosts", "ctl1,cmp2", "--json"]);
    assert.equal(res.code, 0, res.stderr);
    const plans = res.stdout.trim().split("\n").map((l) => JSON.parse(l) as { host: string; steps: Array<{ step: string; entries: Array<{ name: string; args: string[] }> }> });
    assert.deepEqual(plans.map((p) => p.host), ["ctl1", "cmp2"]);
    const install = plans[0]?.steps.find((s) => s.step === "install");
    assert.deepEqual(install?.entries.filter((e) => e.name.startsWith("extras.d/")).map((e) => `${e.name} ${e.args.join(" ")}`), [
      "extras.d/10-rec.sh stack install",
      "extras.d/30-extra.sh stack install",
    ]);
    assert.equal(readFileSync(lab.shared, "utf8"), "", "no hook ran");
  });
});

test("coordinator - hosts that stop answering, and cancel", async (t) => {
  await using lab = await Lab.start({ hosts: [{ name: "up1" }, { name: "up2" }, { name: "ghost", wave: 2 }, { name: "ghost2", wave: 3 }], agents: false });
  lab.startAgent("up1");
  lab.startAgent("up2");
  await lab.waitForAgents(["up1", "up2"]);

  await t.test("stack refuses at once, naming every host of every wave that has no agent; nothing starts", async () => {
    const before = (await lab.cli(["runs", "--json"])).stdout;
    const started = Date.now();
    const res = await lab.cli(["stack", "--wait"]);
    const tookMs = Date.now() - started;
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.ok(tookMs < 5_000, `refused in ${tookMs} ms`);
    assert.match(res.stderr, /2 hosts have no running agent: ghost \(wave 2\); ghost2 \(wave 3\)\. Start `stackbus agent --host NAME --lab testlab` on each/);
    assert.doesNotMatch(res.stderr, /sb\.testlab\./, "no subject in the message");
    assert.equal((await lab.cli(["runs", "--json"])).stdout, before, "no run was created");
  });

  await t.test("a host whose agent stops answering after the run started fails as lost after the ack timeout, never as success", async () => {
    // up2 waits in wave 2 while up1 sleeps in override_defaults; frozen there, its agent never acknowledges the step.
    await lab.apply(lab.manifest().replace("name: up2\n    wave: 1", "name: up2\n    wave: 2"));
    lab.writeHostFiles({ name: "up1", files: { "extras.d/10-slow.sh": 'if [[ "$1" == override_defaults ]]; then sleep 3.173; fi\n' } });
    const agent = lab.procs.get("agent-up2");
    const run = lab.cli(["stack", "--wait", "--json", "--hosts", "up1,up2", "--ack-timeout", "1500ms", "--heartbeat-timeout", "60s"], 60_000);
    try {
      await waitFor("up1 in override_defaults", () => psHas("sleep 3.173"), 30_000);
      agent?.child.kill("SIGSTOP");
      const res = await run;
      assert.equal(res.code, 1);
      const lost = events(res.stdout).find((e) => e["type"] === "host.finished" && e["host"] === "up2");
      assert.equal(lost?.["status"], "lost");
      assert.match(JSON.stringify(lost), /up2 did not acknowledge override_defaults within 1\.5s/);
      assert.equal(events(res.stdout).find((e) => e["type"] === "run.finished")?.["status"], "failed");
    } finally {
      agent?.child.kill("SIGCONT");
      lab.writeHostFiles({ name: "up1", files: { "extras.d/10-slow.sh": "true\n" } });
      await lab.apply(lab.manifest());
    }
  });

  await t.test("an agent killed mid-phase fails as lost within the heartbeat timeout", async () => {
    lab.writeHostFiles({ name: "up2", files: { "extras.d/10-slow.sh": 'if [[ "$1 $2" == "stack install" ]]; then sleep 30.173; fi\n' } });
    const run = lab.cli(["stack", "--wait", "--json", "--hosts", "up1,up2", "--heartbeat-timeout", "2s"], 60_000);
    await waitFor("up2 to be in install", () => psHas("sleep 30.173"), 30_000);
    await lab.procs.get("agent-up2")?.kill("SIGKILL");
    const res = await run;
    assert.equal(res.code, 1);
    const lost = events(res.stdout).find((e) => e["type"] === "host.finished" && e["host"] === "up2");
    assert.equal(lost?.["status"], "lost");
    assert.equal(lost?.["step"], "install");
    assert.match(JSON.stringify(lost), /up2 stopped sending heartbeats during install/);
    assert.ok(psHas("sleep 30.173"), "the killed agent's hook is still running");
    lab.startAgent("up2");
    await lab.waitForAgents(["up2"]);
    await waitFor("the restarted agent to end the hooks its killed instance left running", () => !psHas("sleep 30.173"), 10_000);
  });

  await t.test("cancel stops the step in flight on every host and ends the run canceled", async () => {
    for (const h of ["up1", "up2"]) lab.writeHostFiles({ name: h, files: { "extras.d/10-slow.sh": 'if [[ "$1 $2" == "stack pre-install" ]]; then sleep 31.5; fi\n' } });
    const run = lab.cli(["stack", "--wait", "--json", "--hosts", "up1,up2"], 60_000);
    await waitFor("both hosts in pre-install", () => psCount("sleep 31.5") === 2, 30_000);
    const runs = await lab.cli(["runs", "--json"]);
    const current = JSON.parse(runs.stdout.trim().split("\n")[0] as string) as { runId: string };
    const cancel = await lab.cli(["cancel", current.runId, "--reason", "wrong branch"]);
    assert.equal(cancel.code, 0, cancel.stderr);
    const res = await run;
    assert.equal(res.code, 1);
    const all = events(res.stdout);
    assert.equal(all.find((e) => e["type"] === "run.finished")?.["status"], "canceled");
    assert.ok(all.some((e) => e["type"] === "run.cancel-requested" && e["reason"] === "wrong branch"));
    await waitFor("the hooks' sleeps killed", () => psCount("sleep 31.5") === 0, 10_000);
  });
});

function psLines(): string[] {
  return execFileSync("ps", ["-eo", "args"]).toString().split("\n").map((l) => l.trim());
}
function psHas(text: string): boolean {
  return psLines().includes(text);
}
function psCount(text: string): number {
  return psLines().filter((l) => l === text).length;
}
