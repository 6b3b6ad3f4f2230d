import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Bus, silentLogger, type ObjectStore, type Subscription } from "@stackbus/bus";
import { installPlugin } from "@stackbus/plugin-install";
import {
  BUCKETS,
  ErrorCode,
  LabPluginAccessRequestSchema,
  LabPluginAccessSchema,
  OBJECT_STORES,
  PluginResolveReplySchema,
  PluginResolveRequestSchema,
  StackbusError,
  pluginObjectName,
  subjects,
  wildcards,
  type LabPluginAccess,
  type PluginResolveReply,
  type PluginResolveRequest,
} from "@stackbus/protocol";
import { freePort, startGitServer, startNats, tempDir, type GitServer, type NatsServer } from "@stackbus/testkit";
import { startFetcherService, type FetcherService } from "./service.js";

const PASSWORD = "pw-7f3a9c-never-log-me";
const HOST = "h1";
/** A lab's access as the config service gives it; each test registers the plugins it resolves. */
const BASE_ACCESS: LabPluginAccess = {
  order: "registration",
  reclone: false,
  offline: false,
  mirrors: [],
  allowSchemes: ["https", "http", "file", "path"],
  credentials: [],
  hosts: [HOST, "h2"],
  plugins: [],
};
const SETTINGS = "define_plugin alpha\nplugin_requires alpha beta\nplugin_requires other gamma\nplugin_requires alpha delta\n";

const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", ["-c", "safe.directory=*", ...args], { cwd, encoding: "utf8", env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1" } }).trim();

