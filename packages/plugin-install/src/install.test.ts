import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createGzip } from "node:zlib";
import { c as createTar } from "tar";
import { Bus, silentLogger, type ObjectStore } from "@stackbus/bus";
import { PluginContentError, PluginLimitError } from "@stackbus/plugins";
import { DEFAULT_PLUGIN_LIMITS, ErrorCode, OBJECT_STORES, pluginObjectName, type PluginResolveReply } from "@stackbus/protocol";
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

/** One entry of a hand-built archive: what a hostile repository (or a tampered store) could hold. */
interface RawEntry {
  path: string;
  type?: "File" | "Directory" | "SymbolicLink" | "Link" | "CharacterDevice";
  /** File content, or a size whose content is zeros (streamed, never held in memory whole). */
  data?: string | { zeros: number };
  linkpath?: string;
}

const TYPEFLAG = { File: "0", Link: "1", SymbolicLink: "2", CharacterDevice: "3", Directory: "5" } as const;

/** A ustar header block (paths under 100 bytes), written field by field: fast enough for 100,000 entries. */
function ustarHeader(path: string, type: keyof typeof TYPEFLAG, size: number, linkpath = ""): Buffer {
  const h = Buffer.alloc(512);
  const put = (text: string, at: number) => h.write(text, at, "ascii");
  const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, "0")}\0`;
  put(path, 0);
  put(octal(type === "Directory" ? 0o755 : 0o644, 8), 100);
  put(octal(0, 8), 108);
  put(octal(0, 8), 116);
  put(octal(size, 12), 124);
  put(octal(0, 12), 136);
  put("        ", 148);
  put(TYPEFLAG[type], 156);
  put(linkpath, 157);
  put("ustar\0", 257);
  put("00", 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return h;
}

/** A tar.gz of `entries`, built header by header. */
async function rawArchive(entries: Iterable<RawEntry>): Promise<Buffer> {
  const gzip = createGzip({ level: 1 });
  const out: Buffer[] = [];
  gzip.on("data", (chunk: Buffer) => out.push(chunk));
  const done = new Promise((resolve) => gzip.on("end", resolve));
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = () => {
    const chunk = Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    return new Promise<void>((resolve) => (gzip.write(chunk) ? resolve() : gzip.once("drain", resolve)));
  };
  const write = async (chunk: Buffer) => {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= 1024 * 1024) await flush();
  };
  const zeros = Buffer.alloc(1024 * 1024);
  for (const e of entries) {
    const type = e.type ?? "File";
    const size = typeof e.data === "string" ? Buffer.byteLength(e.data) : (e.data?.zeros ?? 0);
    await write(ustarHeader(e.path, type, type === "File" ? size : 0, e.linkpath));
    if (type !== "File" || size === 0) continue;
    if (typeof e.data === "string") await write(Buffer.from(e.data));
    else for (let left = size; left > 0; left -= zeros.length) await write(left >= zeros.length ? zeros : zeros.subarray(0, left));
    if (size % 512 !== 0) await write(Buffer.alloc(512 - (size % 512)));
  }
  await write(Buffer.alloc(1024));
  await flush();
  gzip.end();
  await done;
  return Buffer.concat(out);
}

/** Stores `bytes` as plugin `name`'s archive and returns the fetcher's answer for it. */
async function storeRaw(store: ObjectStore, name: string, bytes: Buffer): Promise<PluginResolveReply> {
  const commit = createHash("sha1").update(bytes).digest("hex");
  const object = pluginObjectName(name, commit);
  await store.putBlob({ name: object }, bytes);
  return {
    name,
    url: `https://example.invalid/${name}`,
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

