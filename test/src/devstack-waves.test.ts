/** DevStack mode: wave order only in the steps the lab names (waveSteps). */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startGitServer, type GitServer } from "@stackbus/testkit";
import { type Lab } from "./harness.js";
import { devstackLab, timeline, timelinePlugin, unavailable } from "./devstack-lab.js";

const skip = unavailable();
if (skip) console.log(`SKIPPED: DevStack-mode tests: ${skip}`);

describe("DevStack mode - waves only where the lab asks (waveSteps)", { skip }, () => {
  let git: GitServer;
  let lab: Lab;
  before(async () => {
    git = await startGitServer();
    lab = await devstackLab({ hosts: ["controller", "compute1"], git, plugins: () => `enable_plugin timeline ${git.repoUrl("timeline")}`, manifestExtra: () => "  waveSteps: [extra]" });
    // The controller's install is slow: a compute that waited for it would start its install after it ended.
    await git.commit("timeline", timelinePlugin(lab.shared, `[[ $STACKBUS_HOST == controller && "$2" == install ]] && sleep 3\n`));
  });
  after(async () => {
    await lab?.stop();
    await git?.stop();
  });

  it("the compute installs while the controller installs; extra still keeps wave order", async () => {
    const res = await lab.cli(["stack", "--wait"], 600_000);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = timeline(lab.shared);
    const at = (host: string, what: string, phase: string) => lines.find((l) => l.host === host && l.what === what && l.phase === phase)?.at ?? NaN;
    assert.ok(at("compute1", "start", "stack install") < at("controller", "end", "stack install"), "compute1's install started before the controller's install ended");
    assert.ok(at("compute1", "start", "stack extra") > at("controller", "end", "stack extra"), "compute1's extra waited for the controller's");
  });
});
