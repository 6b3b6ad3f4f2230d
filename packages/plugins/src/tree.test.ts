import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_PLUGIN_LIMITS, ErrorCode, type PluginLimits } from "@stackbus/protocol";
import { PluginContentError, PluginLimitError } from "./errors.js";
import { TreeWalk, checkTreePath, symlinkEscapes } from "./tree.js";

const limits = (over: Partial<PluginLimits> = {}): PluginLimits => ({ ...DEFAULT_PLUGIN_LIMITS, ...over });
const walk = (over: Partial<PluginLimits> = {}) => new TreeWalk("bomb", limits(over), "its archive", "nothing was unpacked");

function limitError(limit: string, value: number, max: number) {
  return (err: unknown) => {
    assert.ok(err instanceof PluginLimitError, String(err));
    assert.equal(err.code, ErrorCode.TooLarge);
    assert.deepEqual([err.plugin, err.limit, err.value, err.max], ["bomb", limit, value, max]);
    assert.match(err.message, new RegExp(`^plugin bomb: its archive.* more than the ${max} allowed \\(plugins\\.limits\\.${limit}\\); nothing was unpacked$`));
    return true;
  };
}

describe("TreeWalk - a plugin's tree against its limits, entry by entry", () => {
  it("stops at the first entry over maxFiles, naming the plugin, the limit and the count", () => {
    const w = walk({ maxFiles: 3 });
    for (const p of ["a", "a/b", "a/c"]) w.add(p, p === "a" ? "directory" : "file", { size: 1 });
    assert.throws(() => w.add("a/d", "file", { size: 1 }), limitError("maxFiles", 4, 3));
  });

  it("refuses a path deeper than maxDepth, a file larger than maxFileBytes (not the repository's own pack) and more bytes than maxUnpackedBytes", () => {
    assert.throws(() => walk({ maxDepth: 2 }).add("a/b/c", "file"), limitError("maxDepth", 3, 2));
    assert.throws(() => walk({ maxFileBytes: 10 }).add("big.bin", "file", { size: 11 }), limitError("maxFileBytes", 11, 10));
    walk({ maxFileBytes: 10 }).add(".git/objects/pack/pack-1.pack", "file", { size: 11 });
    const w = walk({ maxUnpackedBytes: 10 });
    w.add("a", "file", { size: 6 });
    assert.throws(() => w.add("b", "file", { size: 6 }), limitError("maxUnpackedBytes", 12, 10));
  });

  it("refuses symbolic links out of the tree, paths through a link, absolute and .. paths", () => {
    const w = walk();
    w.add("devstack", "directory");
    w.add("devstack/lib", "symlink", { target: "../lib" });
    assert.throws(() => w.add("devstack/lib/x", "file"), (e: unknown) => e instanceof PluginContentError && /is inside devstack\/lib, a symbolic link/.test(e.message));
    for (const [path, target] of [["evil", "../../etc"], ["abs", "/etc/passwd"], ["d/e", "../../x"]] as const) {
      assert.throws(() => walk().add(path, "symlink", { target }), (e: unknown) => {
        assert.ok(e instanceof PluginContentError);
        assert.equal(e.code, ErrorCode.PluginSource);
        assert.equal(e.path, path);
        assert.match(e.message, /is a symbolic link to .*, outside the plugin's tree; nothing was unpacked$/);
        return true;
      });
    }
    assert.equal(checkTreePath("a/../b"), "climbs out of the plugin's tree (..)");
    assert.equal(checkTreePath("/etc"), "is an absolute path");
    assert.equal(symlinkEscapes("a/b/link", "../c"), false);
    assert.equal(symlinkEscapes("a/link", "../../c"), true);
  });
});
