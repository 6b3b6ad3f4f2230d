import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ACK_AFTER_MS, ackAfterMs } from "./ledger.js";

describe("ledger - when a step still running is acknowledged", () => {
  it("after a second, or a quarter of the run's ack or heartbeat timeout when that is shorter", () => {
    assert.equal(ACK_AFTER_MS, 1_000);
    assert.equal(ackAfterMs({}), 1_000, "a coordinator that does not say its timeouts");
    assert.equal(ackAfterMs({ ackTimeoutMs: 30_000, heartbeatTimeoutMs: 15_000 }), 1_000, "the lab defaults");
    assert.equal(ackTimeoutOf(1_500), 375);
    assert.equal(ackAfterMs({ ackTimeoutMs: 30_000, heartbeatTimeoutMs: 2_000 }), 500);
  });
});

function ackTimeoutOf(ackTimeoutMs: number): number {
  return ackAfterMs({ ackTimeoutMs, heartbeatTimeoutMs: 60_000 });
}
