import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger, type Bus } from "@stackbus/bus";
import { ErrorCode, StackbusError } from "@stackbus/protocol";
import { compileCoordinatorOptions, COORDINATOR_TIMEOUTS } from "./options.js";

const bus = {} as Bus;

describe("coordinator - options compiled once", () => {
  it("applies the defaults, in milliseconds", () => {
    assert.deepEqual(compileCoordinatorOptions({ bus, logger: silentLogger() }).timings, {
      configMs: 10_000,
      commandMs: 3_000,
      cancelMs: 5_000,
      tickMs: 1_000,
      saveDeadlineMs: 60_000,
      finishingGraceMs: 2_000,
      stopGraceMs: 3_000,
      agentPingMs: 1_500,
      pluginPinMs: 90_000,
    });
    assert.equal(COORDINATOR_TIMEOUTS.command, "3s");
  });

  it("takes any timeout as a duration or milliseconds, the rest default", () => {
    const { timings } = compileCoordinatorOptions({ bus, logger: silentLogger(), timeouts: { command: "1m30s", tick: 250 } });
    assert.equal(timings.commandMs, 90_000);
    assert.equal(timings.tickMs, 250);
    assert.equal(timings.cancelMs, 5_000);
  });

  it("refuses a timeout that is no duration, or zero, naming it", () => {
    assert.throws(
      () => compileCoordinatorOptions({ bus, logger: silentLogger(), timeouts: { cancel: "soon" } }),
      (err: unknown) => err instanceof StackbusError && err.code === ErrorCode.InvalidArgument && /coordinator timeout cancel "soon" is not a duration/.test(err.message),
    );
    assert.throws(() => compileCoordinatorOptions({ bus, logger: silentLogger(), timeouts: { tick: 0 } }), /coordinator timeout tick must be more than 0/);
  });
});
