import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { c as createTar } from "tar";
import { Bus, silentLogger, type ObjectStore } from "@stackbus/bus";
import { ErrorCode, OBJECT_STORES, pluginObjectName, type PluginResolveReply } from "@stackbus/protocol";
import { startNats, tempDir, type NatsServer } from "@stackbus/testkit";
import { DigestMismatchError } from "@stackbus/plugins";
import { PluginArchiveMissingError, PluginInstallError } from "./errors.js";
import { installPlugin } from "./install.js";

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@example.invalid",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@example.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
};
const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, env: GIT_ENV, encoding: "utf8" }).trim();

/** A plugin repository with one commit per call, archived the way the fetcher archives it: the tree plus .git, HEAD detached. */
class Fixture {
  readonly dir: string;
  constructor(root: string, readonly name: string) {
    this.dir = join(root, `src-${name}`);
    mkdirSync(this.dir, { recursive: true });
    git(this.dir, "init", "-q", "-b", "master");
  }

  async commit(store: ObjectStore, files: Record<string, string>): Promise<PluginResolveReply> {
    if (git(this.dir, "branch", "--list", "master") !== "") git(this.dir, "checkout", "-q", "master");
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(this.dir, path, ".."), { recursive: true });
      writeFileSync(join(this.dir, path), text);
    }
    chmodSync(join(this.dir, "devstack/plugin.sh"), 0o755);
    git(this.dir, "add", "-A");
    git(this.dir, "commit", "-q", "-m", "change");
    const commit = git(this.dir, "rev-parse", "HEAD");
    git(this.dir, "checkout", "-q", "--detach", commit);
    const chunks: Buffer[] = [];
    const stream = createTar({ gzip: true, cwd: this.dir, portable: true }, ["."]);
    for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
    const bytes = Buffer.concat(chunks);
    const object = pluginObjectName(this.name, commit);
    await store.putBlob({ name: object }, bytes);
    return {
      name: this.name,
      url: `https://example.invalid/${this.name}`,
      ref: "master",
      commit,
      object,
      size: bytes.length,
      digest: `sha256-${createHash("sha256").update(bytes).digest("hex")}`,
      defines: null,
      requires: [],
      warnings: [],
    };
  }
}

