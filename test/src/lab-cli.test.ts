import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Lab, runCli } from "./harness.js";

test("lab commands - validate, apply, show, as an operator runs them", async (t) => {
  const nats = () => ["--nats", lab.nats.url];

  await using lab = await Lab.start({ hosts: [{ name: "controller" }], agents: false, lab: "cli" });
  const dir = join(lab.dir.path, "labs");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "controller.conf"), "[[local|localrc]]\nHOST_IP=10.0.0.1\n\n[[post-config|$NOVA_CONF]]\n[DEFAULT]\ndebug = True\n");
  writeFileSync(join(dir, "compute.conf"), "[[local|localrc]]\nSERVICE_HOST=10.0.0.1\n");
  writeFileSync(
    join(dir, "good.yaml"),
    "lab: cli\nhosts:\n  - name: controller\n    wave: 1\n    localConf: controller.conf\n  - name: compute1\n    wave: 2\n    localConf: compute.conf\n",
  );
  writeFileSync(join(dir, "broken.conf"), "[[local|localrc]]\nenable_plugin a https://example.org/a\nenable_plugin a https://example.org/a2\n[[post-config]]\n");
  writeFileSync(
    join(dir, "bad.yaml"),
    [
      "lab: cli",
      "defaults:",
      "  phaseTimeout: soon",
      "hosts:",
      "  - name: controller",
      "    localConf: controller.conf",
      "  - name: compute.1",
      "    localConf: broken.conf",
      "    colour: blue",
      "",
    ].join("\n"),
  );

  await t.test("validate accepts a good lab offline and names every problem of a bad one with its file and line", async () => {
    const good = await runCli(["lab", "validate", join(dir, "good.yaml")]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /lab cli is valid \(2 hosts/);
    const bad = await runCli(["lab", "validate", join(dir, "bad.yaml")]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad\.yaml:3: defaults\.phaseTimeout/);
    assert.match(bad.stderr, /bad\.yaml:7: hosts\[1\]\.name: "compute\.1" may not contain "\."/);
    assert.match(bad.stderr, /bad\.yaml:9: hosts\[1\]\.colour/);
    assert.match(bad.stderr, /broken\.conf:3: .*enable_plugin.*a.*twice|broken\.conf:3:.*a.*broken\.conf:2/);
    assert.match(bad.stderr, /broken\.conf:4: /);
  });

  await t.test("apply stores a valid lab; an invalid one over it prints every error, exits non-zero, and the valid revision stays", async () => {
    const first = await runCli(["lab", "apply", join(dir, "good.yaml"), ...nats()]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /lab cli: revision (\d+) applied \(2 hosts\)/);
    const revision = Number(/revision (\d+)/.exec(first.stdout)?.[1]);
    const again = await runCli(["lab", "apply", join(dir, "good.yaml"), ...nats()]);
    assert.match(again.stdout, new RegExp(`unchanged, revision ${revision}`));
    const bad = await runCli(["lab", "apply", join(dir, "bad.yaml"), ...nats()]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /hosts\[1\]\.name/);
    assert.match(bad.stderr, /broken\.conf:4:/);
    assert.match(bad.stderr, /not applied: .* the current revision stays in force/);
    const show = await runCli(["lab", "show", "--json", ...nats(), "--lab", "cli"]);
    assert.equal(show.code, 0, show.stderr);
    const shown = JSON.parse(show.stdout) as { revision: number; hosts: Array<{ name: string; wave: number }> };
    assert.equal(shown.revision, revision);
    assert.deepEqual(shown.hosts.map((h) => h.name), ["controller", "compute1"]);
  });

  await t.test("show names the hosts and, with --host, refuses one the lab does not have", async () => {
    const show = await runCli(["lab", "show", "--host", "compute1", ...nats()]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /compute1 wave 2/);
    assert.doesNotMatch(show.stdout, /controller wave/);
    const missing = await runCli(["lab", "show", "--host", "compute9", ...nats()]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /lab cli has no host "compute9"; its hosts are controller, compute1/);
  });
});
