import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Lab, recordingHook } from "./harness.js";

/** Order of the phase arguments the extras.d hooks receive during a stack run. */
const PHASES = ["override_defaults", "source", "stack pre-install", "stack install", "stack post-config", "stack extra", "stack test-config"];

test("lockstep - three agent processes stack a lab phase by phase", async (t) => {
  await using lab = await Lab.start({ hosts: ["alpha", "beta", "gamma"].map((name) => ({ name })) });
  for (const h of lab.hosts) {
    // Each host sleeps a different, phase-dependent time so an unsynchronised run would interleave.
    lab.writeHostFiles({
      name: h.name,
      files: {
        "extras.d/10-record.sh": `sleep 0.0$(( (RANDOM % 5) + ${h.name === "beta" ? 5 : 1} ))\n${recordingHook(lab.shared)}`,
      },
    });
  }

  await t.test("no line of phase k+1 precedes any line of phase k, on any host", async () => {
    const res = await lab.cli(["stack", "--wait"]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const lines = readFileSync(lab.shared, "utf8").trim().split("\n").map((l) => {
      const parts = l.split(" ");
      return { host: parts[0] as string, phase: parts.slice(1, -1).join(" "), at: Number(parts[parts.length - 1]) };
    });
    assert.equal(lines.length, 3 * PHASES.length, `every host ran every phase once:\n${lines.map((l) => `${l.host} ${l.phase}`).join("\n")}`);
    for (let k = 0; k + 1 < PHASES.length; k++) {
      const thisPhase = lines.filter((l) => l.phase === PHASES[k]);
      const nextPhase = lines.filter((l) => l.phase === PHASES[k + 1]);
      assert.equal(thisPhase.length, 3, PHASES[k]);
      const lastOfThis = Math.max(...thisPhase.map((l) => l.at));
      const firstOfNext = Math.min(...nextPhase.map((l) => l.at));
      assert.ok(lastOfThis < firstOfNext, `${PHASES[k + 1]} started on a host before every host finished ${PHASES[k]}`);
    }
    assert.match(res.stdout, /succeeded/);
  });
});