describe("installPlugin - download, verify, unpack beside, rename into DEST/<name>", () => {
  let nats: NatsServer;
  let bus: Bus;
  let store: ObjectStore;
  const tmp = tempDir("sb-install-");

  before(async () => {
    nats = await startNats();
    bus = await Bus.connect({ servers: nats.url, name: "install-test", logger: silentLogger() });
    store = await bus.objectStore(OBJECT_STORES.plugins);
  });
  after(async () => {
    await bus.drain();
    await nats.stop();
    tmp.remove();
  });

  it("installs an absent plugin as a git checkout at the commit, executable bits kept, nothing left beside it (not even an earlier crash's)", async () => {
    const fixture = new Fixture(tmp.path, "alpha");
    const plugin = await fixture.commit(store, { "devstack/plugin.sh": "echo alpha\n", "devstack/settings": "define_plugin alpha\n" });
    const dest = join(tmp.path, "dest1");
    mkdirSync(join(dest, ".alpha.sb-unpack-crashed", "devstack"), { recursive: true });
    const progress: Array<[number, number]> = [];
    const outcome = await installPlugin({ store, plugin, dest, reclone: false, onProgress: (d, t) => progress.push([d, t]) });
    assert.deepEqual(outcome, { name: "alpha", path: join(dest, "alpha"), commit: plugin.commit, action: "installed" });
    assert.equal(git(outcome.path, "rev-parse", "HEAD"), plugin.commit);
    assert.equal(git(outcome.path, "status", "--porcelain"), "");
    assert.equal(readFileSync(join(outcome.path, "devstack/plugin.sh"), "utf8"), "echo alpha\n");
    assert.ok(statSync(join(outcome.path, "devstack/plugin.sh")).mode & 0o100, "plugin.sh stays executable");
    assert.deepEqual(readdirSync(dest), ["alpha"]);
    assert.deepEqual(progress.at(-1), [plugin.size, plugin.size]);
  });

  it("leaves a checkout already at the commit alone, without downloading", async () => {
    const fixture = new Fixture(tmp.path, "beta");
    const plugin = await fixture.commit(store, { "devstack/plugin.sh": "echo beta\n" });
    const dest = join(tmp.path, "dest2");
    await installPlugin({ store, plugin, dest, reclone: true });
    writeFileSync(join(dest, "beta", "local-edit"), "mine");
    let downloaded = false;
    const outcome = await installPlugin({ store, plugin, dest, reclone: true, onProgress: () => (downloaded = true) });
    assert.equal(outcome.action, "unchanged");
    assert.equal(downloaded, false);
    assert.equal(readFileSync(join(dest, "beta", "local-edit"), "utf8"), "mine");
  });

  it("keeps a checkout at another commit when reclone is off, with a warning that the lab's ref moved", async () => {
    const fixture = new Fixture(tmp.path, "gamma");
    const first = await fixture.commit(store, { "devstack/plugin.sh": "echo 1\n" });
    const second = await fixture.commit(store, { "devstack/plugin.sh": "echo 2\n" });
    const dest = join(tmp.path, "dest3");
    await installPlugin({ store, plugin: first, dest, reclone: false });
    const outcome = await installPlugin({ store, plugin: second, dest, reclone: false });
    assert.equal(outcome.action, "kept");
    assert.match(outcome.warning ?? "", /plugin gamma: .*gamma is at [0-9a-f]{40}, but the lab's ref master of https:\/\/example\.invalid\/gamma resolves to/);
    assert.ok(outcome.warning?.includes(first.commit) && outcome.warning.includes(second.commit));
    assert.equal(git(join(dest, "gamma"), "rev-parse", "HEAD"), first.commit);
  });

  it("replaces a checkout at another commit when reclone is on", async () => {
    const fixture = new Fixture(tmp.path, "delta");
    const first = await fixture.commit(store, { "devstack/plugin.sh": "echo 1\n" });
    const second = await fixture.commit(store, { "devstack/plugin.sh": "echo 2\n" });
    const dest = join(tmp.path, "dest4");
    await installPlugin({ store, plugin: first, dest, reclone: true });
    writeFileSync(join(dest, "delta", "stale"), "x");
    const outcome = await installPlugin({ store, plugin: second, dest, reclone: true });
    assert.equal(outcome.action, "replaced");
    assert.equal(git(outcome.path, "rev-parse", "HEAD"), second.commit);
    assert.equal(readFileSync(join(outcome.path, "devstack/plugin.sh"), "utf8"), "echo 2\n");
    assert.equal(existsSync(join(outcome.path, "stale")), false);
    assert.deepEqual(readdirSync(dest), ["delta"]);
  });

  it("detects a corrupted archive by its digest and unpacks nothing, leaving DEST as it was", async () => {
    const fixture = new Fixture(tmp.path, "epsilon");
    const first = await fixture.commit(store, { "devstack/plugin.sh": "echo 1\n" });
    const second = await fixture.commit(store, { "devstack/plugin.sh": "echo 2\n" });
    const corrupt = Buffer.from(await store.getBlob(second.object) as Uint8Array);
    const middle = corrupt.length >> 1;
    corrupt[middle] = (corrupt[middle] ?? 0) ^ 0xff;
    await store.putBlob({ name: second.object }, corrupt);

    const fresh = join(tmp.path, "dest5");
    await assert.rejects(installPlugin({ store, plugin: second, dest: fresh, reclone: false }), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError);
      assert.equal(err.code, ErrorCode.DigestMismatch);
      assert.equal(err.expected, second.digest);
      assert.match(err.message, /plugin epsilon: archive epsilon\/[0-9a-f]{40}\.tar\.gz is corrupt.*nothing was unpacked/);
      return true;
    });
    assert.deepEqual(readdirSync(fresh), []);

    const existing = join(tmp.path, "dest6");
    await installPlugin({ store, plugin: first, dest: existing, reclone: true });
    await assert.rejects(installPlugin({ store, plugin: second, dest: existing, reclone: true }), DigestMismatchError);
    assert.deepEqual(readdirSync(existing), ["epsilon"]);
    assert.equal(git(join(existing, "epsilon"), "rev-parse", "HEAD"), first.commit);
  });

  it("detects bytes added to a stored archive whose record was left alone, and unpacks nothing", async () => {
    const fixture = new Fixture(tmp.path, "theta");
    const plugin = await fixture.commit(store, { "devstack/plugin.sh": "echo t\n" });
    const info = await store.info(plugin.object);
    assert.ok(info);
    // The archive's bytes are chunk messages of the bucket's stream; one more chunk makes them differ from the recorded digest.
    await bus.js.publish(`$O.${OBJECT_STORES.plugins}.C.${info.nuid}`, new TextEncoder().encode("tampered"));

    const dest = join(tmp.path, "dest-theta");
    await assert.rejects(installPlugin({ store, plugin, dest, reclone: false }), (err: unknown) => {
      assert.ok(err instanceof DigestMismatchError, String(err));
      assert.equal(err.expected, plugin.digest);
      assert.match(err.message, /plugin theta: archive theta\/[0-9a-f]{40}\.tar\.gz is corrupt.*nothing was unpacked/);
      return true;
    });
    assert.deepEqual(readdirSync(dest), []);
  });

  it("fails with a clear error naming the path when DEST cannot be written", async () => {
    const fixture = new Fixture(tmp.path, "zeta");
    const plugin = await fixture.commit(store, { "devstack/plugin.sh": "echo z\n" });
    const blocker = join(tmp.path, "a-file");
    writeFileSync(blocker, "not a directory");
    const dest = join(blocker, "stack");
    await assert.rejects(installPlugin({ store, plugin, dest, reclone: false }), (err: unknown) => {
      assert.ok(err instanceof PluginInstallError);
      assert.equal(err.path, dest);
      assert.match(err.message, new RegExp(`plugin zeta: cannot write ${dest}: ENOTDIR`));
      return true;
    });
  });

  it("says which archive is missing when the object store does not have it", async () => {
    const fixture = new Fixture(tmp.path, "eta");
    const plugin = await fixture.commit(store, { "devstack/plugin.sh": "echo e\n" });
    await store.delete(plugin.object);
    const dest = join(tmp.path, "dest7");
    await assert.rejects(installPlugin({ store, plugin, dest, reclone: false }), (err: unknown) => {
      assert.ok(err instanceof PluginArchiveMissingError);
      assert.equal(err.code, ErrorCode.NotFound);
      assert.match(err.message, /plugin eta: archive eta\/[0-9a-f]{40}\.tar\.gz is not in the object store/);
      return true;
    });
    assert.deepEqual(readdirSync(dest), []);
  });
});
