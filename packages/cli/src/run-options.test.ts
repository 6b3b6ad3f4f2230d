import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMaxFail, runRequest } from "./commands/run.js";

describe("cli - run options", () => {
  it("reads --max-fail as a count or a percentage", () => {
    assert.deepEqual(parseMaxFail("2"), { count: 2 });
    assert.deepEqual(parseMaxFail("25%"), { percent: 25 });
    assert.deepEqual(parseMaxFail("0"), { count: 0 });
    for (const bad of ["two", "1.5", "150%", "-1", ""]) assert.throws(() => parseMaxFail(bad), /--max-fail/);
  });

  it("builds the run request from the flags, durations included", () => {
    assert.deepEqual(runRequest("stack", { hosts: "controller, compute1", failurePolicy: "continue", phaseTimeout: "15m", ackTimeout: "30s", maxFail: "10%" }), {
      kind: "stack",
      hosts: ["controller", "compute1"],
      failurePolicy: "continue",
      phaseTimeoutMs: 900_000,
      ackTimeoutMs: 30_000,
      maxFail: { percent: 10 },
    });
  });

  it("reads --wave-steps as every step, none, or a list of the kind's steps", () => {
    assert.equal(runRequest("stack", { waveSteps: "every" }).waveSteps, null);
    assert.deepEqual(runRequest("stack", { waveSteps: "none" }).waveSteps, []);
    assert.deepEqual(runRequest("stack", { waveSteps: "extra, test-config" }).waveSteps, ["extra", "test-config"]);
    assert.throws(() => runRequest("unstack", { waveSteps: "extra" }), /--wave-steps: a unstack run has no step "extra"; its steps are prepare, override_defaults, source, unstack, finally/);
  });

  it("refuses a host list with a bad name, naming it", () => {
    assert.throws(() => runRequest("stack", { hosts: "controller,compute.1" }), /host name "compute.1" may not contain "."/);
  });

  it("refuses --from without --resume, and a step the run kind does not have", () => {
    assert.throws(() => runRequest("stack", { from: "install" }), /--from goes with --resume/);
    assert.throws(() => runRequest("unstack", { resume: "r1", from: "install" }), /an unstack run has no step "install"|a unstack run has no step "install"/);
    assert.deepEqual(runRequest("stack", { resume: "r1", from: "post-config" }), { kind: "stack", resume: "r1", from: "post-config" });
  });

  it("refuses a bad duration, naming the option", () => {
    assert.throws(() => runRequest("stack", { phaseTimeout: "soon" }), /--phase-timeout "soon" is not a duration/);
  });

  it("takes every timeout flag as a duration or as milliseconds", () => {
    assert.deepEqual(runRequest("stack", { heartbeatTimeout: "1500", ackTimeout: "1m30s", phaseTimeout: "1h" }), {
      kind: "stack",
      phaseTimeoutMs: 3_600_000,
      ackTimeoutMs: 90_000,
      heartbeatTimeoutMs: 1500,
    });
  });
});
