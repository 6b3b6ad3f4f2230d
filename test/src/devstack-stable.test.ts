/** DevStack mode on a stable branch of DevStack. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { startGitServer, type GitServer } from "@stackbus/testkit";
import { type Lab } from "./harness.js";
import { devstackLab, timeline, timelinePlugin, unavailable } from "./devstack-lab.js";

const skip = unavailable();
if (skip) console.log(`SKIPPED: DevStack-mode tests: ${skip}`);

describe("DevStack mode - on DevStack's stable branch, one agent running as DevStack's user", { skip }, () => {
  let git: GitServer;
  let lab: Lab;
  before(async () => {
    git = await startGitServer();
    lab = await devstackLab({ hosts: ["controller", "compute1"], git, branch: "stable/2026.1", agentsAsUser: ["compute1"], plugins: () => `enable_plugin timeline ${git.repoUrl("timeline")}` });
    await git.commit("timeline", timelinePlugin(lab.shared));
  });
  after(async () => {
    await lab?.stop();
    await git?.stop();
  });

  it("stack, unstack and clean exit 0, in lockstep", async () => {
    for (const kind of ["stack", "unstack", "clean"]) {
      writeFileSync(lab.shared, "");
      const res = await lab.cli([kind, "--wait"], 600_000);
      assert.equal(res.code, 0, `${kind}: ${res.stdout}${res.stderr}`);
      const lines = timeline(lab.shared);
      assert.ok(lines.some((l) => l.host === "compute1" && l.what === "start"), `${kind}: compute1's plugin ran`);
    }
    const lines = timeline(lab.shared);
    assert.equal(lines.filter((l) => l.phase === "clean" && l.what === "end").length, 2);
  });
});
