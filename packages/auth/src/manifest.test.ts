import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { tempDir } from "@stackbus/testkit";
import { InvalidManifestError, readLabHosts } from "@stackbus/lab";
import { authGenFromManifestFile } from "./manifest.js";

test("manifest - lab and host names for auth gen", async (t) => {
  using dir = tempDir("sb-authm-");
  const manifest = (name: string, text: string) => {
    const path = join(dir.path, name);
    writeFileSync(path, text);
    return path;
  };

  await t.test("reads lab: and hosts[].name and ignores the rest of the manifest", () => {
    const path = manifest("lab.yaml", "lab: demo\ndefaults: { failurePolicy: abort }\nhosts:\n  - name: controller\n    wave: 1\n  - name: compute1\n    wave: 2\n");
    assert.deepEqual(readLabHosts(path), { lab: "demo", hosts: ["controller", "compute1"] });
  });

  const bad: Array<[string, string, RegExp]> = [
    ["no lab", "hosts:\n  - name: a\n", /bad\.yaml: lab: is required/],
    ["a lab name with a dot", "lab: my.lab\nhosts:\n  - name: a\n", /bad\.yaml:1: lab: lab name "my\.lab" may not contain "\."/],
    ["no hosts", "lab: demo\n", /bad\.yaml: hosts: must be a non-empty list/],
    ["a host name with a wildcard", "lab: demo\nhosts:\n  - name: ok\n  - name: '*'\n", /bad\.yaml:4: hosts\[1\]\.name: host name "\*" may not contain the subject wildcards/],
    ["a host without a name", "lab: demo\nhosts:\n  - wave: 1\n", /bad\.yaml:3: hosts\[0\]\.name: is required/],
    ["a repeated host", "lab: demo\nhosts:\n  - name: a\n  - name: a\n", /bad\.yaml:4: hosts\[1\]\.name: host "a" is already hosts\[0\]/],
    ["broken YAML", "lab: demo\nhosts: [\n", /bad\.yaml:\d+: not valid YAML/],
  ];
  for (const [what, text, message] of bad) {
    await t.test(`refuses ${what}, naming the file, line and field`, () => {
      const path = manifest("bad.yaml", text);
      assert.throws(
        () => readLabHosts(path),
        (err: unknown) => {
          assert.ok(err instanceof InvalidManifestError, String(err));
          assert.equal(err.code, ErrorCode.InvalidManifest);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  await t.test("auth gen from a manifest writes the files, and writes nothing for a bad manifest", async () => {
    const out = join(dir.path, "out");
    const { generated, written } = await authGenFromManifestFile(
      manifest("lab.yaml", "lab: demo\nhosts:\n  - name: compute1\n"),
      out,
      { mode: "nkey" },
    );
    assert.equal(generated.lab, "demo");
    assert.ok(written.includes(join(out, "agent-compute1.nk")));
    assert.ok(existsSync(join(out, "env", "agent-compute1.env")));
    const out2 = join(dir.path, "out2");
    await assert.rejects(authGenFromManifestFile(manifest("bad.yaml", "lab: demo\nhosts: []\n"), out2, { mode: "nkey" }), InvalidManifestError);
    assert.equal(existsSync(out2), false);
    await assert.rejects(authGenFromManifestFile(join(dir.path, "missing.yaml"), out2, { mode: "nkey" }), (e: unknown) => (e as StackbusError).code === ErrorCode.NotFound);
  });

  await t.test("--update after a host is added keeps every installed identity and the signing key, issues the new host's, drops a removed host's", async () => {
    const out = join(dir.path, "grow");
    const read = (f: string) => readFileSync(join(out, f), "utf8");
    await authGenFromManifestFile(manifest("grow.yaml", "lab: demo\nhosts:\n  - name: controller\n  - name: compute1\n"), out, { mode: "nkey", listen: "127.0.0.1:4333", http: "127.0.0.1:8333" });
    assert.match(read("server.conf"), /^listen: "127\.0\.0\.1:4333"$/m);
    assert.match(read("server.conf"), /^http: "127\.0\.0\.1:8333"$/m);
    const before = { controller: read("agent-controller.nk"), coordinator: read("coordinator.nk"), signing: read("coordinator-sign.nk"), agentEnv: read("env/agent-controller.env") };
    await assert.rejects(
      authGenFromManifestFile(manifest("grow.yaml", "lab: demo\nhosts:\n  - name: controller\n  - name: compute2\n"), out, { mode: "nkey" }),
      /already|exists|--force|--update/,
      "without --update an earlier output is not replaced",
    );
    const { update } = await authGenFromManifestFile(manifest("grow.yaml", "lab: demo\nhosts:\n  - name: controller\n  - name: compute2\n"), out, { mode: "nkey", update: true });
    assert.deepEqual(update?.added, ["agent-compute2"]);
    assert.deepEqual(update?.removed, ["agent-compute1"]);
    assert.ok(update?.kept.includes("agent-controller") && update.kept.includes("coordinator"));
    assert.equal(read("agent-controller.nk"), before.controller);
    assert.equal(read("coordinator.nk"), before.coordinator);
    assert.equal(read("coordinator-sign.nk"), before.signing, "agents installed earlier go on accepting the coordinator's commands");
    assert.equal(read("env/agent-controller.env"), before.agentEnv);
    assert.ok(existsSync(join(out, "agent-compute2.nk")));
    assert.equal(existsSync(join(out, "agent-compute1.nk")), false);
    assert.doesNotMatch(read("server.conf"), /# agent-compute1$/m);
    assert.match(read("server.conf"), /# agent-compute2$/m);
    await assert.rejects(authGenFromManifestFile(manifest("grow.yaml", "lab: demo\nhosts:\n  - name: a\n"), out, { mode: "password", update: true }), /holds nkey identities/);
  });
});
