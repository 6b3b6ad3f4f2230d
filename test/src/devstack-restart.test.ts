/**
 * DevStack mode across restarts: a coordinator restart neither restarts nor re-runs
 * any stack.sh; an agent restart stops that host's stack.sh (a paused one sees the
 * agent go away, a running one is ended by the new agent), the step is lost, and a
 * resume runs stack.sh again from its start.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stripVTControlCharacters } from "node:util";
import { after, before, describe, it } from "node:test";
import { startGitServer, waitFor, type GitServer } from "@stackbus/testkit";
import { spawnCli, type Lab } from "./harness.js";
import { devstackLab, noProcessesIn, runIdOf, timeline, timelinePlugin, unavailable } from "./devstack-lab.js";

const skip = unavailable();
if (skip) console.log(`SKIPPED: DevStack-mode tests: ${skip}`);

/** How many times each host's stack.sh started (the timeline plugin's override-defaults runs once per stack.sh). */
function starts(shared: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of timeline(shared)) if (l.what === "override-defaults") out[l.host] = (out[l.host] ?? 0) + 1;
  return out;
}

describe("DevStack mode - restarts", { skip }, () => {
  let git: GitServer;
  let lab: Lab;
  before(async () => {
    git = await startGitServer();
    lab = await devstackLab({ hosts: ["controller", "compute1"], git, plugins: () => `enable_plugin timeline ${git.repoUrl("timeline")}` });
    await git.commit("timeline", timelinePlugin(lab.shared));
  });
  after(async () => {
    await lab?.stop();
    await git?.stop();
  });

  it("a coordinator killed mid-run and started again: the run completes and every stack.sh ran once, every phase once", async () => {
    const waiting = spawnCli("stack", ["stack", "--wait", "--nats", lab.natsUrl, "--lab", lab.name]);
    await waitFor("a host in stack pre-install", () => timeline(lab.shared).some((l) => l.phase === "stack pre-install"), 300_000, 100);
    await lab.procs.get("coordinator")?.kill("SIGKILL");
    lab.startService("coordinator");
    assert.equal(await waiting.exited(), 0, waiting.output());
    assert.deepEqual(starts(lab.shared), { controller: 1, compute1: 1 }, "no stack.sh was started again");
    for (const host of ["controller", "compute1"]) {
      for (const phase of ["stack pre-install", "stack install", "stack test-config"]) {
        assert.equal(timeline(lab.shared).filter((l) => l.host === host && l.what === "start" && l.phase === phase).length, 1, `${host} ran ${phase} once`);
      }
      assert.ok(existsSync(join(lab.topDir(host), ".stackenv")));
    }
  });

  it("an agent killed while its stack.sh waits between phases: that stack.sh stops, the step is lost, a resume runs stack.sh from its start", async () => {
    const before = starts(lab.shared);
    const waiting = spawnCli("stack", ["stack", "--wait", "--nats", lab.natsUrl, "--lab", lab.name]);
    // compute1 (wave 2) finished pre-install: its stack.sh waits for its install, which follows the controller's.
    // The coordinator has its result (the plugin's timeline line comes before the step ends):
    // the kill lands between steps, not inside pre-install.
    await waitFor("compute1 through stack pre-install", () => timeline(lab.shared).filter((l) => l.host === "compute1" && l.what === "end" && l.phase === "stack pre-install").length > (before["compute1"] ?? 0), 300_000, 50);
    await waitFor("the coordinator has compute1's pre-install", () => /pre-install compute1 ok/.test(stripVTControlCharacters(waiting.output())), 60_000, 50);
    const runId = runIdOf(waiting.output());
    await lab.procs.get("agent-compute1")?.kill("SIGKILL");
    await noProcessesIn(lab.topDir("compute1"), 60_000);
    lab.startAgent("compute1");
    assert.equal(await waiting.exited(), 1, waiting.output());
    assert.match(stripVTControlCharacters(waiting.output()), /install compute1 FAILED[\s\S]*no live session/);
    const resumed = await lab.cli(["stack", "--resume", runId, "--wait"], 300_000);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    const after = starts(lab.shared);
    assert.equal(after["compute1"], (before["compute1"] ?? 0) + 2, "compute1's stack.sh ran again from its start");
    assert.equal(after["controller"], (before["controller"] ?? 0) + 2, "the controller, which had not finished either, too");
    assert.ok(existsSync(join(lab.topDir("compute1"), ".stackenv")));
  });
});
