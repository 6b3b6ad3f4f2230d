/** DevStack mode: a failing plugin, and what cancel does to a running stack.sh. */
import assert from "node:assert/strict";
import { chmodSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { devstackEnvironment, startGitServer, waitFor, type GitServer } from "@stackbus/testkit";
import { Lab, spawnCli } from "./harness.js";
import { devstackLab, noProcessesIn, results, runIdOf, timeline, timelinePlugin, unavailable } from "./devstack-lab.js";

const skip = unavailable();
if (skip) console.log(`SKIPPED: DevStack-mode tests: ${skip}`);

describe("DevStack mode - a plugin failing at stack install on one host", { skip }, () => {
  let git: GitServer;
  let lab: Lab;
  before(async () => {
    git = await startGitServer();
    lab = await devstackLab({
      hosts: ["controller", "compute1", "compute2"],
      git,
      plugins: (host) => `enable_plugin timeline ${git.repoUrl("timeline")}${host === "compute1" ? `\nenable_plugin failing ${git.repoUrl("failing")}` : ""}`,
    });
    await git.commit("timeline", timelinePlugin(lab.shared));
    await git.commit("failing", { "devstack/plugin.sh": 'if [[ "$1" == stack && "$2" == install ]]; then\n    echo "about to fail"\n    false\n    echo "not reached"\nfi\n' });
  });
  after(async () => {
    await lab?.stop();
    await git?.stop();
  });

  it("fails the run naming the host, the step and plugin.sh with its line; no host starts post-config", async () => {
    const res = await lab.cli(["stack", "--wait"], 600_000);
    assert.notEqual(res.code, 0, res.stdout + res.stderr);
    const out = res.stdout + res.stderr;
    assert.match(out, /compute1/);
    assert.match(out, /install/);
    assert.match(out, /failing\/devstack\/plugin\.sh/);
    const stored = await results(lab, runIdOf(out));
    const failed = stored.find((r) => r.host === "compute1" && r.step === "install");
    assert.equal(failed?.status, "failed");
    const f = failed?.failures[0];
    assert.equal(f?.hook, "failing/devstack/plugin.sh");
    assert.equal(f?.command, "false");
    assert.match(f?.location ?? "", /failing\/devstack\/plugin\.sh:source:3$/);
    assert.equal(f?.exitCode, 1);
    assert.equal(f?.logFile, join(lab.dest("compute1"), "logs", "stack.sh.log"));
    assert.ok(f?.outputTail.some((l) => l.includes("about to fail")), "the output tail is kept");
    assert.deepEqual(timeline(lab.shared).filter((l) => l.phase === "stack post-config"), [], "no host started post-config");
    assert.equal(stored.filter((r) => r.step === "post-config").length, 0);
  });
});

describe("DevStack mode - cancel ends the whole process group of a running stack.sh", { skip }, () => {
  let git: GitServer;
  let lab: Lab;
  before(async () => {
    git = await startGitServer();
    lab = await devstackLab({ hosts: ["controller", "compute1"], git, plugins: () => `enable_plugin timeline ${git.repoUrl("timeline")}`, manifestExtra: () => "  waveSteps: []" });
    await git.commit("timeline", timelinePlugin(lab.shared, `[[ $STACKBUS_HOST == compute1 && "$2" == install ]] && sleep 3017\n`));
  });
  after(async () => {
    await lab?.stop();
    await git?.stop();
  });

  it("the compute's stack.sh and the sleep its plugin started are gone; the paused controller's stack.sh stops too", async () => {
    const waiting = spawnCli("stack", ["stack", "--wait", "--nats", lab.natsUrl, "--lab", lab.name]);
    await waitFor("compute1's plugin sleeping in stack install", () => timeline(lab.shared).some((l) => l.host === "compute1" && l.what === "start" && l.phase === "stack install"), 300_000, 200);
    const runId = runIdOf(waiting.output());
    const cancel = await lab.cli(["cancel", runId]);
    assert.equal(cancel.code, 0, cancel.stdout + cancel.stderr);
    assert.equal(await waiting.exited(), 1, waiting.output());
    assert.match(waiting.output(), /canceled/);
    for (const host of ["compute1", "controller"]) {
      await noProcessesIn(lab.topDir(host), 90_000);
    }
    const stored = await results(lab, runId);
    assert.equal(stored.find((r) => r.host === "compute1" && r.step === "install")?.status, "canceled");
    assert.ok(!timeline(lab.shared).some((l) => l.phase === "stack post-config"));
  });
});

describe("DevStack mode - prepare checks the host before starting anything", { skip }, () => {
  let lab: Lab;
  before(async () => {
    lab = await Lab.start({ hosts: [{ name: "nouser" }, { name: "nocheckout" }] });
    const user = devstackEnvironment().user;
    const manifest = [
      `lab: ${lab.name}`,
      "defaults:",
      "  runner: devstack",
      `  devstackUser: ${user}`,
      "hosts:",
      "  - name: nouser",
      "    devstackUser: nosuchuser",
      "    localConfText: |",
      "      [[local|localrc]]",
      "  - name: nocheckout",
      "    localConfText: |",
      "      [[local|localrc]]",
      "",
    ].join("\n");
    await lab.apply(manifest, {});
    chmodSync(lab.dir.path, 0o755);
  });
  after(async () => lab?.stop());

  it("fails prepare on each host naming what is missing: the user, the checkout's scripts", async () => {
    const res = await lab.cli(["stack", "--wait"]);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    const out = res.stdout + res.stderr;
    assert.match(out, /prepare nouser FAILED[\s\S]*user "nosuchuser" \(devstackUser of host nouser\) does not exist on this host/);
    assert.match(out, new RegExp(`prepare nocheckout FAILED[\\s\\S]*stack\\.sh is missing or not readable by ${devstackEnvironment().user}`));
    assert.match(out, /unstack\.sh is missing or not readable/);
    assert.doesNotMatch(out, /override_defaults/, "nothing ran after prepare");
  });

  it("plan says, per host and step, that DevStack's own script runs between the hooks", async () => {
    const res = await lab.cli(["plan", "--hosts", "nocheckout"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /DevStack mode: this host's own stack\.sh runs, unchanged/);
    assert.match(res.stdout, /stack install[\s\S]*stack\.sh\s+# DevStack's own stack\.sh: database, rpc, and each service installed[\s\S]*pauses at the end of run_phase stack install in stack\.sh/);
    const clean = await lab.cli(["plan", "clean", "--hosts", "nocheckout", "--json"]);
    const plan = JSON.parse(clean.stdout) as { runner: string; steps: Array<{ step: string; entries: Array<{ action: string; note: string | null }> }> };
    assert.equal(plan.runner, "devstack");
    assert.match(plan.steps.find((s) => s.step === "unstack")?.entries[0]?.note ?? "", /pauses at the end of run_phase unstack in unstack\.sh/);
  });
});
