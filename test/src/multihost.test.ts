import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Lab, recordingHook } from "./harness.js";
import { createNetns, netnsUnavailable } from "./netns.js";

const refused = await netnsUnavailable();

test("multi-host - agents in separate network namespaces reach NATS over veth", { skip: refused ? `SKIPPED, not passed: ${refused}` : false }, async (t) => {
  const ns = await createNetns(["controller", "compute1", "compute2"]);
  await using _ns = { [Symbol.asyncDispose]: () => ns.remove() };
  await using lab = await Lab.start({
    hosts: [
      { name: "controller", wave: 1 },
      { name: "compute1", wave: 2 },
      { name: "compute2", wave: 2 },
    ],
    natsHost: ns.gateway,
    agentPrefix: (host) => ns.prefix(host),
  });
  for (const h of lab.hosts) {
    lab.writeHostFiles({
      name: h.name,
      files: {
        "extras.d/10-where.sh": `${recordingHook(lab.shared, "$(hostname -I | tr -d ' ') ")}`,
        "extras.d/20-export.sh":
          'if [[ "$1 $2" == "stack install" && $STACKBUS_HOST == controller ]]; then MY_IP=$(hostname -I | tr -d " "); stackbus_export MY_IP; fi\n' +
          `if [[ "$1 $2" == "stack extra" && $STACKBUS_HOST != controller ]]; then echo "$STACKBUS_HOST sees controller at $(stackbus_fact controller MY_IP)" >> ${JSON.stringify(lab.shared)}; fi\n`,
      },
    });
  }

  await t.test("stacks in lockstep, each host running its hooks from its own address", async () => {
    const res = await lab.cli(["stack", "--wait"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = readFileSync(lab.shared, "utf8").trim().split("\n");
    const addressOf = Object.fromEntries(ns.hosts.map((h) => [h.name, h.address]));
    for (const h of ns.hosts) {
      const mine = lines.filter((l) => l.startsWith(`${h.name} `) && !l.includes(" sees "));
      assert.equal(mine.length, 7, `${h.name} ran every phase once`);
      for (const l of mine) assert.ok(l.includes(` ${h.address} `), `${h.name} ran in its namespace: ${l}`);
    }
    // the controller's address, exported in its namespace, reached the computes
    assert.ok(lines.includes(`compute1 sees controller at ${addressOf["controller"]}`), lines.join("\n"));
    // lockstep: every phase line of a phase precedes the next phase's
    const phaseOf = (l: string) => l.split(" ").slice(2, -1).join(" ");
    const at = (l: string) => Number(l.split(" ").pop());
    const order = ["override_defaults", "source", "stack pre-install", "stack install", "stack post-config", "stack extra", "stack test-config"];
    const recorded = lines.filter((l) => !l.includes(" sees "));
    for (let k = 0; k + 1 < order.length; k++) {
      const last = Math.max(...recorded.filter((l) => phaseOf(l) === order[k]).map(at));
      const first = Math.min(...recorded.filter((l) => phaseOf(l) === order[k + 1]).map(at));
      assert.ok(last < first, `${order[k + 1]} began before ${order[k]} ended everywhere`);
    }
  });
});
