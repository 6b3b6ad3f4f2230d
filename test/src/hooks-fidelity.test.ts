/**
 * The hooks runner where real plugins notice the difference from DevStack's scripts
 * (issue 18): an unstack hook's status, die in clean, and a session ended by a hook's exit.
 * Plugins written for the tests, served over git HTTP, in real bash sessions.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import type { StepResult } from "@stackbus/protocol";
import { startGitServer } from "@stackbus/testkit";
import { Lab } from "./harness.js";

type Line = { kind: string } & Partial<StepResult> & { status?: string };

function jsonLines(stdout: string): Line[] {
  return stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Line);
}

test("hooks runner - unstack and clean as DevStack's scripts treat their hooks", async (t) => {
  await using git = await startGitServer();
  await using lab = await Lab.start({ hosts: [{ name: "solo" }] });
  const record = (what: string) => `echo "${what} $*" >> ${JSON.stringify(lab.shared)}\n`;
  await git.commit("first", { "devstack/plugin.sh": record("first") });
  // Ends its unstack with a command that fails when there is nothing to stop, as real plugins do (`service X reload`).
  await git.commit("falsey", { "devstack/plugin.sh": `${record("falsey")}if [[ $1 == unstack ]]; then false; fi\n` });
  await git.commit("dier", { "devstack/plugin.sh": `${record("dier")}if [[ $1 == clean ]]; then die $LINENO "cannot clean"; fi\necho "dier goes on after die $*" >> ${JSON.stringify(lab.shared)}\n` });
  await git.commit("after", { "devstack/plugin.sh": record("after") });
  await git.commit("exiter", { "devstack/settings": "exit 1\n" });
  const use = async (...plugins: string[]) => {
    const host = lab.hosts[0] as { localConf?: string };
    host.localConf = ["[[local|localrc]]", ...plugins.map((p) => `enable_plugin ${p} ${git.repoUrl(p)}`), ""].join("\n");
    await lab.apply(lab.manifest());
    writeFileSync(lab.shared, "");
  };
  const recorded = () => readFileSync(lab.shared, "utf8").trim().split("\n").filter(Boolean);

  await t.test("a plugin's unstack ending in false is a warning on the host's result, and the run succeeds", async () => {
    await use("first", "falsey", "after");
    const res = await lab.cli(["unstack", "--wait", "--json"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const unstack = jsonLines(res.stdout).find((r) => r.kind === "result" && r.step === "unstack");
    assert.equal(unstack?.status, "ok");
    assert.deepEqual(unstack?.failures, []);
    assert.ok(
      unstack?.warnings?.some((w) => /^falsey\/devstack\/plugin\.sh failed with exit status 1 \(DevStack's unstack\.sh and clean\.sh go on past it\)$/.test(w)),
      JSON.stringify(unstack?.warnings),
    );
    assert.deepEqual(recorded(), ["first unstack", "falsey unstack", "after unstack"], "every plugin's unstack ran");
    assert.equal(jsonLines(res.stdout).at(-1)?.status, "succeeded");
  });

  await t.test("die in a plugin's clean ends clean.sh's hooks: the later plugins' clean hooks do not run, and the result says so", async () => {
    await use("first", "dier", "after");
    const res = await lab.cli(["clean", "--wait", "--json"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const clean = jsonLines(res.stdout).find((r) => r.kind === "result" && r.step === "clean");
    assert.equal(clean?.status, "ok");
    assert.ok(clean?.warnings?.some((w) => /^dier\/devstack\/plugin\.sh called die \(exit status 1\): the rest of this script's hooks on solo do not run/.test(w)), JSON.stringify(clean?.warnings));
    assert.deepEqual(
      clean?.hooks?.filter((h) => h.hook.endsWith("plugin.sh")).map((h) => `${h.hook} ${h.status}`),
      ["first/devstack/plugin.sh ok", "dier/devstack/plugin.sh failed", "after/devstack/plugin.sh skipped"],
    );
    // clean is unstack.sh's hooks, then clean.sh's: the die in clean stops only clean.sh's
    assert.deepEqual(recorded(), ["first unstack", "dier unstack", "dier goes on after die unstack", "after unstack", "first clean", "dier clean"]);
  });

  await t.test("a plugin whose settings is `exit 1`: unstack --wait ends, and status answers after it", async () => {
    await use("exiter");
    const res = await lab.cli(["unstack", "--wait"], 60_000);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /source solo FAILED/);
    const status = await lab.cli(["status"], 30_000);
    assert.notEqual(status.code, null, "status returned (it was not killed after 30 s)");
    assert.match(status.stdout, /unstack/);
    assert.match(status.stdout + status.stderr, /failed/);
    const watch = await lab.cli(["watch"], 30_000);
    assert.equal(watch.code, 1, `watch ends with the run's status: ${watch.stdout}${watch.stderr}`);
  });
});
