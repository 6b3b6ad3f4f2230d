import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { commitToBareRepo, serveGitHttp } from "./index.js";

const git = async (...args: string[]) => (await promisify(execFile)("git", args)).stdout.trim();

/** A scratch directory removed at the end of the test's `using` scope (testkit depends on this package). */
function scratch(): { path: string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), "sb-githttp-"));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

describe("githttp - bare repositories served over smart HTTP on loopback", () => {
  it("serves a repository built from files to a real git clone, and counts the requests", async () => {
    using dir = scratch();
    const base = dir.path;
    const root = join(base, "repos");
    const sha = await commitToBareRepo(root, join(base, "work"), "plugin", { "devstack/plugin.sh": "echo hi\n" }, { tags: ["1.0.0"] });
    const server = await serveGitHttp({ root });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const dest = join(base, "clone");
      await git("clone", "-q", `${server.url}/plugin.git`, dest);
      assert.equal(readFileSync(join(dest, "devstack/plugin.sh"), "utf8"), "echo hi\n");
      assert.equal(await git("-C", dest, "rev-parse", "HEAD"), sha);
      assert.equal(await git("-C", dest, "describe", "--tags"), "1.0.0");
      assert.ok(server.requests.some((r) => r.repo === "plugin.git" && r.service === "git-upload-pack" && r.method === "POST"));
    } finally {
      await server.stop();
    }
  });

  it("answers 404 for a repository that does not exist", async () => {
    using dir = scratch();
    const base = dir.path;
    const server = await serveGitHttp({ root: join(base, "empty") });
    try {
      const res = await fetch(`${server.url}/missing.git/info/refs?service=git-upload-pack`);
      assert.equal(res.status, 404);
    } finally {
      await server.stop();
    }
  });
});
