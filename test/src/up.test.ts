import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { freePort, processAlive, tempDir, waitFor } from "@stackbus/testkit";
import { runCli, spawnCli } from "./harness.js";

describe("stackbus up - the whole stack as one foreground process tree", () => {
  it("starts nats-server, the services and an agent per local host, runs a stack, and stops everything on Ctrl-C", async () => {
    using dir = tempDir("sb-up-");
    const labDir = join(dir.path, "lab");
    for (const host of ["one", "two"]) {
      mkdirSync(join(labDir, host, "devstack", "extras.d"), { recursive: true });
      writeFileSync(join(labDir, host, "devstack", "extras.d", "10-hi.sh"), `echo "$STACKBUS_HOST $*" >> ${JSON.stringify(join(dir.path, "trace"))}\n`);
    }
    writeFileSync(join(labDir, "host.conf"), "[[local|localrc]]\nENABLED_SERVICES=\n");
    writeFileSync(
      join(labDir, "lab.yaml"),
      ["lab: uplab", "hosts:", ...["one", "two"].flatMap((h) => [`  - name: ${h}`, "    local: true", `    topDir: ${h}/devstack`, `    dest: ${h}/stack`, "    localConf: host.conf"]), ""].join("\n"),
    );
    const port = await freePort();
    const up = spawnCli("up", ["up", "--lab", join(labDir, "lab.yaml"), "--port", String(port), "--data-dir", join(dir.path, "data")]);
    await waitFor("stackbus up to be ready", () => up.output().includes("ready."), 60_000);
    assert.match(up.output(), /agents running for one, two/);
    const nats = ["--nats", `nats://127.0.0.1:${port}`];
    const res = await runCli(["stack", "--wait", ...nats]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.equal(readFileSync(join(dir.path, "trace"), "utf8").split("\n").filter((l) => l.startsWith("one ")).length, 7);
    const pids = childPids(up.child.pid as number);
    assert.ok(pids.length >= 6, `nats-server, three services and two agents run under up: ${pids.length}`);
    up.child.kill("SIGINT");
    assert.equal(await up.exited(), 0);
    await waitFor("every process of the tree to end", () => pids.every((p) => !processAlive(p)), 15_000);
    const unreachable = await runCli(["runs", ...nats, "--lab", "uplab"]);
    assert.equal(unreachable.code, 3, "the bus is gone with it");
    assert.match(unreachable.stderr, /cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+.*stackbus up/);
  });
});

function childPids(parent: number): number[] {
  const out = execFileSync("ps", ["-eo", "pid=,ppid="]).toString();
  return out
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter(([, ppid]) => ppid === parent)
    .map(([pid]) => pid as number);
}