/** A git smart-HTTP front that demands basic auth, in front of the test git server. */
async function startAuthProxy(upstream: string, username: string, password: string): Promise<{ url: string; server: Server }> {
  const expected = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  const target = new URL(upstream);
  const server = createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="git"' }).end("authentication required");
      return;
    }
    const forward = httpRequest(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`, server };
}

describe("fetcher service - plugins.resolve over a real nats-server and git smart-HTTP", () => {
  let nats: NatsServer;
  let gitServer: GitServer;
  let proxy: { url: string; server: Server };
  let fetcherBus: Bus;
  let configBus: Bus;
  let client: Bus;
  let store: ObjectStore;
  let fetcher: FetcherService;
  let configSub: Subscription;
  /** The config service's config.plugins, standing in: each lab's access from `labs`. */
  const serveConfig = () =>
    configBus.confirmed(
      configBus.serve(wildcards.configPluginSettings, LabPluginAccessRequestSchema, LabPluginAccessSchema, (_req, subject) => {
        const access = labs.get(subject.split(".")[1] ?? "");
        if (!access) throw new StackbusError(ErrorCode.NotFound, `no lab ${subject.split(".")[1]} has been applied`);
        return access;
      }),
    );
  const logLines: string[] = [];
  const cache = tempDir("sb-fetcher-cache-");
  const hosts = tempDir("sb-fetcher-hosts-");
  const labs = new Map<string, LabPluginAccess>();
  const lab = (over: Partial<LabPluginAccess>): LabPluginAccess => ({ ...BASE_ACCESS, plugins: [], ...over });
  /** What an enable_plugin line in the lab's local.conf does: the fetcher may now resolve this name and URL. */
  const register = (labName: string, name: string, url: string) => {
    const access = labs.get(labName);
    assert.ok(access, `no lab ${labName} in this test`);
    if (!access.plugins.some((p) => p.name === name && p.url === url)) access.plugins.push({ name, url });
  };
  let c1 = "";
  let c2 = "";
  let c3 = "";
  let change = "";

  before(async () => {
    nats = await startNats();
    gitServer = await startGitServer();
    c1 = await gitServer.commit("alpha", { "devstack/settings": SETTINGS, "devstack/plugin.sh": { content: "echo alpha $1 $2\n", mode: 0o755 } }, {
      tags: ["light-1"],
      annotatedTags: ["1.0.0"],
    });
    c2 = await gitServer.commit("alpha", { "README": "second\n" });
    c3 = await gitServer.commit("alpha", { "NEWS": "third\n" }, { branch: "stable/2026.1" });
    change = await gitServer.commit("alpha", { "review": "patch set 1\n" }, { branch: "review-tmp", extraRef: "refs/changes/01/1/1" });
    git(gitServer.repoPath("alpha"), "update-ref", "-d", "refs/heads/review-tmp");
    await gitServer.commit("nodevstack", { "README.md": "a library, not a plugin\n" });
    await gitServer.commit("secret", { "devstack/plugin.sh": "echo secret\n" });
    proxy = await startAuthProxy(gitServer.url, "bot", PASSWORD);

    const logger = pino({ level: "debug" }, { write: (line: string) => { logLines.push(line); if (process.env["SB_SHOW_LOGS"]) process.stderr.write(line); } });
    fetcherBus = await Bus.connect({ servers: nats.url, name: "fetcher", logger });
    configBus = await Bus.connect({ servers: nats.url, name: "config-standin", logger: silentLogger() });
    client = await Bus.connect({ servers: nats.url, name: "host", logger: silentLogger() });
    store = await client.objectStore(OBJECT_STORES.plugins);

    labs.set("plain", lab({}));
    labs.set("strict", lab({ allowSchemes: ["https"] }));
    labs.set("mirrored", lab({ mirrors: [{ prefix: "https://opendev.example/openstack/", replace: `${gitServer.url}/` }] }));
    labs.set("authed", lab({ credentials: [{ prefix: `${proxy.url}/`, username: "bot", password: PASSWORD }] }));
    labs.set("badauth", lab({ credentials: [{ prefix: `${proxy.url}/`, username: "bot", password: `${PASSWORD}-wrong` }] }));
    labs.set("air", lab({ offline: true }));
    configSub = await serveConfig();
    fetcher = await startFetcherService({ bus: fetcherBus, logger, cacheDir: cache.path });
  });

  after(async () => {
    await fetcher.stop();
    await Promise.all([fetcherBus.drain(), configBus.drain(), client.drain()]);
    await new Promise((resolve) => proxy.server.close(resolve));
    await gitServer.stop();
    await nats.stop();
    cache.remove();
    hosts.remove();
  });

  /** Host h1 of the lab asks for a plugin the lab registers. */
  const resolve = (labName: string, req: PluginResolveRequest): Promise<PluginResolveReply> => {
    register(labName, req.name, req.url);
    return ask(labName, req);
  };
  /** Host `host` of the lab asks, whatever the lab registers. */
  const ask = (labName: string, req: PluginResolveRequest, host = HOST): Promise<PluginResolveReply> =>
    client.request(subjects.pluginsResolve(labName, host), PluginResolveRequestSchema, req, PluginResolveReplySchema, { timeoutMs: 60_000 });

  async function rejects(labName: string, req: PluginResolveRequest, code: ErrorCode, pattern: RegExp, asked = resolve(labName, req)): Promise<StackbusError> {
    let caught: StackbusError | undefined;
    await assert.rejects(asked, (err: unknown) => {
      assert.ok(err instanceof StackbusError, String(err));
      assert.equal(err.code, code, err.message);
      assert.match(err.message, pattern);
      caught = err;
      return true;
    });
    return caught as StackbusError;
  }

  it("20 hosts asking for one plugin at once cause exactly one clone; a later ask is served without another", async () => {
    const url = gitServer.repoUrl("alpha");
    const replies = await Promise.all(Array.from({ length: 20 }, () => resolve("plain", { name: "alpha", url, ref: "master" })));
    assert.equal(gitServer.uploadPacks("alpha"), 1);
    assert.equal(new Set(replies.map((r) => r.commit)).size, 1);
    assert.equal(replies[0]?.commit, c2);
    assert.equal(replies[0]?.object, pluginObjectName("alpha", c2));
    assert.deepEqual(fetcher.stats(), { clones: 1, fetches: 0 });

    const later = await resolve("plain", { name: "alpha", url, ref: "master" });
    assert.deepEqual(later, replies[0]);
    assert.equal(gitServer.uploadPacks("alpha"), 1);
    assert.deepEqual(fetcher.stats(), { clones: 1, fetches: 0 });
  });

  it("a branch resolves to its tip, with define_plugin and this plugin's plugin_requires read from devstack/settings", async () => {
    const reply = await resolve("plain", { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "stable/2026.1" });
    assert.equal(reply.commit, c3);
    assert.equal(reply.defines, "alpha");
    assert.deepEqual(reply.requires, ["beta", "delta"]);
    assert.deepEqual(reply.warnings, []);
    assert.match(reply.digest, /^sha256-[0-9a-f]{64}$/);
    const info = await store.info(reply.object);
    assert.equal(info?.size, reply.size);
  });

  it("lightweight and annotated tags resolve to the tagged commit", async () => {
    const url = gitServer.repoUrl("alpha");
    assert.equal((await resolve("plain", { name: "alpha", url, ref: "light-1" })).commit, c1);
    assert.equal((await resolve("plain", { name: "alpha", url, ref: "1.0.0" })).commit, c1);
  });

  it("a full commit and an abbreviated commit resolve to that commit, even behind a branch tip", async () => {
    const url = gitServer.repoUrl("alpha");
    assert.equal((await resolve("plain", { name: "alpha", url, ref: c1 })).commit, c1);
    assert.equal((await resolve("plain", { name: "alpha", url, ref: c1.slice(0, 8) })).commit, c1);
  });

  it("a refs/changes/... ref no branch reaches is fetched and resolved", async () => {
    const reply = await resolve("plain", { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "refs/changes/01/1/1" });
    assert.equal(reply.commit, change);
  });

  it("the archive unpacks on a host to a git checkout at the commit: rev-parse, describe --tags and a clean status work", async () => {
    const reply = await resolve("plain", { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "master" });
    const outcome = await installPlugin({ store, plugin: reply, dest: join(hosts.path, "h1"), reclone: false });
    assert.equal(outcome.action, "installed");
    assert.equal(git(outcome.path, "rev-parse", "HEAD"), c2);
    assert.equal(git(outcome.path, "describe", "--tags"), `1.0.0-1-g${c2.slice(0, 7)}`);
    assert.equal(git(outcome.path, "status", "--porcelain"), "");
    assert.equal(git(outcome.path, "remote", "get-url", "origin"), gitServer.repoUrl("alpha"));
    assert.equal(git(outcome.path, "log", "--format=%H").split("\n").length, 2);
  });

  it("requests of one run get the same commit after the branch moved; a new run gets the new commit", async () => {
    await gitServer.commit("moving", { "devstack/plugin.sh": "echo 1\n" });
    const url = gitServer.repoUrl("moving");
    const first = await resolve("plain", { name: "moving", url, ref: "master", runId: "run-1" });
    const moved = await gitServer.commit("moving", { "devstack/plugin.sh": "echo 2\n" });
    const requestsBefore = gitServer.requests.filter((r) => r.repo === "moving.git").length;
    const again = await resolve("plain", { name: "moving", url, ref: "master", runId: "run-1" });
    assert.equal(again.commit, first.commit);
    assert.equal(gitServer.requests.filter((r) => r.repo === "moving.git").length, requestsBefore, "a pinned ref contacts nobody");
    const next = await resolve("plain", { name: "moving", url, ref: "master", runId: "run-2" });
    assert.equal(next.commit, moved);
    assert.notEqual(next.object, first.object);
  });

  it("a second fetcher instance in the queue group serves a run the commit the first one pinned", async () => {
    await gitServer.commit("shared", { "devstack/plugin.sh": "echo 1\n" });
    const url = gitServer.repoUrl("shared");
    const pinned = await resolve("plain", { name: "shared", url, ref: "master", runId: "run-shared" });
    await gitServer.commit("shared", { "devstack/plugin.sh": "echo 2\n" });
    const secondCache = tempDir("sb-fetcher-cache2-");
    const secondBus = await Bus.connect({ servers: nats.url, name: "fetcher-2", logger: silentLogger() });
    const second = await startFetcherService({ bus: secondBus, logger: silentLogger(), cacheDir: secondCache.path });
    try {
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          new Promise((r) => setTimeout(r, i * 5)).then(() => resolve("plain", { name: "shared", url, ref: "master", runId: "run-shared" })),
        ),
      );
      assert.deepEqual(new Set(replies.map((r) => r.commit)), new Set([pinned.commit]));
      assert.equal(second.stats().clones, 1, "the second instance answered some of them from its own clone");
    } finally {
      await second.stop();
      await secondBus.drain();
      secondCache.remove();
    }
  });

  it("a local path and a file:// URL are served by git upload-pack, without HTTP", async () => {
    await gitServer.commit("local", { "devstack/plugin.sh": "echo local\n" }, { annotatedTags: ["2.0.0"] });
    const path = gitServer.repoPath("local");
    const byPath = await resolve("plain", { name: "local", url: path, ref: "master" });
    const byFileUrl = await resolve("plain", { name: "local", url: `file://${path}`, ref: "2.0.0" });
    assert.equal(byPath.commit, byFileUrl.commit);
    assert.equal(byPath.url, path);
    assert.equal(gitServer.requests.filter((r) => r.repo === "local.git").length, 0);
    const outcome = await installPlugin({ store, plugin: byFileUrl, dest: join(hosts.path, "h2"), reclone: false });
    assert.equal(git(outcome.path, "describe", "--tags"), "2.0.0");
  });

  it("a mirror prefix rewrites the URL (GIT_BASE style); the reply keeps the URL the lab wrote", async () => {
    const reply = await resolve("mirrored", { name: "alpha", url: "https://opendev.example/openstack/alpha.git", ref: "master" });
    assert.equal(reply.commit, c2);
    assert.equal(reply.url, "https://opendev.example/openstack/alpha.git");
  });

  it("credentials from the lab open a repository behind basic auth and never appear in logs or errors", async () => {
    const url = `${proxy.url}/secret.git`;
    const reply = await resolve("authed", { name: "secret", url, ref: "master" });
    assert.match(reply.commit, /^[0-9a-f]{40}$/);
    const err = await rejects("badauth", { name: "secret", url, ref: "master" }, ErrorCode.PluginSource, /refused access \(HTTP 401/);
    assert.ok(err.message.includes(`plugin secret (${url})`));
    const embedded = await rejects(
      "plain",
      { name: "secret", url: `http://bot:${PASSWORD}x@127.0.0.1:${new URL(proxy.url).port}/secret.git`, ref: "master" },
      ErrorCode.PluginSource,
      /refused access/,
    );
    const withUrlCreds = await resolve("plain", {
      name: "secret",
      url: `http://bot:${PASSWORD}@127.0.0.1:${new URL(proxy.url).port}/secret.git`,
      ref: "master",
    });
    assert.equal(withUrlCreds.url, `http://***@127.0.0.1:${new URL(proxy.url).port}/secret.git`);
    const index = await fetcherBus.kv(BUCKETS.pluginIndex);
    const stored: string[] = [];
    for await (const key of await index.keys()) stored.push(key, (await index.get(key))?.string() ?? "");
    assert.ok(stored.some((text) => text.includes("http://***@127.0.0.1")), "the index records the redacted URL");
    for (const text of [err.message, JSON.stringify(err.data), embedded.message, JSON.stringify(withUrlCreds), ...logLines, ...stored]) {
      assert.ok(!text.includes(PASSWORD), `password leaked: ${text}`);
    }
  });

  it("offline, a cached plugin is served without contacting the source; an uncached one is PLUGIN_OFFLINE naming it", async () => {
    await gitServer.commit("offline", { "devstack/plugin.sh": "echo offline\n" });
    const url = gitServer.repoUrl("offline");
    const online = await resolve("plain", { name: "offline", url, ref: "master" });
    const before = gitServer.requests.filter((r) => r.repo === "offline.git").length;
    const served = await resolve("air", { name: "offline", url, ref: "master" });
    assert.equal(served.commit, online.commit);
    assert.equal(served.object, online.object);
    assert.ok(served.warnings.some((w) => w.startsWith("offline: serving commit")));
    const byCommit = await resolve("air", { name: "offline", url, ref: online.commit.slice(0, 10) });
    assert.equal(byCommit.commit, online.commit);
    assert.equal(gitServer.requests.filter((r) => r.repo === "offline.git").length, before);

    await gitServer.commit("never", { "devstack/plugin.sh": "echo never\n" });
    const neverUrl = gitServer.repoUrl("never");
    await rejects("air", { name: "never", url: neverUrl, ref: "master" }, ErrorCode.PluginOffline, new RegExp(`^plugin never \\(${neverUrl.replace(/[.]/g, "\\.")}\\): the lab is offline`));
    assert.equal(gitServer.requests.filter((r) => r.repo === "never.git").length, 0);
  });

  it("a repository with no devstack/ directory is served with a warning that it does nothing", async () => {
    const reply = await resolve("plain", { name: "nodevstack", url: gitServer.repoUrl("nodevstack"), ref: "master" });
    assert.equal(reply.warnings.length, 1);
    assert.match(reply.warnings[0] ?? "", /^plugin nodevstack \(http:.*nodevstack\.git\) at [0-9a-f]{12} has no devstack\/ directory/);
    assert.deepEqual([reply.defines, reply.requires], [null, []]);
  });

  it("bad input is refused with a coded error naming plugin and URL, and the fetcher keeps serving", async () => {
    const port = await freePort();
    await rejects("plain", { name: "gone", url: `http://127.0.0.1:${port}/gone.git`, ref: "master" }, ErrorCode.PluginSource, /^plugin gone \(http:\/\/127\.0\.0\.1:\d+\/gone\.git\): cannot reach the source \(ECONNREFUSED\)/);
    await rejects("plain", { name: "missing", url: gitServer.repoUrl("no-such-repo"), ref: "master" }, ErrorCode.PluginSource, /^plugin missing \(.*no-such-repo\.git\): no git repository there \(HTTP 404/);
    await rejects("plain", { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "no-such-branch" }, ErrorCode.PluginRef, /^plugin alpha \(.*alpha\.git\): ref no-such-branch is no branch, tag or commit of the repository \(branches: master, stable\/2026\.1; tags: 1\.0\.0, light-1\)/);
    await rejects("plain", { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "f".repeat(40) }, ErrorCode.PluginRef, /commit f{40} is not in the repository/);
    await rejects("strict", { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "master" }, ErrorCode.PluginUrl, /^plugin alpha \(http:.*\): http:\/\/ sources are not allowed in this lab \(allowed: https\)/);
    await rejects("plain", { name: "alpha", url: "git://git.openstack.org/openstack/alpha", ref: "master" }, ErrorCode.PluginUrl, /git:\/\/ transport is not supported/);
    await rejects("plain", { name: "local", url: "/nonexistent/repo", ref: "master" }, ErrorCode.PluginSource, /^plugin local \(\/nonexistent\/repo\): no git repository there: \/nonexistent\/repo does not exist$/);
    await rejects("plain", { name: "local", url: "file:///nonexistent/repo", ref: "master" }, ErrorCode.PluginSource, /^plugin local \(file:\/\/\/nonexistent\/repo\): no git repository there: \/nonexistent\/repo does not exist$/);
    await rejects("plain", { name: "local", url: `file://${hosts.path}`, ref: "master" }, ErrorCode.PluginSource, /^plugin local \(file:\/\/\/.*\): \/.* is not a git repository \('.*' does not appear to be a git repository\)$/);
    const marker = join(hosts.path, "shell-ran");
    await rejects("plain", { name: "local", url: `/tmp/x$(touch${"${IFS}"}${marker});touch${"${IFS}"}${marker}`, ref: "master" }, ErrorCode.PluginSource, /no git repository there/);
    assert.equal(existsSync(marker), false, "a path with shell metacharacters reached a shell");

    const raw = await client.nc.request(
      subjects.pluginsResolve("plain", HOST),
      new TextEncoder().encode(JSON.stringify({ name: "../x", url: gitServer.repoUrl("alpha"), ref: "master" })),
      { timeout: 10_000 },
    );
    const reply = JSON.parse(new TextDecoder().decode(raw.data));
    assert.equal(reply.ok, false);
    assert.equal(reply.error.code, ErrorCode.InvalidName);
    assert.match(reply.error.message, /^plugin name "\.\.\/x" \(http:.*alpha\.git\) may not contain "\."/);

    const good = await resolve("plain", { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "master" });
    assert.equal(good.commit, c2);
  });

  it("a plugin the lab does not register is refused before anything is contacted: no private repository read, no address probed", async () => {
    await gitServer.commit("controller-private", { "secrets.env": "ADMIN_PASSWORD=never-leave-the-controller\n" });
    let probed = 0;
    const probe = createServer((_req, res) => {
      probed += 1;
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const probeUrl = `http://127.0.0.1:${(probe.address() as { port: number }).port}/internal-admin`;
    const requestsBefore = gitServer.requests.length;
    const clonesBefore = fetcher.stats();
    try {
      const loot = { name: "loot", url: `file://${gitServer.repoPath("controller-private")}`, ref: "master" };
      await rejects("plain", loot, ErrorCode.PermissionDenied, /^plugin loot \(file:\/\/.*controller-private\.git\): lab "plain" registers no such plugin: no enable_plugin loot file:/, ask("plain", loot));
      const scan = { name: "scan", url: probeUrl, ref: "master" };
      await rejects("plain", scan, ErrorCode.PermissionDenied, /registers no such plugin/, ask("plain", scan));
      register("plain", "alpha", gitServer.repoUrl("alpha"));
      const elsewhere = { name: "alpha", url: gitServer.repoUrl("controller-private"), ref: "master" };
      await rejects("plain", elsewhere, ErrorCode.PermissionDenied, /\(it registers alpha as http:\/\/127\.0\.0\.1:\d+\/alpha\.git[,)]/, ask("plain", elsewhere));
    } finally {
      await new Promise((r) => probe.close(r));
    }
    assert.equal(probed, 0, "the probed address saw no request");
    assert.equal(gitServer.requests.length, requestsBefore, "the git server saw no request");
    assert.deepEqual(fetcher.stats(), clonesBefore, "nothing was cloned or fetched");
    const objects: string[] = [];
    for (const info of await store.list()) objects.push(info.name);
    assert.deepEqual(objects.filter((n) => /^(loot|scan)\//.test(n)), []);
  });

  it("only the lab's hosts get plugins resolved: a host not in the lab is refused, even for a registered plugin", async () => {
    const req = { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "master" };
    register("plain", req.name, req.url);
    await rejects("plain", req, ErrorCode.PermissionDenied, /^host "intruder" is not in lab "plain": plugins are resolved only for the lab's hosts/, ask("plain", req, "intruder"));
    await rejects("nolab", req, ErrorCode.NotFound, /no lab nolab has been applied/, ask("nolab", req));
  });

  it("when the config service does not answer, a lab it never described gets nothing fetched; a lab it did keeps its last answer", async () => {
    const req = { name: "alpha", url: gitServer.repoUrl("alpha"), ref: "master" };
    register("plain", req.name, req.url);
    await resolve("plain", req);
    labs.set("fresh", lab({ plugins: [{ name: req.name, url: req.url }] }));
    await configSub.drain();
    try {
      await new Promise((r) => setTimeout(r, 1_100)); // the fetcher reuses an answer for a second
      await rejects("fresh", req, ErrorCode.Unavailable, /^cannot tell which plugins lab "fresh" registers: the config service did not answer/, ask("fresh", req));
      assert.equal((await ask("plain", req)).commit, c2);
    } finally {
      configSub = await serveConfig();
    }
    assert.equal((await ask("fresh", req)).commit, c2);
  });
});
