import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { silentLogger } from "@stackbus/bus";
import { PluginContentError, PluginLimitError } from "@stackbus/plugins";
import { DEFAULT_PLUGIN_LIMITS, ErrorCode, type LabPluginAccess, type PluginLimits } from "@stackbus/protocol";
import { gitEnv, startGitServer, tempDir, type GitServer } from "@stackbus/testkit";
import { GitCache } from "./gitcache.js";
import { resolveSource } from "./source.js";

const run = promisify(execFile);
const GIT_ENV = gitEnv();

/** git in `cwd`, with `input` on stdin. */
function git(cwd: string, args: string[], input?: string | Buffer): string {
  return execFileSync("git", args, { cwd, env: GIT_ENV, input, maxBuffer: 64 * 1024 * 1024 }).toString("utf8").trim();
}

/**
 * Lets the event loop catch up after building a repository: while git ran synchronously, the
 * git server closed the HTTP client's idle kept-alive sockets, and a request sent before the
 * loop sees that would be reset.
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

/** A bare repository built with git's plumbing, so trees can be reused (tree bombs) and blobs streamed (blob bombs). */
class BareRepo {
  constructor(readonly path: string) {
    git(join(path, ".."), ["init", "-q", "--bare", "-b", "master", path]);
  }
  blob(content: string | Buffer): string {
    return git(this.path, ["hash-object", "-w", "--stdin"], content);
  }
  /** Many blobs with one git process: their ids, in order. */
  blobs(contents: string[]): string[] {
    const scratch = mkdtempSync(join(tmpdir(), "sb-blobs-"));
    try {
      const paths = contents.map((c, i) => {
        const path = join(scratch, String(i));
        writeFileSync(path, c);
        return path;
      });
      return git(this.path, ["hash-object", "-w", "--stdin-paths"], paths.join("\n") + "\n").split("\n");
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  /** A blob of `bytes` zeros, streamed to git (never held in memory or written out whole). */
  async zeros(bytes: number): Promise<string> {
    const { stdout } = await run("bash", ["-c", `head -c ${bytes} /dev/zero | git hash-object -w --stdin`], { cwd: this.path, env: GIT_ENV });
    return stdout.trim();
  }
  /** A tree from `[mode, type, oid, name]` entries. */
  tree(entries: Array<[string, "blob" | "tree", string, string]>): string {
    return git(this.path, ["mktree"], entries.map(([mode, type, oid, name]) => `${mode} ${type} ${oid}\t${name}`).join("\n") + "\n");
  }
  commit(tree: string): string {
    const commit = git(this.path, ["commit-tree", tree, "-m", "bomb"]);
    git(this.path, ["update-ref", "refs/heads/master", commit]);
    return commit;
  }
  /** A tree holding devstack/plugin.sh and `extra`. */
  pluginTree(extra: Array<[string, "blob" | "tree", string, string]>): string {
    const devstack = this.tree([["100755", "blob", this.blob("echo plugin\n"), "plugin.sh"]]);
    return this.tree([["040000", "tree", devstack, "devstack"], ...extra]);
  }
}

describe("git cache - refs, bounds on what a repository may expand to, and memory released after each resolve", () => {
  let gitServer: GitServer;
  const dir = tempDir("sb-gitcache-");
  let cache: GitCache;
  const access = (limits: Partial<PluginLimits> = {}): LabPluginAccess => ({
    order: "registration",
    reclone: false,
    offline: false,
    mirrors: [],
    allowSchemes: ["http"],
    credentials: [],
    hosts: ["h1"],
    plugins: [],
    limits: { ...DEFAULT_PLUGIN_LIMITS, ...limits },
  });
  const source = (name: string, limits: Partial<PluginLimits> = {}) => resolveSource(name, gitServer.repoUrl(name), access(limits));
  const context = (name: string) => ({ plugin: name, url: gitServer.repoUrl(name) });
  const bare = (name: string) => new BareRepo(gitServer.repoPath(name));

  before(async () => {
    gitServer = await startGitServer();
    cache = new GitCache({ dir: join(dir.path, "cache"), logger: silentLogger() });
  });
  after(async () => {
    await gitServer.stop();
    dir.remove();
  });

  it("enable_plugin NAME URL HEAD resolves to the commit of the remote's default branch, and offline from the cache afterwards", async () => {
    await gitServer.commit("headed", { "devstack/plugin.sh": "echo 1\n" });
    const tip = await gitServer.commit("headed", { "devstack/plugin.sh": "echo 2\n" }, { branch: "main" });
    git(gitServer.repoPath("headed"), ["symbolic-ref", "HEAD", "refs/heads/main"]);
    const src = source("headed");
    const resolved = await cache.hold(src, () => cache.resolve(src, context("headed"), "HEAD"));
    assert.deepEqual(resolved, { commit: tip, fullref: "refs/heads/main" });
    assert.equal(await cache.resolveLocal(src, context("headed"), "HEAD"), tip);
    const built = await cache.hold(src, () => cache.archive(src, context("headed"), tip));
    assert.ok(built.size > 0);
    rmSync(built.file);
  });

  it("refuses a 512 MB blob of zeros in a 2.4 MB repository before isomorphic-git inflates it: no clone left, memory held back (issue 17, item 8)", async () => {
    const repo = bare("blobbomb");
    repo.commit(repo.pluginTree([["100644", "blob", await repo.zeros(512 * 1024 * 1024), "zeros"]]));
    await settle();
    const src = source("blobbomb");
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      await assert.rejects(cache.hold(src, () => cache.resolve(src, context("blobbomb"), "master")), (err: unknown) => {
        assert.ok(err instanceof PluginLimitError, String(err));
        assert.equal(err.code, ErrorCode.TooLarge);
        assert.deepEqual([err.plugin, err.limit, err.value, err.max], ["blobbomb", "maxFileBytes", 512 * 1024 * 1024, DEFAULT_PLUGIN_LIMITS.maxFileBytes]);
        assert.match(err.message, /^plugin blobbomb: its repository has a file of 536870912 bytes, more than the 67108864 allowed \(plugins\.limits\.maxFileBytes\); nothing was fetched$/);
        return true;
      });
    } finally {
      clearInterval(sampler);
    }
    assert.ok(peak - rssBefore < 300 * 1024 * 1024, `the fetcher grew by ${Math.round((peak - rssBefore) / 1048576)} MB`);
    assert.equal(cache.heldSources, 0);
    assert.deepEqual(readdirSync(join(dir.path, "cache", "repos")).filter((d) => d === src.key), [], "the refused clone was removed");
  });

  it("refuses a tree bomb before a file of its checkout is written: the issue's 10,008 entries under a lab's 5,000, ten times that under the default", async () => {
    const repo = bare("treebomb");
    const blobs = repo.blobs(Array.from({ length: 1_250 }, (_, i) => `f${i}\n`));
    const files = repo.tree(blobs.map((oid, i) => ["100644", "blob", oid, `f${i}`] as [string, "blob", string, string]));
    const layer = repo.tree(Array.from({ length: 8 }, (_, i) => ["040000", "tree", files, `d${i}`] as [string, "tree", string, string]));
    const small = repo.commit(repo.pluginTree([["040000", "tree", layer, "bomb"]]));
    await settle();
    const strict = source("treebomb", { maxFiles: 5_000 });
    await cache.hold(strict, () => cache.resolve(strict, context("treebomb"), "master"));
    await assert.rejects(cache.hold(strict, () => cache.archive(strict, context("treebomb"), small)), (err: unknown) => {
      assert.ok(err instanceof PluginLimitError, String(err));
      assert.deepEqual([err.limit, err.value, err.max], ["maxFiles", 5_001, 5_000]);
      assert.match(err.message, new RegExp(`^plugin treebomb: its checkout at ${small.slice(0, 12)} has 5001 files, more than the 5000 allowed \\(plugins\\.limits\\.maxFiles\\); no archive was built$`));
      return true;
    });
    const deeper = repo.tree(Array.from({ length: 10 }, (_, i) => ["040000", "tree", layer, `e${i}`] as [string, "tree", string, string]));
    const big = repo.commit(repo.pluginTree([["040000", "tree", deeper, "bomb"]]));
    await settle();
    const defaults = source("treebomb");
    await cache.hold(defaults, () => cache.resolve(defaults, context("treebomb"), "master"));
    await assert.rejects(cache.hold(defaults, () => cache.archive(defaults, context("treebomb"), big)), (err: unknown) => {
      assert.ok(err instanceof PluginLimitError, String(err));
      assert.deepEqual([err.limit, err.value], ["maxFiles", DEFAULT_PLUGIN_LIMITS.maxFiles + 1]);
      return true;
    });
    assert.deepEqual(readdirSync(join(dir.path, "cache", "tmp")), [], "no stage or archive left");
  });

  it("refuses a checkout that writes more than maxUnpackedBytes, and a symbolic link out of the tree, leaving no stage behind", async () => {
    const repo = bare("wide");
    const random = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7919) % 251));
    const wide = repo.commit(repo.pluginTree(["a", "b", "c"].map((n) => ["100644", "blob", repo.blob(Buffer.concat([random(900_000), Buffer.from(n)])), n] as [string, "blob", string, string])));
    await settle();
    const src = source("wide", { maxFileBytes: 1_000_000, maxUnpackedBytes: 2_000_000 });
    await cache.hold(src, () => cache.resolve(src, context("wide"), "master"));
    await assert.rejects(cache.hold(src, () => cache.archive(src, context("wide"), wide)), (err: unknown) => {
      assert.ok(err instanceof PluginLimitError, String(err));
      assert.equal(err.limit, "maxUnpackedBytes");
      assert.ok(err.value > 2_000_000);
      return true;
    });

    const linked = bare("symlinks");
    const devstack = linked.tree([
      ["100755", "blob", linked.blob("echo plugin\n"), "plugin.sh"],
      ["120000", "blob", linked.blob("../../../../etc"), "evil"],
    ]);
    const commit = linked.commit(linked.tree([["040000", "tree", devstack, "devstack"]]));
    await settle();
    const escaping = source("symlinks");
    await cache.hold(escaping, () => cache.resolve(escaping, context("symlinks"), "master"));
    await assert.rejects(cache.hold(escaping, () => cache.archive(escaping, context("symlinks"), commit)), (err: unknown) => {
      assert.ok(err instanceof PluginContentError, String(err));
      assert.equal(err.path, "devstack/evil");
      assert.match(err.message, /^plugin symlinks: "devstack\/evil" is a symbolic link to "\.\.\/\.\.\/\.\.\/\.\.\/etc", outside the plugin's tree; no archive was built$/);
      return true;
    });
    assert.deepEqual(readdirSync(join(dir.path, "cache", "tmp")), []);
  });

  it("keeps isomorphic-git's object cache only while a resolve holds the source, and serves again from disk after", async () => {
    await gitServer.commit("released", { "devstack/plugin.sh": "echo r\n" });
    const src = source("released");
    const first = await cache.hold(src, async () => {
      assert.equal(cache.heldSources, 1);
      return cache.resolve(src, context("released"), "master");
    });
    assert.equal(cache.heldSources, 0);
    assert.ok(existsSync(join(dir.path, "cache", "repos", src.key, ".git")));
    const again = await cache.hold(src, () => cache.resolve(src, context("released"), "master"));
    assert.equal(again.commit, first.commit);
  });
});
