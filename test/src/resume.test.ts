import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { startGitServer } from "@stackbus/testkit";
import { Lab } from "./harness.js";

function runIdOf(output: string): string {
  const m = /run (r\d{8}T\d{6}-[0-9a-f]+)/.exec(output);
  assert.ok(m, `no run id in: ${output}`);
  return m[1] as string;
}

const plugin = (version: string, broken: boolean) => ({
  "devstack/plugin.sh": `if [[ "$1 $2" == "stack extra" ]]; then\n    echo "fixme ${version} on $STACKBUS_HOST"\n    ${broken ? '[[ $STACKBUS_HOST != cmp1 ]] || false' : "true"}\nfi\n`,
});

const NEED = 'if [[ "$1 $2" == "stack post-config" && $STACKBUS_HOST == cmp1 && ${NEED:-} != yes ]]; then echo "NEED is not yes"; false; fi\n';

test("resume picks up the fix - the lab's current revision and plugin commits, --same-config keeps both, a run undone since is refused", async (t) => {
  await using git = await startGitServer();
  const c1 = await git.commit("fixme", plugin("v1", true));
  const conf = (extra = "") => `[[local|localrc]]\nenable_plugin fixme ${git.repoUrl("fixme")} master\n${extra}`;
  await using lab = await Lab.start({
    hosts: [
      { name: "ctl", wave: 1, localConf: conf(), files: { "extras.d/20-need.sh": NEED } },
      { name: "cmp1", wave: 2, localConf: conf(), files: { "extras.d/20-need.sh": NEED } },
    ],
  });
  const head = (host: string) => readFileSync(join(lab.dest(host), "fixme", ".git", "HEAD"), "utf8").trim();
  let runId = "";
  let c2 = "";

  await t.test("the first attempt fails on cmp1 at post-config, at lab revision 1 with the plugin at its first commit", async () => {
    const first = await lab.cli(["stack", "--wait"]);
    assert.equal(first.code, 1, first.stdout + first.stderr);
    assert.match(first.stdout, /started stack run \S+ \(attempt 1\) on ctl, cmp1\n {2}lab revision 1\n/);
    runId = runIdOf(first.stdout);
    assert.match(first.stdout, /cmp1 \/ post-config \/ extras\.d\/20-need\.sh/);
    assert.equal(head("cmp1"), c1);
  });

  await t.test("the fix is applied (lab revision 2) and pushed (a new plugin commit); --same-config keeps revision 1 and the first commit, and fails again", async () => {
    lab.hosts[1] = { ...(lab.hosts[1] as (typeof lab.hosts)[number]), localConf: conf("NEED=yes\n") };
    const applied = await lab.apply(lab.manifest());
    assert.equal(applied.revision, 2);
    c2 = await git.commit("fixme", plugin("v2", false));
    const same = await lab.cli(["stack", "--resume", runId, "--same-config", "--wait"]);
    assert.equal(same.code, 1, same.stdout + same.stderr);
    assert.match(same.stdout, /resumed stack run \S+ \(attempt 2\) on ctl, cmp1\n {2}lab revision 1 and the plugin commits of attempt 1 kept \(--same-config\)\n/);
    assert.match(same.stdout, /cmp1 \/ post-config \/ extras\.d\/20-need\.sh/, "revision 1 still lacks NEED=yes");
    assert.equal(head("cmp1"), c1, "the plugin stays at the commit the run pinned");
    assert.equal((await lab.record(runId))?.configRevision, 1);
  });

  await t.test("a plain resume uses revision 2 and the pushed commit, says so and which steps run where, and succeeds", async () => {
    const resumed = await lab.cli(["stack", "--resume", runId, "--wait"]);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    assert.match(resumed.stdout, /resumed stack run \S+ \(attempt 3\) on ctl, cmp1\n {2}lab revision 1 → 2 \(the lab's current one; --same-config keeps 1\)\n/);
    assert.match(resumed.stdout, new RegExp(`\\n {2}plugin fixme \\(master\\): ${c1.slice(0, 7)} → ${c2.slice(0, 7)}\\n`));
    assert.match(resumed.stdout, /\n {2}from post-config:\n {4}prepare, override_defaults, source: run on every host \(a new session, as a new stack\.sh would\)\n {4}post-config: run on cmp1; carried on ctl\n {4}extra, test-config: run on every host\n/);
    assert.equal(head("cmp1"), c2);
    assert.equal(head("ctl"), c2, "the checkout the run placed itself is replaced, though reclone is off");
    const extra = await lab.cli(["logs", runId, "--host", "cmp1", "--step", "extra", "--hook", "fixme/devstack/plugin.sh"]);
    assert.match(extra.stdout, /fixme v2 on cmp1/);
    assert.doesNotMatch(extra.stdout, /fixme v1/);
    const record = await lab.record(runId);
    assert.equal(record?.status, "succeeded");
    assert.equal(record?.configRevision, 2);
    const need = ["--host", "cmp1", "--step", "post-config", "--hook", "extras.d/20-need.sh"];
    const first = await lab.cli(["logs", runId, "--attempt", "1", ...need]);
    assert.equal(first.stdout, "NEED is not yes\n", "one attempt's output alone");
    const every = await lab.cli(["logs", runId, ...need]);
    assert.equal(every.stdout, "── attempt 1\nNEED is not yes\n── attempt 2\nNEED is not yes\n", "attempts apart, in order (attempt 3 printed nothing there)");
    const bad = await lab.cli(["logs", runId, "--attempt", "4"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--attempt 4: run \S+ has attempts 1 to 3/);
  });

  await t.test("a run older than a later unstack of the same hosts is refused, naming the unstack run and the hosts", async () => {
    lab.writeHostFiles({ name: "ctl", files: { "extras.d/20-need.sh": NEED, "extras.d/30-late.sh": 'if [[ "$1 $2" == "stack test-config" ]]; then false; fi\n' } });
    const failed = await lab.cli(["stack", "--wait"]);
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    const stale = runIdOf(failed.stdout);
    const unstack = await lab.cli(["unstack", "--hosts", "ctl", "--wait"]);
    assert.equal(unstack.code, 0, unstack.stdout + unstack.stderr);
    const unstackId = runIdOf(unstack.stdout);
    const refused = await lab.cli(["stack", "--resume", stale, "--wait"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`run ${stale} \\(stack, started [^)]+\\) is older than unstack run ${unstackId} \\(started [^)]+\\) on ctl: what it did there was undone since, so it cannot be resumed; start a new stack run`));
  });

  await t.test("stack --lab-file applies an edited manifest or local.conf first, says which revision it runs, and applies nothing when unchanged", async () => {
    lab.writeHostFiles({ name: "ctl", files: { "extras.d/30-late.sh": "true\n" } });
    const file = join(lab.dir.path, "lab.yaml");
    writeFileSync(file, lab.manifest());
    writeFileSync(join(lab.dir.path, "ctl.conf"), conf("EDITED=1\n"));
    writeFileSync(join(lab.dir.path, "cmp1.conf"), conf("NEED=yes\n"));
    const edited = await lab.cli(["stack", "--lab-file", file, "--wait"]);
    assert.equal(edited.code, 0, edited.stdout + edited.stderr);
    const revision = Number(/lab testlab: revision (\d+) applied \(2 hosts\)/.exec(edited.stdout)?.[1]);
    assert.ok(revision >= 3, edited.stdout);
    assert.match(edited.stdout, new RegExp(`started stack run \\S+ \\(attempt 1\\) on ctl, cmp1\\n {2}lab revision ${revision}\\n`));
    const again = await lab.cli(["stack", "--lab-file", file]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`lab testlab: unchanged, revision ${revision}\\n`));
    await lab.cli(["watch", runIdOf(again.stdout)]);
  });
});
