import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger, type Bus } from "@stackbus/bus";
import { compileConfigServiceOptions, CONFIG_SERVICE_DEFAULTS } from "./service.js";

const bus = {} as Bus;

describe("config service - options compiled once", () => {
  it("keeps 10 revisions per lab unless told otherwise", () => {
    assert.equal(compileConfigServiceOptions({ bus, logger: silentLogger() }).history, CONFIG_SERVICE_DEFAULTS.history);
    assert.equal(CONFIG_SERVICE_DEFAULTS.history, 10);
    assert.equal(compileConfigServiceOptions({ bus, logger: silentLogger(), history: 3 }).history, 3);
  });

  it("refuses a history JetStream cannot keep, naming it", () => {
    for (const history of [0, 65, 2.5]) {
      assert.throws(() => compileConfigServiceOptions({ bus, logger: silentLogger(), history }), /config service history .* must be a whole number from 1 to 64/);
    }
  });
});
