import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { mkdir, readdir, rm, stat, writeFile, link, copyFile } from "node:fs/promises";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import git, { type GitHttpRequest, type GitHttpResponse, type HttpClient, type ServerRef } from "isomorphic-git";
import nodeHttp from "isomorphic-git/http/node";
import { c as createTar } from "tar";
import type { Logger } from "@stackbus/bus";
import { scanArchive } from "@stackbus/plugin-install";
import { PluginContentError, PluginLimitError, TreeWalk } from "@stackbus/plugins";
import { PluginRefError, PluginSourceError, type PluginContext } from "./errors.js";
import { localGitHttp, LOCAL_URL, type TransportWatch } from "./localhttp.js";
import { KeyedLock } from "./lock.js";
import { guardUploadPack } from "./packguard.js";
import { redact, type PluginSource } from "./source.js";

/**
 * A ref as the source advertises it: annotated tags carry the commit they point at in
 * `peeled`; `HEAD` carries the branch it points at in `target`.
 */
export interface RemoteRef {
  ref: string;
  oid: string;
  peeled?: string;
  target?: string;
}

/** How isomorphic-git reaches one source. */
interface Transport {
  http: HttpClient;
  url: string;
  onAuth?: () => { username: string; password: string };
}

/** One transport's use: what its watchdog and its pack guard saw, read after isomorphic-git fails. */
interface Watch extends TransportWatch {
  refused?: PluginLimitError;
}

/** The bytes of what isomorphic-git writes (a string, a Buffer, a Uint8Array). */
function byteLength(data: unknown): number {
  if (typeof data === "string") return Buffer.byteLength(data);
  if (data instanceof Uint8Array) return data.byteLength;
  return 0;
}

/** A ref resolved against the source: the commit, and the advertised ref that named it, if any. */
export interface ResolvedRef {
  commit: string;
  fullref: string | null;
}

/** A built archive on disk, with its size and `sha256-<hex>` digest. */
export interface BuiltArchive {
  file: string;
  size: number;
  digest: string;
}

export interface GitCacheOptions {
  /** Directory holding one git repository per source, and scratch space. */
  dir: string;
  logger: Logger;
  /** Idle timeout of one network request, and the limit of one local `git upload-pack`. @default 120000 */
  timeoutMs?: number;
}

const FULL_SHA = /^[0-9a-f]{40}$/;
const SHORT_SHA = /^[0-9a-fA-F]{4,39}$/;

/**
 * The fetcher's clone cache: one git repository per source (URL after mirrors), filled
 * with isomorphic-git. The first fetch clones every branch and tag; later asks fetch
 * only when the wanted commit is missing, so a plugin is cloned once however many hosts
 * ask. Every operation on one repository is serialised. Every download is bounded by the
 * source's `limits` before isomorphic-git indexes it, and every archive before it is
 * built. isomorphic-git's in-memory object cache (packfiles read whole) lives only while
 * someone `hold`s the source, so the memory of a clone is released when its resolve ends.
 */
export class GitCache {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #locks = new KeyedLock();
  readonly #held = new Map<string, { cache: object; holders: number }>();
  /**
   * Connection pools of our own: Node's global agent ends a socket idle for 5 s, which a
   * server still packing a large repository is; idleness is this cache's watchdog's job.
   */
  readonly #agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
  readonly counters = { clones: 0, fetches: 0 };

  constructor(options: GitCacheOptions) {
    this.#dir = options.dir;
    this.#log = options.logger;
    this.#timeoutMs = options.timeoutMs ?? 120_000;
  }

  #repo(source: PluginSource): string {
    return join(this.#dir, "repos", source.key);
  }

  /**
   * Runs `work` with one isomorphic-git object cache for `source` shared by every call
   * inside it; the cache (and the packfiles it read) is dropped when the last holder ends.
   * Calls made outside any hold use a cache of their own.
   */
  async hold<T>(source: PluginSource, work: () => Promise<T>): Promise<T> {
    let entry = this.#held.get(source.key);
    if (!entry) this.#held.set(source.key, (entry = { cache: {}, holders: 0 }));
    entry.holders += 1;
    try {
      return await work();
    } finally {
      entry.holders -= 1;
      if (entry.holders === 0) this.#held.delete(source.key);
    }
  }

  /** Sources whose object cache is held now (released ones hold no memory). */
  get heldSources(): number {
    return this.#held.size;
  }

