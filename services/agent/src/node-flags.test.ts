import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { AGENT_NODE_FLAGS } from "./node-flags.js";

const UNIT = new URL("../../../deploy/systemd/stackbus-agent@.service", import.meta.url);

describe("agent node flags", () => {
  it("are the NODE_OPTIONS of the agent's systemd unit", () => {
    const line = /^Environment=NODE_OPTIONS=(.*)$/m.exec(readFileSync(UNIT, "utf8"))?.[1];
    assert.equal(line, AGENT_NODE_FLAGS.join(" "));
  });

  it("are accepted by node in NODE_OPTIONS, where only some V8 flags are allowed", () => {
    const run = spawnSync(process.execPath, ["-e", "process.stdout.write('ok')"], {
      env: { ...process.env, NODE_OPTIONS: AGENT_NODE_FLAGS.join(" ") },
      encoding: "utf8",
    });
    assert.equal(run.stderr, "");
    assert.equal(run.stdout, "ok");
  });
});
