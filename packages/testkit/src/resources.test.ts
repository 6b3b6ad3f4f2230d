import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { startGitServer } from "./git.js";
import { startNats } from "./nats.js";
import { processAlive, tempDir } from "./util.js";

describe("testkit - resources clean themselves at the end of a using scope", () => {
  it("a nats-server, a git server and a temp dir are gone after the scope", async () => {
    let pid = 0;
    let store = "";
    let dir = "";
    let git = "";
    {
      await using server = await startNats();
      await using repos = await startGitServer();
      using scratch = tempDir();
      pid = server.pid ?? 0;
      store = server.storeDir;
      dir = scratch.path;
      git = repos.root;
      await repos.commit("p", { "README": "x\n" });
      assert.ok(processAlive(pid) && existsSync(store) && existsSync(dir) && existsSync(git));
    }
    assert.equal(processAlive(pid), false, "the nats-server was stopped");
    assert.equal(existsSync(store), false, "its store was removed");
    assert.equal(existsSync(dir), false, "the temp dir was removed");
    assert.equal(existsSync(git), false, "the git server's repositories were removed");
  });

  it("also when the scope throws", async () => {
    let pid = 0;
    let dir = "";
    await assert.rejects(async () => {
      await using server = await startNats();
      using scratch = tempDir();
      pid = server.pid ?? 0;
      dir = scratch.path;
      throw new Error("the test failed");
    }, /the test failed/);
    assert.equal(processAlive(pid), false);
    assert.equal(existsSync(dir), false);
  });
});