  #cache(source: PluginSource): object {
    return this.#held.get(source.key)?.cache ?? {};
  }

  /**
   * How isomorphic-git reaches the source: smart HTTP, or `git upload-pack` for a local
   * repository. Every request has an idle watchdog (no byte for `timeoutMs` aborts it), and
   * every upload-pack response is bounded by `guardUploadPack` before isomorphic-git reads
   * it. What they saw is recorded in `watch`, so a failure is classified by what happened,
   * not by the text of the error isomorphic-git makes of it.
   */
  #transport(source: PluginSource, context: PluginContext, watch: Watch): Transport {
    const local = source.kind === "file" || source.kind === "path";
    const base = local ? localGitHttp(source.target, this.#timeoutMs, watch) : nodeHttp;
    const timeoutMs = this.#timeoutMs;
    const http: HttpClient = {
      request: async (req: GitHttpRequest): Promise<GitHttpResponse> => {
        const abort = new AbortController();
        let timer: NodeJS.Timeout | undefined;
        const arm = () => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            watch.timedOut = true;
            abort.abort();
          }, timeoutMs);
          // A body isomorphic-git stops reading early never ends: its watchdog must not hold the process.
          timer.unref();
        };
        arm();
        let res: GitHttpResponse;
        try {
          const agent = local ? undefined : new URL(req.url).protocol === "https:" ? this.#agents.https : this.#agents.http;
          res = await base.request({ ...req, signal: abort.signal, ...(agent ? { agent } : {}) });
        } catch (err) {
          clearTimeout(timer);
          throw err;
        }
        const body = res.body ? idle(res.body, arm, () => clearTimeout(timer)) : undefined;
        if (!body) clearTimeout(timer);
        const uploadPack = (req.method ?? "GET").toUpperCase() === "POST" && new URL(req.url).pathname.endsWith("/git-upload-pack");
        const guarded =
          body && uploadPack ? guardUploadPack(body, context.plugin, source.limits, (refused) => (watch.refused = refused)) : body;
        return guarded ? { ...res, body: guarded } : res;
      },
    };
    const url = local ? LOCAL_URL : source.target;
    const auth = source.auth;
    return auth ? { http, url, onAuth: () => ({ ...auth }) } : { http, url };
  }

  /** The arguments every git.fetch of a source shares. */
  #fetchArgs(dir: string, cache: object, transport: Transport) {
    return {
      fs,
      dir,
      cache,
      http: transport.http,
      url: transport.url,
      ...(transport.onAuth ? { onAuth: transport.onAuth } : {}),
    };
  }

  /** The refs the source advertises (one smart-HTTP GET; nothing is cloned). */
  async listRemote(source: PluginSource, context: PluginContext): Promise<RemoteRef[]> {
    const watch: Watch = { timedOut: false };
    const transport = this.#transport(source, context, watch);
    try {
      const refs: ServerRef[] = await git.listServerRefs({
        http: transport.http,
        url: transport.url,
        ...(transport.onAuth ? { onAuth: transport.onAuth } : {}),
        protocolVersion: 1,
        peelTags: true,
        symrefs: true,
      });
      return refs.map((r) => ({ ref: r.ref, oid: r.oid, ...(r.peeled ? { peeled: r.peeled } : {}), ...(r.target ? { target: r.target } : {}) }));
    } catch (err) {
      throw this.#sourceError(source, context, err, watch);
    }
  }

  /**
   * Resolves `ref` against the source the way `git fetch origin REF` does (an exact
   * refs/... name; else refs/tags, refs/heads in that order; else a full commit; else an
   * abbreviated commit), makes sure the cache holds the commit, and returns it.
   */
  async resolve(source: PluginSource, context: PluginContext, ref: string): Promise<ResolvedRef> {
    const advertised = await this.listRemote(source, context);
    const match = matchRef(advertised, ref);
    if (match) {
      await this.ensure(source, context, match.oid, match.fullref, advertised);
      const commit = await this.peel(source, context, ref, match.oid);
      // HEAD is the remote's default branch: remember what it named, for offline serving.
      if (ref === "HEAD") await git.writeRef({ fs, dir: this.#repo(source), ref: "refs/stackbus/HEAD", value: commit, force: true });
      return { commit, fullref: match.fullref };
    }
    if (FULL_SHA.test(ref)) {
      await this.ensure(source, context, ref, null, advertised);
      return { commit: await this.peel(source, context, ref, ref), fullref: null };
    }
    if (SHORT_SHA.test(ref) && advertised.length > 0) {
      const short = ref.toLowerCase();
      const cached = await this.#expand(source, context, short).catch(() => undefined);
      if (cached === undefined) await this.ensure(source, context, null, null, advertised);
      const commit = cached ?? (await this.#expand(source, context, short));
      return { commit: await this.peel(source, context, ref, commit), fullref: null };
    }
    throw new PluginRefError(context, ref, unknownRefMessage(ref, advertised));
  }

  /**
   * Resolves `ref` from the cache alone, never contacting the source (offline): a commit,
   * an abbreviated commit, a tag, a branch as last fetched, or a refs/... ref fetched before.
   */
  async resolveLocal(source: PluginSource, context: PluginContext, ref: string): Promise<string | undefined> {
    const dir = this.#repo(source);
    if (!(await isRepo(dir))) return undefined;
    return this.#locks.run(source.key, async () => {
      const cache = this.#cache(source);
      const candidates =
        ref === "HEAD"
          ? ["refs/stackbus/HEAD"]
          : ref.startsWith("refs/")
            ? [`refs/stackbus/${ref.slice(5)}`, ref]
            : [`refs/tags/${ref}`, `refs/remotes/origin/${ref}`];
      for (const candidate of candidates) {
        const oid = await git.resolveRef({ fs, dir, ref: candidate }).catch(() => undefined);
        if (oid) return this.peel(source, context, ref, oid);
      }
      if (SHORT_SHA.test(ref) || FULL_SHA.test(ref)) {
        const oid = await git.expandOid({ fs, dir, oid: ref.toLowerCase(), cache }).catch(() => undefined);
        if (oid) return this.peel(source, context, ref, oid);
      }
      return undefined;
    });
  }

  /** True when the cache holds `oid`. */
  async has(source: PluginSource, oid: string): Promise<boolean> {
    const dir = this.#repo(source);
    if (!(await isRepo(dir))) return false;
    return hasObject(dir, oid, this.#cache(source));
  }

  /**
   * Makes sure the cache holds `oid` (and `fullref`, when it is a ref outside branches
   * and tags). Clones when there is no cache yet; otherwise fetches only when the object
   * is missing; the source is not contacted when it is not. A commit no advertised ref
   * reaches is asked for by its id.
   */
  async ensure(
    source: PluginSource,
    context: PluginContext,
    oid: string | null,
    fullref: string | null,
    advertised?: RemoteRef[],
  ): Promise<void> {
    await this.#locks.run(source.key, async () => {
      const dir = this.#repo(source);
      const cache = this.#cache(source);
      const watch: Watch = { timedOut: false };
      const transport = this.#transport(source, context, watch);
      let refs = advertised;
      const remoteRefs = async () => (refs ??= await this.listRemote(source, context));
      const fetchAll = async () => {
        const listed = await remoteRefs();
        if (listed.length === 0) return;
        const anchor = fullref ?? listed.find((r) => r.ref.startsWith("refs/heads/"))?.ref ?? listed[0]?.ref;
        await git.fetch({ ...this.#fetchArgs(dir, cache, transport), singleBranch: false, tags: true, ...(anchor ? { remoteRef: anchor } : {}) });
      };
      try {
        if (!(await isRepo(dir))) {
          await rm(dir, { recursive: true, force: true });
          await mkdir(dir, { recursive: true });
          await git.init({ fs, dir, defaultBranch: "stackbus-cache" });
          await git.setConfig({ fs, dir, path: "remote.origin.url", value: source.location });
          await git.setConfig({ fs, dir, path: "remote.origin.fetch", value: "+refs/heads/*:refs/remotes/origin/*" });
          this.#log.info({ source: source.display, location: source.location }, "cloning plugin source");
          try {
            await fetchAll();
          } catch (err) {
            await rm(dir, { recursive: true, force: true });
            throw err;
          }
          this.counters.clones += 1;
        } else if (oid === null || !(await hasObject(dir, oid, cache))) {
          this.#log.info({ source: source.display, location: source.location }, "fetching plugin source");
          await fetchAll();
          this.counters.fetches += 1;
        }
        if (oid !== null && !(await hasObject(dir, oid, cache))) {
          await git.fetch({ ...this.#fetchArgs(dir, cache, transport), singleBranch: true, remoteRef: oid, ref: oid });
          this.counters.fetches += 1;
        }
      } catch (err) {
        if (oid !== null && FULL_SHA.test(oid) && !watch.refused && (watch.missing === oid || (err as { code?: unknown }).code === "NotFoundError")) {
          throw new PluginRefError(context, oid, `commit ${oid} is not in the repository`);
        }
        throw this.#sourceError(source, context, err, watch);
      }
      if (oid !== null && !(await hasObject(dir, oid, cache))) {
        throw new PluginRefError(context, oid, `commit ${oid} is not in the repository`);
      }
      if (oid !== null && fullref && !fullref.startsWith("refs/heads/") && !fullref.startsWith("refs/tags/")) {
        await git.writeRef({ fs, dir, ref: `refs/stackbus/${fullref.slice(5)}`, value: oid, force: true });
      }
    });
  }

  /** Follows annotated tags to the commit they name; anything that is not a commit is a PluginRefError. */
  async peel(source: PluginSource, context: PluginContext, ref: string, oid: string): Promise<string> {
    const dir = this.#repo(source);
    const cache = this.#cache(source);
    let current = oid;
    for (let depth = 0; depth < 10; depth++) {
      const object = await git.readObject({ fs, dir, oid: current, cache, format: "parsed" }).catch(() => undefined);
      if (!object) throw new PluginRefError(context, ref, `${ref} names ${current}, which is not in the repository`);
      if (object.type === "commit") return current;
      if (object.type !== "tag") throw new PluginRefError(context, ref, `${ref} names a ${object.type}, not a commit`);
      current = (object.object as { object: string }).object;
    }
    throw new PluginRefError(context, ref, `${ref} is a chain of more than 10 tags`);
  }

  async #expand(source: PluginSource, context: PluginContext, short: string): Promise<string> {
    const dir = this.#repo(source);
    try {
      return await git.expandOid({ fs, dir, oid: short, cache: this.#cache(source) });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "AmbiguousError") throw new PluginRefError(context, short, `abbreviated commit ${short} is ambiguous; give more digits`);
      throw new PluginRefError(context, short, `${short} is no branch, tag or commit of the repository`);
    }
  }

  /** A file of the tree at `commit`, or null when there is none. */
  async readFile(source: PluginSource, commit: string, path: string): Promise<string | null> {
    const dir = this.#repo(source);
    try {
      const { blob } = await git.readBlob({ fs, dir, oid: commit, filepath: path, cache: this.#cache(source) });
      return Buffer.from(blob).toString("utf8");
    } catch {
      return null;
    }
  }

  /** The names in a directory of the tree at `commit`, or null when it is no directory. */
  async listDir(source: PluginSource, commit: string, path: string): Promise<string[] | null> {
    const dir = this.#repo(source);
    try {
      const { tree } = await git.readTree({ fs, dir, oid: commit, filepath: path, cache: this.#cache(source) });
      return tree.map((entry) => entry.path);
    } catch {
      return null;
    }
  }

  /**
   * Writes a tar.gz of the checkout at `commit` with its `.git`: the repository's objects,
   * tags and remote branches, HEAD detached at the commit, the index, and `origin`
   * pointing at the plugin's URL. `git status` is clean in the unpacked tree and
   * `git describe` / pbr see the history.
   */
  async archive(source: PluginSource, context: PluginContext, commit: string): Promise<BuiltArchive> {
    return this.#locks.run(source.key, async () => {
      const walk = new TreeWalk(context.plugin, source.limits, `its checkout at ${commit.slice(0, 12)}`, "no archive was built");
      const repo = this.#repo(source);
      const scratch = join(this.#dir, "tmp");
      await mkdir(scratch, { recursive: true });
      const tag = randomBytes(6).toString("hex");
      const stage = join(scratch, `stage-${tag}`);
      const file = join(scratch, `archive-${tag}.tar.gz`);
      try {
        const dotGit = join(stage, ".git");
        await mkdir(join(dotGit, "refs", "heads"), { recursive: true });
        await linkTree(join(repo, ".git", "objects"), join(dotGit, "objects"));
        for (const sub of ["tags", "remotes"]) {
          const from = join(repo, ".git", "refs", sub);
          if (await exists(from)) await linkTree(from, join(dotGit, "refs", sub), true);
        }
        if (await exists(join(repo, ".git", "packed-refs"))) await copyFile(join(repo, ".git", "packed-refs"), join(dotGit, "packed-refs"));
        await writeFile(join(dotGit, "HEAD"), `${commit}\n`);
        await writeFile(join(dotGit, "config"), gitConfig(source.origin));
        // Bounded before a byte of the checkout is written: .git as staged, then the commit's tree.
        await walkDisk(stage, ".git", walk);
        await this.#walkTree(source, commit, walk);
        await this.#checkout(source, stage, commit, walk);
        const hash = createHash("sha256");
        let size = 0;
        const tar = createTar({ gzip: true, cwd: stage, portable: true }, ["."]);
        tar.on("data", (chunk: Buffer) => {
          hash.update(chunk);
          size += chunk.length;
        });
        await pipeline(tar, fs.createWriteStream(file));
        // The hosts check every archive the same way before unpacking it: never serve one they would refuse.
        await scanArchive(file, context.plugin, source.limits);
        return { file, size, digest: `sha256-${hash.digest("hex")}` };
      } catch (err) {
        await rm(file, { force: true });
        throw err;
      } finally {
        await rm(stage, { recursive: true, force: true });
      }
    });
  }

  /**
   * Adds every entry of the commit's tree to `walk` (entries, depth, links out of the tree),
   * reading trees only: a tree bomb is refused after at most `maxFiles` entries.
   */
  async #walkTree(source: PluginSource, commit: string, walk: TreeWalk): Promise<void> {
    const dir = this.#repo(source);
    const cache = this.#cache(source);
    const trees = new Map<string, Awaited<ReturnType<typeof git.readTree>>["tree"]>();
    const visit = async (oid: string, prefix: string): Promise<void> => {
      let tree = trees.get(oid);
      if (!tree) trees.set(oid, (tree = (await git.readTree({ fs, dir, oid, cache })).tree));
      for (const entry of tree) {
        const path = prefix === "" ? entry.path : `${prefix}/${entry.path}`;
        if (entry.type === "tree") {
          walk.add(path, "directory");
          await visit(entry.oid, path);
        } else if (entry.type === "commit") {
          walk.add(path, "directory");
        } else if (entry.mode === "120000") {
          const { blob } = await git.readBlob({ fs, dir, oid: entry.oid, cache });
          walk.add(path, "symlink", { target: Buffer.from(blob).toString("utf8") });
        } else {
          walk.add(path, "file");
        }
      }
    };
    await visit(commit, "");
  }

  /** Checks `commit` out into `stage`, counting every byte written against `walk`'s maxUnpackedBytes. */
  async #checkout(source: PluginSource, stage: string, commit: string, walk: TreeWalk): Promise<void> {
    let refused: unknown;
    const counted = {
      promises: {
        ...fs.promises,
        writeFile: async (path: fs.PathLike, data: string | Uint8Array, options?: fs.WriteFileOptions) => {
          try {
            walk.addBytes(byteLength(data));
          } catch (err) {
            refused ??= err;
            throw err;
          }
          return fs.promises.writeFile(path, data, options);
        },
      },
    };
    try {
      await git.checkout({ fs: counted, dir: stage, ref: commit, force: true, cache: this.#cache(source) });
    } catch (err) {
      throw refused ?? err;
    }
    if (refused !== undefined) throw refused;
  }

  #sourceError(source: PluginSource, context: PluginContext, err: unknown, watch: Watch): Error {
    if (watch.refused) return watch.refused;
    if (err instanceof PluginRefError || err instanceof PluginSourceError || err instanceof PluginLimitError || err instanceof PluginContentError) return err;
    const e = err as { code?: string; message?: string; data?: { statusCode?: number; statusMessage?: string } };
    const via = source.mirrored ? ` via mirror ${source.location}` : "";
    let message: string;
    if (e.code === "HttpError" && e.data?.statusCode !== undefined) {
      const status = `HTTP ${e.data.statusCode}${e.data.statusMessage ? ` ${e.data.statusMessage}` : ""}`;
      if (e.data.statusCode === 401 || e.data.statusCode === 403) {
        message = `the source refused access (${status})${via}; ${source.auth ? "check the credentials given for it" : "it needs credentials: add them to the lab's plugin settings"}`;
      } else if (e.data.statusCode === 404 && (source.kind === "file" || source.kind === "path")) {
        // A local repository is read by git itself: say what git found, not an HTTP status.
        message = fs.existsSync(source.target)
          ? `${source.target} is not a git repository${e.data.statusMessage ? ` (${e.data.statusMessage})` : ""}${via}`
          : `no git repository there: ${source.target} does not exist${via}`;
      } else if (e.data.statusCode === 404) {
        message = `no git repository there (${status})${via}`;
      } else {
        message = `the source answered ${status}${via}`;
      }
    } else if (watch.timedOut) {
      message = `the source stopped answering${via} (no data for ${this.#timeoutMs}ms)`;
    } else if (e.code && UNREACHABLE.has(e.code)) {
      message = `cannot reach the source${via} (${e.code})`;
    } else if (e.code === "SmartHttpError" || e.code === "ParseError") {
      message = `the source is not a git smart-HTTP server${via}`;
    } else {
      message = `clone or fetch failed${via}: ${e.message ?? String(err)}`;
    }
    return new PluginSourceError(
      context,
      redact(message, source.secrets),
      { ...(source.mirrored ? { location: source.location } : {}), ...(e.code ? { cause: e.code } : {}) },
    );
  }
}

/** Matches a ref against the advertisement as `git fetch` does; annotated tags resolve to their tag object. */
/**
 * Matches a ref against the advertisement as `git fetch` does; annotated tags resolve to
 * their tag object. `HEAD` is the remote's default branch: the branch its symref names
 * (fullref), else its commit alone (fullref null).
 */
export function matchRef(advertised: readonly RemoteRef[], ref: string): { oid: string; fullref: string | null } | undefined {
  const byName = new Map(advertised.map((r) => [r.ref, r]));
  if (ref === "HEAD") {
    const head = byName.get("HEAD");
    if (!head) return undefined;
    return { oid: head.oid, fullref: head.target !== undefined && byName.has(head.target) ? head.target : null };
  }
  const candidates = ref.startsWith("refs/") ? [ref] : [`refs/${ref}`, `refs/tags/${ref}`, `refs/heads/${ref}`];
  for (const name of candidates) {
    const found = byName.get(name);
    if (found) return { oid: found.oid, fullref: name };
  }
  return undefined;
}

/** Network errors (Node's `code`) that mean the source cannot be reached at all. */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);

/** The chunks of `body`, calling `arm` at each (an idle watchdog), and `done` when it ends. */
async function* idle(body: AsyncIterableIterator<Uint8Array>, arm: () => void, done: () => void): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of body) {
      arm();
      yield chunk;
    }
  } finally {
    done();
  }
}

/** Adds every file and directory under `root/rel` to `walk`, with the files' sizes. */
async function walkDisk(root: string, rel: string, walk: TreeWalk): Promise<void> {
  walk.add(rel, "directory");
  for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
    const path = `${rel}/${entry.name}`;
    if (entry.isDirectory()) await walkDisk(root, path, walk);
    else walk.add(path, "file", { size: (await stat(join(root, path))).size });
  }
}

function unknownRefMessage(ref: string, advertised: readonly RemoteRef[]): string {
  const names = (prefix: string) =>
    advertised
      .filter((r) => r.ref.startsWith(prefix))
      .map((r) => r.ref.slice(prefix.length))
      .slice(0, 8);
  const branches = names("refs/heads/");
  const tags = names("refs/tags/");
  if (advertised.length === 0) return `the repository is empty, so ref ${ref} does not exist`;
  return (
    `ref ${ref} is no branch, tag or commit of the repository` +
    ` (branches: ${branches.join(", ") || "none"}; tags: ${tags.join(", ") || "none"})`
  );
}

function gitConfig(url: string): string {
  const quoted = `"${url.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return [
    "[core]",
    "\trepositoryformatversion = 0",
    "\tfilemode = true",
    "\tbare = false",
    "\tlogallrefupdates = true",
    '[remote "origin"]',
    `\turl = ${quoted}`,
    "\tfetch = +refs/heads/*:refs/remotes/origin/*",
    "",
  ].join("\n");
}

async function isRepo(dir: string): Promise<boolean> {
  return exists(join(dir, ".git", "HEAD"));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function hasObject(dir: string, oid: string, cache: object): Promise<boolean> {
  return git.readObject({ fs, dir, oid, cache, format: "deflated" }).then(
    () => true,
    () => false,
  );
}

/** Recreates a directory tree, hard-linking files (git objects never change) and copying where linking fails. */
async function linkTree(from: string, to: string, copy = false): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) await linkTree(source, target, copy);
    else if (copy) await copyFile(source, target);
    else await link(source, target).catch(() => copyFile(source, target));
  }
}
