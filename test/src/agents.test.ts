import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigApplyReplySchema, ConfigApplyRequestSchema, PingReplySchema, PingRequestSchema, subjects } from "@stackbus/protocol";
import { waitFor } from "@stackbus/testkit";
import { Lab, spawnCli } from "./harness.js";

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test("agents you can see - stackbus agents, agents for hosts or labs that do not exist, messages in hosts not subjects", async (t) => {
  await using lab = await Lab.start({ hosts: [{ name: "ctl", wave: 1 }, { name: "cmp1", wave: 2 }, { name: "cmp2", wave: 2 }], agents: false });
  lab.startAgent("ctl");
  lab.startAgent("cmp1");
  await lab.waitForAgents(["ctl", "cmp1"]);

  await t.test("agents lists every host with its agent (version, process, heartbeat, idle) and the hosts with none; exit 1 while one has none", async () => {
    const res = await lab.cli(["agents"]);
    assert.equal(res.code, 1, res.stdout + res.stderr);
    assert.match(res.stdout, /lab testlab \(revision \d+\): 2 of 3 hosts have agents/);
    assert.match(res.stdout, /^host +wave +runner +agent +version +pid@machine +up +heartbeat +doing$/m);
    assert.match(res.stdout, /^ctl +1 +hooks +connected +0\.1\.0 +\d+@\S+ +[\d.]+m?s +[\d.]+m?s ago +idle$/m);
    assert.match(res.stdout, /^cmp2 +2 +hooks +none +- +- +- +- +no agent answers: start `stackbus agent --host cmp2` there$/m);
    const rows = jsonLines((await lab.cli(["agents", "--json"])).stdout);
    assert.deepEqual(rows.map((r) => [r["host"], r["agent"] === null]), [["ctl", false], ["cmp1", false], ["cmp2", true]]);
    const ctl = rows[0]?.["agent"] as { pid: number; version: string; busy: unknown; heartbeatMs: number };
    assert.equal(ctl.version, "0.1.0");
    assert.equal(ctl.busy, null);
    assert.equal(ctl.heartbeatMs, 300);
  });

  await t.test("a busy agent says which run, step and hook it runs", async () => {
    lab.writeHostFiles({ name: "cmp1", files: { "extras.d/10-slow.sh": 'if [[ "$1 $2" == "stack install" ]]; then sleep 20.5; fi\n' } });
    const started = await lab.cli(["stack", "--hosts", "ctl,cmp1", "--json"]);
    assert.equal(started.code, 0, started.stderr);
    const runId = (JSON.parse(started.stdout) as { runId: string }).runId;
    const busy = await waitFor("cmp1 busy in install", async () => {
      const rows = jsonLines((await lab.cli(["agents", "--json"])).stdout);
      const a = rows.find((r) => r["host"] === "cmp1")?.["agent"] as { busy: { runId: string; step: string } | null; hook: string | null } | null;
      return a?.busy?.step === "install" ? a : undefined;
    }, 30_000, 200);
    assert.equal(busy.busy?.runId, runId);
    assert.equal(busy.hook, "extras.d/10-slow.sh");
    const table = await lab.cli(["agents"]);
    assert.match(table.stdout, new RegExp(`^cmp1 .* busy: ${runId} install`, "m"));
    assert.equal((await lab.cli(["cancel", runId])).code, 0);
    await lab.cli(["watch", runId]);
    lab.writeHostFiles({ name: "cmp1", files: { "extras.d/10-slow.sh": "true\n" } });
  });

  await t.test("plan for a host without an agent names the host and says to start its agent, not a subject", async () => {
    const res = await lab.cli(["plan", "--hosts", "cmp2"]);
    assert.equal(res.code, 1);
    assert.match(res.stdout, /no plan: the agent of host cmp2 in lab testlab does not answer: is its agent running\? \(stackbus agents lists/);
    assert.doesNotMatch(res.stdout + res.stderr, /sb\.testlab/);
  });

  await t.test("an agent started for a host the lab does not have says so, naming the lab's hosts, and exits 2", async () => {
    const agent = spawnCli("agent-nosuch", ["agent", "--host", "nosuch", "--lab", lab.name, "--top-dir", lab.topDir("cmp2"), "--dest", lab.dest("cmp2"), "--state-dir", join(lab.hostDir("cmp2"), "nosuch-state"), ...lab.natsArgs]);
    const code = await Promise.race([agent.exited(), new Promise((r) => setTimeout(() => r("still running"), 20_000))]);
    await agent.kill();
    assert.equal(code, 2, agent.output());
    assert.match(agent.output(), /cannot start the agent: host "nosuch" is not in lab "testlab" \(its hosts: ctl, cmp1, cmp2\)/);
  });

  await t.test("an agent started for a lab not applied yet waits, warning, and starts once the lab is applied", async () => {
    const agent = spawnCli("agent-later", ["agent", "--host", "h1", "--lab", "later", "--top-dir", lab.topDir("cmp2"), "--dest", lab.dest("cmp2"), "--state-dir", join(lab.hostDir("cmp2"), "later-state"), ...lab.natsArgs]);
    try {
      await waitFor("the warning", () => /lab \\?"later\\?" is not applied yet: waiting for/.test(agent.output()), 20_000, 100);
      assert.equal(agent.child.exitCode, null, "it waits");
      const files = { "h1.conf": "[[local|localrc]]\n" };
      const reply = await lab.bus.request(subjects.configApply("later"), ConfigApplyRequestSchema, { file: "later.yaml", text: "lab: later\nhosts:\n  - name: h1\n    localConf: h1.conf\n", files }, ConfigApplyReplySchema);
      assert.equal(reply.lab, "later");
      const info = await waitFor("the agent of h1 in lab later", () => lab.bus.request(subjects.hostPing("later", "h1"), PingRequestSchema, {}, PingReplySchema, { timeoutMs: 500 }).catch(() => undefined), 30_000, 200);
      assert.equal(info.lab, "later");
    } finally {
      await agent.kill();
    }
  });
});
