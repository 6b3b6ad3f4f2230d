import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatDuration, parseDuration } from "./duration.js";

describe("durations", () => {
  it("reads milliseconds and unit strings", () => {
    assert.equal(parseDuration(1500), 1500);
    assert.equal(parseDuration("250"), 250);
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("90s"), 90_000);
    assert.equal(parseDuration("15m"), 900_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration("1m30s"), 90_000);
    assert.equal(parseDuration("1.5s"), 1500);
  });

  it("refuses what is not a duration, naming it", () => {
    for (const bad of ["", "soon", "15 minutes", "-3s", "3d"]) {
      assert.throws(() => parseDuration(bad, "--phase-timeout"), /--phase-timeout ".*" is not a duration/);
    }
  });

  it("formats for people", () => {
    assert.equal(formatDuration(850), "850ms");
    assert.equal(formatDuration(12_340), "12.3s");
    assert.equal(formatDuration(245_000), "4m05s");
    assert.equal(formatDuration(3_720_000), "1h02m");
  });
});
