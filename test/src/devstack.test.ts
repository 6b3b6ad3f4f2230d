/** DevStack mode: three hosts run their own real stack.sh, unstack.sh and clean.sh, in lockstep. */
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { devstackEnvironment, startGitServer, type GitServer } from "@stackbus/testkit";
import { type Lab } from "./harness.js";
import { devstackLab, results, runIdOf, STACK_PHASES, STACK_STEPS, timeline, timelinePlugin, unavailable } from "./devstack-lab.js";

const skip = unavailable();
if (skip) console.log(`SKIPPED: DevStack-mode tests: ${skip}`);

describe("DevStack mode - three hosts run their own real stack.sh, unstack.sh and clean.sh in lockstep", { skip }, () => {
  let git: GitServer;
  let lab: Lab;
  let realPlugins = "";
  before(async () => {
    git = await startGitServer();
    const mirrors = devstackEnvironment().mirrors;
    const container = git.mirror("devstack-plugin-container", join(mirrors, "devstack-plugin-container.bundle"));
    const kafka = git.mirror("devstack-plugin-kafka", join(mirrors, "devstack-plugin-kafka.bundle"));
    realPlugins = [`enable_plugin devstack-plugin-container ${container}`, `enable_plugin devstack-plugin-kafka ${kafka}`, "disable_service container kafka"].join("\n");
    lab = await devstackLab({
      hosts: ["controller", "compute1", "compute2"],
      git,
      plugins: () => `enable_plugin timeline ${git.repoUrl("timeline")}\n${realPlugins}`,
      manifestExtra: (shared) => ["finally:", "  - hosts: [controller]", `    run: echo "$STACKBUS_HOST finally - \${EPOCHREALTIME/./}" >> ${shared}`].join("\n"),
    });
    await git.commit("timeline", timelinePlugin(lab.shared));
  });
  after(async () => {
    await lab?.stop();
    await git?.stop();
  });

  it("stack: every host's stack.sh runs to its end, phase by phase in lockstep, waves in order, then finally", async () => {
    const res = await lab.cli(["stack", "--wait"], 600_000);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    for (const h of lab.hosts) {
      assert.ok(existsSync(join(lab.topDir(h.name), ".stackenv")), `${h.name}: stack.sh saved its .stackenv (it ran to its end)`);
      assert.ok(existsSync(join(lab.dest(h.name), "logs", "stack.sh.log")), `${h.name}: DevStack's log is there`);
      assert.ok(existsSync(join(lab.dest(h.name), "timeline", ".git")), `${h.name}: the plugin was placed at DevStack's $DEST/<name>`);
    }
    const lines = timeline(lab.shared);
    const plugin = lines.filter((l) => l.what === "start" || l.what === "end");
    for (let k = 0; k + 1 < STACK_PHASES.length; k++) {
      const [thisPhase, nextPhase] = [STACK_PHASES[k], STACK_PHASES[k + 1]];
      const ofThis = lines.filter((l) => l.phase === thisPhase || (thisPhase === "override_defaults" && l.what === "override-defaults") || (thisPhase === "source" && l.what === "settings"));
      const ofNext = lines.filter((l) => l.phase === nextPhase || (nextPhase === "source" && l.what === "settings"));
      assert.equal(new Set(ofThis.map((l) => l.host)).size, 3, `every host ran ${thisPhase}`);
      assert.ok(Math.max(...ofThis.map((l) => l.at)) < Math.min(...ofNext.map((l) => l.at)), `${nextPhase} started on a host before every host finished ${thisPhase}`);
    }
    for (const phase of STACK_PHASES.slice(2)) {
      const ends = plugin.filter((l) => l.phase === phase);
      const controllerEnd = ends.find((l) => l.host === "controller" && l.what === "end")?.at ?? Infinity;
      for (const c of ends.filter((l) => l.host !== "controller")) assert.ok(c.at > controllerEnd, `${phase}: ${c.host} ran before the controller (wave 1) finished`);
    }
    for (const phase of STACK_PHASES) {
      assert.equal(lines.filter((l) => l.what === "extras" && l.phase === phase).length, 3, `extras.d/50-stackbus-record.sh ran in ${phase} on every host`);
    }
    const fin = lines.find((l) => l.what === "finally");
    assert.ok(fin && fin.host === "controller", "finally ran on the controller");
    assert.ok(fin.at > Math.max(...lines.filter((l) => l.what !== "finally").map((l) => l.at)), "finally ran after every host's last phase");

    const runId = runIdOf(res.stdout + res.stderr);
    const record = await lab.record(runId);
    assert.ok(record?.hosts["controller"]?.["test-config"]?.devstack?.timeTotals["Total runtime"] !== undefined, "the run record keeps DevStack's time_totals");
    assert.match(res.stdout, /controller pre-install: Installing package prerequisites/, "--wait shows DevStack's echo_summary lines as each host's activity");
    const stored = await results(lab, runId);
    for (const h of lab.hosts) {
      for (const step of STACK_STEPS) {
        const r = stored.find((x) => x.host === h.name && x.step === step);
        assert.ok(r && r.status === "ok", `${h.name} ${step} ok`);
        const hooks = r.hooks.map((x) => x.hook);
        assert.ok(hooks.includes("extras.d/50-stackbus-record.sh") && hooks.includes("extras.d/80-tempest.sh"), `${h.name} ${step}: both extras.d scripts: ${hooks.join(", ")}`);
        const file = step === "override_defaults" ? null : step === "source" ? "settings" : "plugin.sh";
        if (file) {
          for (const p of ["devstack-plugin-container", "devstack-plugin-kafka"]) assert.ok(hooks.includes(`${p}/devstack/${file}`), `${h.name} ${step}: ${p}/devstack/${file} sourced (${hooks.join(", ")})`);
        }
        assert.equal(r.devstack?.script, "stack.sh");
      }
      const last = stored.find((x) => x.host === h.name && x.step === "test-config");
      assert.ok(last?.devstack && "Total runtime" in last.devstack.timeTotals, `${h.name}: DevStack's time_totals kept with the run: ${JSON.stringify(last?.devstack)}`);
      assert.equal(last?.devstack?.logFile, join(lab.dest(h.name), "logs", "stack.sh.log"));
    }
  });

  it("unstack, then clean: each host's own scripts, in lockstep, exit 0", async () => {
    writeFileSync(lab.shared, "");
    const un = await lab.cli(["unstack", "--wait"], 300_000);
    assert.equal(un.code, 0, un.stdout + un.stderr);
    let lines = timeline(lab.shared);
    const unstackStarts = lines.filter((l) => l.phase === "unstack" && l.what === "start");
    assert.equal(unstackStarts.length, 3, "every host's plugin ran its unstack phase");
    const settings = lines.filter((l) => l.what === "settings");
    assert.ok(Math.max(...settings.map((l) => l.at)) < Math.min(...unstackStarts.map((l) => l.at)), "no host unstacked before every host loaded the settings");

    writeFileSync(lab.shared, "");
    const cl = await lab.cli(["clean", "--wait"], 300_000);
    assert.equal(cl.code, 0, cl.stdout + cl.stderr);
    lines = timeline(lab.shared);
    const unstackInClean = lines.filter((l) => l.phase === "unstack" && l.what === "end");
    const cleans = lines.filter((l) => l.phase === "clean" && l.what === "start");
    assert.equal(cleans.length, 3, "every host's plugin ran its clean phase");
    assert.ok(Math.max(...unstackInClean.map((l) => l.at)) < Math.min(...cleans.map((l) => l.at)), "clean started on a host before every host's unstack.sh (the child of clean.sh) finished its unstack phase");
    for (const h of lab.hosts) assert.ok(!existsSync(join(lab.topDir(h.name), ".stackenv")), `${h.name}: clean.sh ran to its end (it removes .stackenv)`);
    const stored = await results(lab, runIdOf(cl.stdout + cl.stderr));
    for (const h of lab.hosts) {
      const hooks = (step: string) => stored.find((x) => x.host === h.name && x.step === step)?.hooks.map((x) => x.hook) ?? [];
      for (const p of ["devstack-plugin-container", "devstack-plugin-kafka", "timeline"]) {
        assert.ok(hooks("unstack").includes(`${p}/devstack/plugin.sh`), `${h.name}: ${p} unstack`);
        assert.ok(hooks("clean").includes(`${p}/devstack/plugin.sh`), `${h.name}: ${p} clean`);
      }
    }
  });
});
