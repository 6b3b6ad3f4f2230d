import assert from "node:assert/strict";
import { test } from "node:test";
import { Lab } from "./harness.js";

function runIdOf(output: string): string {
  const m = /run (r\d{8}T\d{6}-[0-9a-f]+)/.exec(output);
  assert.ok(m, `no run id in: ${output}`);
  return m[1] as string;
}

test("failures as the operator reads them - the failing command and its place, facts that fail closed", async (t) => {
  await using lab = await Lab.start({ hosts: [{ name: "ctl", wave: 1 }, { name: "cmp1", wave: 2 }] });
  const reset = () => {
    for (const h of lab.hosts) lab.writeHostFiles({ name: h.name, files: { "extras.d/20-break.sh": "true\n", "extras.d/30-facts.sh": "true\n" } });
  };

  await t.test("a failing command inside a hook's function is named with file:function:line in --wait, status and watch", async () => {
    reset();
    const hook = [
      "configure_thing() {",
      '    echo "configuring $STACKBUS_HOST"',
      "    grep -q needle /nonexistent/stackbus-file",
      '    echo "not reached"',
      "}",
      'if [[ "$1 $2" == "stack post-config" && $STACKBUS_HOST == cmp1 ]]; then configure_thing; fi',
      "",
    ].join("\n");
    lab.writeHostFiles({ name: "cmp1", files: { "extras.d/20-break.sh": hook } });
    const waited = await lab.cli(["stack", "--wait"]);
    assert.equal(waited.code, 1, waited.stdout + waited.stderr);
    const runId = runIdOf(waited.stdout);
    const named = /cmp1 \/ post-config \/ extras\.d\/20-break\.sh \/ exit 2: extras\.d\/20-break\.sh failed with exit status 2\n\s+failing command: grep -q needle \/nonexistent\/stackbus-file {2}at extras\.d\/20-break\.sh:configure_thing:3\n/;
    assert.match(waited.stdout, named, "--wait");
    assert.match(waited.stdout, /\| configuring cmp1/);
    assert.doesNotMatch(waited.stdout, /not reached/);
    const status = await lab.cli(["status", runId]);
    assert.equal(status.code, 1);
    assert.match(status.stdout, named, "status");
    const plain = await lab.cli(["watch", runId]);
    assert.match(plain.stdout, named, "watch, piped");
    const json = JSON.parse((await lab.cli(["status", runId, "--json"])).stdout) as { failures: Array<{ command?: string; location?: string }> };
    assert.deepEqual(json.failures.map((f) => [f.command, f.location]), [["grep -q needle /nonexistent/stackbus-file", "extras.d/20-break.sh:configure_thing:3"]]);
  });

  await t.test("stackbus_fact for a fact the controller never exported fails the compute's hook naming host and fact; a default lets it go on", async () => {
    reset();
    const facts = [
      'if [[ "$1 $2" == "stack install" && $STACKBUS_HOST == ctl ]]; then TOKEN=abc123; stackbus_export TOKEN; fi',
      'if [[ "$1 $2" == "stack post-config" && $STACKBUS_HOST == cmp1 ]]; then',
      "    TOKEN=$(stackbus_fact ctl TOKEN)",
      '    REGION=$(stackbus_fact ctl REGION_NAME "${REGION_DEFAULT:-RegionOne}")',
      '    echo "token=$TOKEN region=$REGION"',
      "    MISSING=$(stackbus_fact ctl ${WANT:-TOKEN})",
      '    echo "missing=$MISSING"',
      "fi",
      "",
    ].join("\n");
    for (const h of lab.hosts) lab.writeHostFiles({ name: h.name, files: { "extras.d/30-facts.sh": facts } });
    const ok = await lab.cli(["stack", "--wait"]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const okRun = runIdOf(ok.stdout);
    const printed = await lab.cli(["logs", okRun, "--host", "cmp1", "--step", "post-config", "--hook", "extras.d/30-facts.sh"]);
    assert.equal(printed.stdout, "token=abc123 region=RegionOne\nmissing=abc123\n");

    lab.writeHostFiles({ name: "cmp1", localConf: "[[local|localrc]]\nWANT=DB_HOST\n", files: { "extras.d/30-facts.sh": facts } });
    await lab.apply(lab.manifest(), { "ctl.conf": "[[local|localrc]]\n", "cmp1.conf": "[[local|localrc]]\nWANT=DB_HOST\n" });
    const failed = await lab.cli(["stack", "--wait"]);
    assert.equal(failed.code, 1, failed.stdout + failed.stderr);
    assert.match(failed.stdout, /cmp1 \/ post-config \/ extras\.d\/30-facts\.sh \/ exit 1/);
    assert.match(failed.stdout, /failing command: MISSING=\$\(stackbus_fact ctl \$\{WANT:-TOKEN\}\) {2}at extras\.d\/30-facts\.sh:source:6/);
    assert.match(failed.stdout, /\| stackbus_fact: host ctl has not exported DB_HOST in this run/);
    assert.doesNotMatch(failed.stdout, /missing=/);
  });
});