/** A tree bomb: `width` directories of `width` directories ... of `width` files, `depth` levels. */
function* treeBomb(width: number, depth: number, prefix = "bomb"): Generator<RawEntry> {
  yield { path: `${prefix}/`, type: "Directory" };
  for (let i = 0; i < width; i++) {
    if (depth === 1) yield { path: `${prefix}/f${i}`, data: "x" };
    else yield* treeBomb(width, depth - 1, `${prefix}/d${i}`);
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

  it("with reclone off, replaces a checkout only at a commit it is told is replaceable (one the same run placed)", async () => {
    const fixture = new Fixture(tmp.path, "gamma2");
    const first = await fixture.commit(store, { "devstack/plugin.sh": "echo 1\n" });
    const second = await fixture.commit(store, { "devstack/plugin.sh": "echo 2\n" });
    const dest = join(tmp.path, "dest3b");
    await installPlugin({ store, plugin: first, dest, reclone: false });
    const other = await installPlugin({ store, plugin: second, dest, reclone: false, replaceable: ["f".repeat(40)] });
    assert.equal(other.action, "kept");
    const ours = await installPlugin({ store, plugin: second, dest, reclone: false, replaceable: [first.commit] });
    assert.equal(ours.action, "replaced");
    assert.equal(git(ours.path, "rev-parse", "HEAD"), second.commit);
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

  it("refuses a plugin whose symbolic link escapes its tree before writing anything: DEST is left as it was, nothing named .<plugin>.sb-* (issue 17, item 12)", async () => {
    const entries: RawEntry[] = [{ path: "./", type: "Directory" }, { path: "./devstack/", type: "Directory" }, { path: "./devstack/evil", type: "SymbolicLink", linkpath: "../../../../etc" }];
    // Many writes after the refused entry: what node-tar was still writing when a strict unpack had already failed.
    for (let i = 0; i < 2_000; i++) entries.push({ path: `./devstack/f${i}`, data: `file ${i}\n` });
    const plugin = await storeRaw(store, "symlinks", await rawArchive(entries));
    const dest = join(tmp.path, "dest-symlinks");
    mkdirSync(dest);
    await assert.rejects(installPlugin({ store, plugin, dest, reclone: false }), (err: unknown) => {
      assert.ok(err instanceof PluginContentError, String(err));
      assert.equal(err.code, ErrorCode.PluginSource);
      assert.equal(err.path, "devstack/evil");
      assert.match(err.message, /^plugin symlinks: "devstack\/evil" is a symbolic link to "\.\.\/\.\.\/\.\.\/\.\.\/etc", outside the plugin's tree; nothing was unpacked$/);
      return true;
    });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(readdirSync(dest), []);
  });

  it("an unpack that fails while writing (a file where a directory must go) also leaves nothing behind, once every write has ended", async () => {
    const entries: RawEntry[] = [{ path: "./", type: "Directory" }, { path: "./lib", data: "a file\n" }, { path: "./lib/inside", data: "cannot be\n" }];
    for (let i = 0; i < 2_000; i++) entries.push({ path: `./more/f${i}`, data: `file ${i}\n` });
    const plugin = await storeRaw(store, "clash", await rawArchive(entries));
    const dest = join(tmp.path, "dest-clash");
    await assert.rejects(installPlugin({ store, plugin, dest, reclone: false }), (err: unknown) => {
      assert.ok(err instanceof PluginInstallError, String(err));
      assert.match(err.message, /^plugin clash: cannot write .*\.clash\.sb-unpack-[0-9a-f]+: TAR_ENTRY_ERROR: EEXIST: .*\/lib'/);
      return true;
    });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(readdirSync(dest), []);
  });

  it("refuses a 300 MB file in a 0.3 MB archive by its header, before unpacking a byte (issue 17, item 8: maxFileBytes)", async () => {
    const bytes = await rawArchive([{ path: "./", type: "Directory" }, { path: "./devstack/", type: "Directory" }, { path: "./huge.bin", data: { zeros: 300 * 1024 * 1024 } }]);
    assert.ok(bytes.length < 2 * 1024 * 1024, `the archive is ${bytes.length} bytes`);
    const plugin = await storeRaw(store, "blobbomb", bytes);
    const dest = join(tmp.path, "dest-blobbomb");
    await assert.rejects(installPlugin({ store, plugin, dest, reclone: false }), (err: unknown) => {
      assert.ok(err instanceof PluginLimitError, String(err));
      assert.deepEqual([err.limit, err.value, err.max], ["maxFileBytes", 300 * 1024 * 1024, DEFAULT_PLUGIN_LIMITS.maxFileBytes]);
      assert.match(err.message, /^plugin blobbomb: its archive \(huge\.bin\) has a file of 314572800 bytes, more than the 67108864 allowed \(plugins\.limits\.maxFileBytes\); nothing was unpacked$/);
      return true;
    });
    assert.deepEqual(readdirSync(dest), []);
  });

  it("refuses a tree bomb at the first entry over maxFiles: the issue's 10,008 files under a lab's 5,000, one level deeper (100,000+) under the default", async () => {
    // 8 directories of 1,250 files: 10,008 entries, as the issue's 192 KB bomb unpacked.
    const bomb = [{ path: "./", type: "Directory" as const }, ...Array.from({ length: 8 }, (_, d) => [{ path: `./d${d}/`, type: "Directory" as const }, ...Array.from({ length: 1_250 }, (_, f) => ({ path: `./d${d}/f${f}`, data: "x" }))]).flat()];
    assert.equal(bomb.length - 1, 10_008);
    const issueBomb = await storeRaw(store, "treebomb", await rawArchive(bomb));
    const dest = join(tmp.path, "dest-treebomb");
    await assert.rejects(installPlugin({ store, plugin: issueBomb, dest, reclone: false, limits: { ...DEFAULT_PLUGIN_LIMITS, maxFiles: 5_000 } }), (err: unknown) => {
      assert.ok(err instanceof PluginLimitError, String(err));
      assert.deepEqual([err.limit, err.value, err.max], ["maxFiles", 5_001, 5_000]);
      assert.match(err.message, /^plugin treebomb: its archive has 5001 files, more than the 5000 allowed \(plugins\.limits\.maxFiles\); nothing was unpacked$/);
      return true;
    });
    const deeper = await rawArchive(treeBomb(10, 5));
    const bigBomb = await storeRaw(store, "treebomb2", deeper);
    await assert.rejects(installPlugin({ store, plugin: bigBomb, dest, reclone: false }), (err: unknown) => {
      assert.ok(err instanceof PluginLimitError, String(err));
      assert.deepEqual([err.limit, err.value], ["maxFiles", DEFAULT_PLUGIN_LIMITS.maxFiles + 1]);
      return true;
    });
    assert.deepEqual(readdirSync(dest), []);
  });

  it("refuses a path deeper than maxDepth, a device or hard link entry, and an archive over maxDownloadBytes without downloading it", async () => {
    const dest = join(tmp.path, "dest-odd");
    const deep = await storeRaw(store, "deep", await rawArchive([{ path: `./${Array.from({ length: 40 }, () => "d").join("/")}/f`, data: "x" }]));
    await assert.rejects(installPlugin({ store, plugin: deep, dest, reclone: false }), (e: unknown) => e instanceof PluginLimitError && e.limit === "maxDepth" && e.value === 41);
    for (const type of ["CharacterDevice", "Link"] as const) {
      const odd = await storeRaw(store, `odd-${type.toLowerCase()}`, await rawArchive([{ path: "./x", type, ...(type === "Link" ? { linkpath: "../../etc/passwd" } : {}) }]));
      await assert.rejects(installPlugin({ store, plugin: odd, dest, reclone: false }), (e: unknown) => e instanceof PluginContentError && new RegExp(`is a ${type} entry`).test(e.message));
    }
    const fixture = new Fixture(tmp.path, "iota");
    const plugin = await fixture.commit(store, { "devstack/plugin.sh": "echo i\n" });
    let downloaded = false;
    await assert.rejects(
      installPlugin({ store, plugin, dest, reclone: false, limits: { ...DEFAULT_PLUGIN_LIMITS, maxDownloadBytes: 100 }, onProgress: () => (downloaded = true) }),
      (e: unknown) => e instanceof PluginLimitError && e.limit === "maxDownloadBytes" && /nothing was downloaded$/.test(e.message),
    );
    assert.equal(downloaded, false);
    assert.deepEqual(readdirSync(dest), []);
  });
});
