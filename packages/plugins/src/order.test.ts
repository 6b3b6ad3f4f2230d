import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode } from "@stackbus/protocol";
import { PluginOrderError } from "./errors.js";
import { orderPlugins, requirementWarnings } from "./order.js";

const p = (name: string, ...requires: string[]) => ({ name, requires });

describe("orderPlugins - registration order by default, dependency order on request", () => {
  it("registration order keeps the enable_plugin order and ignores requirements, as DevStack does", () => {
    const plugins = [p("a", "b"), p("b", "c"), p("c"), p("d", "missing")];
    assert.deepEqual(orderPlugins(plugins, "registration"), ["a", "b", "c", "d"]);
  });

  it("dependency order puts a chain a -> b -> c as c, b, a (DevStack's generator gives b, c, a)", () => {
    assert.deepEqual(orderPlugins([p("a", "b"), p("b", "c"), p("c")], "requires"), ["c", "b", "a"]);
  });

  it("dependency order moves only what a requirement forces and keeps registration order otherwise", () => {
    const plugins = [p("x"), p("a", "c"), p("b"), p("c"), p("y")];
    assert.deepEqual(orderPlugins(plugins, "requires"), ["x", "c", "a", "b", "y"]);
  });

  it("dependency order puts shared requirements once, before their first user, in the order they are listed", () => {
    const plugins = [p("web", "db", "cache"), p("api", "cache"), p("cache"), p("db", "cache")];
    assert.deepEqual(orderPlugins(plugins, "requires"), ["cache", "db", "web", "api"]);
  });

  it("a plugin with no requirements in dependency order is the identity", () => {
    assert.deepEqual(orderPlugins([p("c"), p("a"), p("b")], "requires"), ["c", "a", "b"]);
  });

  it("a requirement that is not enabled is a PLUGIN_ORDER error naming both plugins", () => {
    assert.throws(
      () => orderPlugins([p("a", "b"), p("c", "d")], "requires"),
      (err: unknown) => {
        assert.ok(err instanceof PluginOrderError);
        assert.equal(err.code, ErrorCode.PluginOrder);
        assert.match(err.message, /a requires b; c requires d/);
        assert.deepEqual(err.missing, [
          { plugin: "a", requires: "b" },
          { plugin: "c", requires: "d" },
        ]);
        return true;
      },
    );
  });

  it("a cycle is a PLUGIN_ORDER error naming the plugins around it", () => {
    assert.throws(
      () => orderPlugins([p("x"), p("a", "b"), p("b", "c"), p("c", "a")], "requires"),
      (err: unknown) => {
        assert.ok(err instanceof PluginOrderError);
        assert.deepEqual(err.cycle, ["a", "b", "c", "a"]);
        assert.match(err.message, /a -> b -> c -> a/);
        return true;
      },
    );
  });

  it("a plugin requiring itself is a cycle", () => {
    assert.throws(() => orderPlugins([p("a", "a")], "requires"), (err: unknown) => {
      assert.deepEqual((err as PluginOrderError).cycle, ["a", "a"]);
      return true;
    });
  });

  it("a name enabled twice is refused in either mode", () => {
    for (const mode of ["registration", "requires"] as const) {
      assert.throws(() => orderPlugins([p("a"), p("b"), p("a")], mode), (err: unknown) => {
        assert.ok(err instanceof PluginOrderError);
        assert.deepEqual(err.duplicates, ["a"]);
        assert.match(err.message, /plugin a enabled twice/);
        return true;
      });
    }
  });
});

describe("requirementWarnings - what registration order gets wrong, said out loud", () => {
  it("names a missing requirement and one enabled too late; says nothing when the order is right", () => {
    assert.deepEqual(requirementWarnings([p("a", "b"), p("b"), p("c", "zz")]), [
      "plugin a requires b, which is enabled after it and so runs after it in registration order",
      "plugin c requires zz, which is not enabled",
    ]);
    assert.deepEqual(requirementWarnings([p("b"), p("a", "b")]), []);
  });
});
