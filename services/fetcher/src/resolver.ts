import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { rm } from "node:fs/promises";
import { Readable } from "node:stream";
import { z } from "zod";
import { natsDigestToHex, type KV, type Logger, type ObjectStore } from "@stackbus/bus";
import { DigestMismatchError, parsePluginSettings, requirementsOf } from "@stackbus/plugins";
import {
  ErrorCode,
  InvalidNameError,
  StackbusError,
  nameProblem,
  pluginObjectName,
  PluginResolveReplySchema,
  redactUrl,
  type LabPluginAccess,
  type PluginPinReply,
  type PluginPinRequest,
  type PluginResolveReply,
} from "@stackbus/protocol";
import { PluginNotRegisteredError, PluginOfflineError, type PluginContext } from "./errors.js";
import type { GitCache } from "./gitcache.js";
import { InFlight } from "./lock.js";
import { redact, resolveSource, type PluginSource } from "./source.js";

const FULL_SHA = /^[0-9a-f]{40}$/;

/** What the index remembers about a resolve, for offline serving. */
const IndexEntrySchema = PluginResolveReplySchema.extend({ at: z.number().int(), location: z.string() });
/** The commit a run's moving ref was resolved to, shared by every fetcher instance. */
const RunPinSchema = z.object({ commit: z.string().regex(FULL_SHA), at: z.number().int() });
/** The pin a run's hosts resolve under, after a resume pinned its refs again. */
const RunPinOfSchema = z.object({ pin: z.string().min(1), at: z.number().int() });

export interface ResolveInput {
  name: string;
  url: string;
  ref: string;
  runId?: string | undefined;
  /** The lab revision the requesting host runs; the current one when absent. */
  revision?: number | undefined;
}

export interface ResolverOptions {
  cache: GitCache;
  store: ObjectStore;
  /** The `BUCKETS.pluginIndex` bucket. */
  index: KV;
  logger: Logger;
  /**
   * The lab's plugin settings, credentials, hosts and registered plugins, at a revision or
   * the current one; `fresh` asks past any cached answer.
   */
  access: (lab: string, revision: number | undefined, fresh: boolean) => Promise<LabPluginAccess>;
}

/**
 * Answers plugins.resolve: a plugin's URL and ref become a commit and an archive in the
 * object store. Concurrent asks for the same plugin share one resolution; an archive is
 * built once per name and commit; a run pins each moving ref to the commit its first
 * ask saw; offline labs are served from the index and the clone cache only.
 */
export class PluginResolver {
  readonly #cache: GitCache;
  readonly #store: ObjectStore;
  readonly #index: KV;
  readonly #log: Logger;
  readonly #access: (lab: string, revision: number | undefined, fresh: boolean) => Promise<LabPluginAccess>;
  readonly #resolving = new InFlight();
  readonly #publishing = new InFlight();

  constructor(options: ResolverOptions) {
    this.#cache = options.cache;
    this.#store = options.store;
    this.#index = options.index;
    this.#log = options.logger;
    this.#access = options.access;
  }

  /**
   * Resolves `input` for `host` of `lab` (both taken from the request's subject). Only a
   * host of the lab may ask, and only for a plugin the lab registers under that name and
   * URL: anything else is refused before any source is contacted.
   */
  async resolve(lab: string, host: string, input: ResolveInput): Promise<PluginResolveReply> {
    const problem = nameProblem(input.name);
    if (problem !== undefined) {
      throw new InvalidNameError(
        "plugin",
        input.name,
        `plugin name ${JSON.stringify(input.name)} (${redactUrl(input.url)}) ${problem}; ` +
          `enable_plugin names become directories and subject tokens`,
      );
    }
    let access = await this.#access(lab, input.revision, false);
    if (!isRegistered(host, input, access)) {
      access = await this.#access(lab, input.revision, true);
      checkRegistered(lab, host, input, access);
    }
    const source = resolveSource(input.name, input.url, access);
    const context: PluginContext = { plugin: input.name, url: source.display };
    const key = [input.name, source.key, input.ref, input.runId ?? "", access.offline ? "offline" : "online"].join("\n");
    return this.#resolving.run(key, () => this.#cache.hold(source, async () => {
      try {
        const reply = access.offline
          ? await this.#offline(source, context, input)
          : await this.#online(source, context, input);
        this.#log.info(
          { lab, plugin: input.name, url: source.display, ref: input.ref, commit: reply.commit, runId: input.runId },
          "plugin resolved",
        );
        return reply;
      } catch (err) {
        if (err instanceof Error && source.secrets.length > 0) err.message = redact(err.message, source.secrets);
        throw err;
      }
    }));
  }

  async #online(source: PluginSource, context: PluginContext, input: ResolveInput): Promise<PluginResolveReply> {
    const commit = await this.#commitFor(source, context, input);
    const reply = await this.#publish(source, context, input, commit);
    const entry = { ...reply, at: Date.now(), location: source.location };
    await this.#index
      .put(indexKey(input.name, source, input.ref), JSON.stringify(IndexEntrySchema.parse(entry)))
      .catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, "could not record the resolve in the plugin index"));
    return reply;
  }

  async #commitFor(source: PluginSource, context: PluginContext, input: ResolveInput): Promise<string> {
    const { ref, runId } = input;
    if (FULL_SHA.test(ref) && (await this.#cache.has(source, ref))) {
      return this.#cache.peel(source, context, ref, ref);
    }
    if (runId === undefined || FULL_SHA.test(ref)) return (await this.#cache.resolve(source, context, ref)).commit;

    const pinKey = runKey(await this.#pinOf(runId), source, ref);
    const pinned = await this.#readPin(pinKey);
    if (pinned) {
      await this.#cache.ensure(source, context, pinned, null);
      return pinned;
    }
    const { commit } = await this.#cache.resolve(source, context, ref);
    try {
      await this.#index.create(pinKey, JSON.stringify({ commit, at: Date.now() }));
      return commit;
    } catch {
      const winner = await this.#readPin(pinKey);
      if (!winner || winner === commit) return commit;
      await this.#cache.ensure(source, context, winner, null);
      return winner;
    }
  }

  /** The pin a run's hosts resolve under now: the run id, until a resume pins its refs again. */
  async #pinOf(runId: string): Promise<string> {
    const entry = await this.#index.get(pinOfKey(runId)).catch(() => null);
    if (!entry || entry.operation !== "PUT") return runId;
    const parsed = RunPinOfSchema.safeParse(safeJson(entry.string()));
    return parsed.success ? parsed.data.pin : runId;
  }

  /**
   * Before a resumed attempt that picks up the lab's current config: resolves each of its
   * moving plugin refs again, once for every host, under the new pin, and makes that the
   * run's pin (so the hosts' resolves with the run id get these commits). Says, per plugin,
   * what the attempt before had under the previous pin. A commit ref is not moving: it is
   * what it says.
   */
  async pinAttempt(lab: string, request: PluginPinRequest): Promise<PluginPinReply> {
    const access = await this.#access(lab, request.revision, true);
    const out: PluginPinReply = { plugins: [], warnings: [] };
    const seen = new Set<string>();
    for (const wanted of request.plugins) {
      const urls = [...new Set(access.plugins.filter((p) => p.name === wanted.name).map((p) => p.url))];
      if (urls.length === 0) out.warnings.push(`plugin ${wanted.name} is not registered in revision ${request.revision}`);
      for (const url of urls) {
        const source = resolveSource(wanted.name, url, access);
        const id = `${wanted.name}\n${source.key}\n${wanted.ref}`;
        if (seen.has(id)) continue;
        seen.add(id);
        const context: PluginContext = { plugin: wanted.name, url: source.display };
        const before = await this.#pinned(request.previous, source, wanted.previousRef ?? wanted.ref);
        const after = await this.#cache.hold(source, async () => {
          if (FULL_SHA.test(wanted.ref)) return wanted.ref;
          const commit = access.offline
            ? ((await this.#cache.resolveLocal(source, context, wanted.ref)) ?? before ?? undefined)
            : (await this.#cache.resolve(source, context, wanted.ref)).commit;
          if (commit === undefined) throw new PluginOfflineError(context, wanted.ref);
          const key = runKey(request.pin, source, wanted.ref);
          await this.#index.put(key, JSON.stringify({ commit, at: Date.now() }));
          return commit;
        });
        out.plugins.push({ name: wanted.name, url: source.display, ref: wanted.ref, before, after });
      }
    }
    await this.#index.put(pinOfKey(request.runId), JSON.stringify({ pin: request.pin, at: Date.now() }));
    this.#log.info({ lab, runId: request.runId, pin: request.pin, plugins: out.plugins.length }, "plugin refs pinned again for a resumed attempt");
    return out;
  }

  /** The commit a pin had for a source and ref (a commit ref is its own). */
  async #pinned(pin: string, source: PluginSource, ref: string): Promise<string | null> {
    if (FULL_SHA.test(ref)) return ref;
    return (await this.#readPin(runKey(pin, source, ref))) ?? null;
  }

  async #readPin(key: string): Promise<string | undefined> {
    const entry = await this.#index.get(key).catch(() => null);
    if (!entry || entry.operation !== "PUT") return undefined;
    const parsed = RunPinSchema.safeParse(safeJson(entry.string()));
    return parsed.success ? parsed.data.commit : undefined;
  }

  async #offline(source: PluginSource, context: PluginContext, input: ResolveInput): Promise<PluginResolveReply> {
    if (input.runId !== undefined && !FULL_SHA.test(input.ref)) {
      const pinned = await this.#readPin(runKey(await this.#pinOf(input.runId), source, input.ref));
      if (pinned && (await this.#cache.has(source, pinned))) return this.#publish(source, context, input, pinned);
    }
    const indexed = await this.#index.get(indexKey(input.name, source, input.ref)).catch(() => null);
    if (indexed && indexed.operation === "PUT") {
      const entry = IndexEntrySchema.safeParse(safeJson(indexed.string()));
      if (entry.success) {
        const info = await this.#store.info(entry.data.object).catch(() => null);
        if (info && !info.deleted && info.size === entry.data.size) {
          const { at, location: _location, ...reply } = entry.data;
          const note = `offline: serving commit ${reply.commit} as resolved at ${new Date(at).toISOString()}`;
          return { ...reply, url: source.display, ref: input.ref, warnings: [...reply.warnings, note] };
        }
      }
    }
    const local = await this.#cache.resolveLocal(source, context, input.ref);
    if (local) return this.#publish(source, context, input, local);
    throw new PluginOfflineError(context, input.ref);
  }

  /** The reply for name@commit, building and storing the archive unless the object store has it already. */
  async #publish(source: PluginSource, context: PluginContext, input: ResolveInput, commit: string): Promise<PluginResolveReply> {
    const object = pluginObjectName(input.name, commit);
    const stored = await this.#publishing.run(object, async () => {
      const info = await this.#store.info(object).catch(() => null);
      if (info && !info.deleted) return { size: info.size, digest: natsDigestToHex(info.digest) };
      const built = await this.#cache.archive(source, context, commit);
      try {
        const put = await this.#store.put(
          { name: object, description: `plugin ${input.name} at ${commit}` },
          Readable.toWeb(createReadStream(built.file)) as ReadableStream<Uint8Array>,
        );
        const digest = natsDigestToHex(put.digest);
        if (digest !== built.digest || put.size !== built.size) {
          throw new DigestMismatchError(input.name, object, built.digest, `${digest} in the object store`, { expected: built.size, actual: put.size }, "it is not served");
        }
        this.#log.info({ object, size: built.size }, "plugin archive stored");
        return { size: built.size, digest: built.digest };
      } finally {
        await rm(built.file, { force: true });
      }
    });
    const { defines, requires, warnings } = await this.#describe(source, context, input.name, commit);
    return {
      name: input.name,
      url: source.display,
      ref: input.ref,
      commit,
      object,
      size: stored.size,
      digest: stored.digest,
      defines,
      requires,
      warnings,
    };
  }

  /** define_plugin / plugin_requires of the plugin at `commit`, and warnings about its layout. */
  async #describe(
    source: PluginSource,
    context: PluginContext,
    name: string,
    commit: string,
  ): Promise<{ defines: string | null; requires: string[]; warnings: string[] }> {
    const where = `plugin ${name} (${context.url}) at ${commit.slice(0, 12)}`;
    const listing = await this.#cache.listDir(source, commit, "devstack");
    if (listing === null) {
      const warning = `${where} has no devstack/ directory: DevStack would skip it, and it does nothing on the hosts`;
      this.#log.warn({ plugin: name, url: context.url, commit }, warning);
      return { defines: null, requires: [], warnings: [warning] };
    }
    const warnings: string[] = [];
    if (!["plugin.sh", "settings", "override-defaults"].some((f) => listing.includes(f))) {
      warnings.push(`${where} has neither devstack/plugin.sh, devstack/settings nor devstack/override-defaults: it does nothing on the hosts`);
    }
    const text = listing.includes("settings") ? await this.#cache.readFile(source, commit, "devstack/settings") : null;
    const settings = parsePluginSettings(text ?? "");
    if (settings.defines !== null && settings.defines !== name) {
      warnings.push(
        `${where}: devstack/settings says define_plugin ${settings.defines}, but it is enabled as ${name}; ` +
          `plugin_requires lines of either name count for it`,
      );
    }
    for (const warning of warnings) this.#log.warn({ plugin: name, url: context.url, commit }, warning);
    return { defines: settings.defines, requires: requirementsOf(settings, name), warnings };
  }

  /** Resolves when no resolve is in flight. */
  async idle(): Promise<void> {
    await this.#resolving.idle();
    await this.#publishing.idle();
  }
}

function isRegistered(host: string, input: ResolveInput, access: LabPluginAccess): boolean {
  return access.hosts.includes(host) && access.plugins.some((p) => p.name === input.name && p.url === input.url);
}

/** Refuses a host that is not in the lab, and a plugin the lab does not register with this name and URL. */
function checkRegistered(lab: string, host: string, input: ResolveInput, access: LabPluginAccess): void {
  const at = input.revision === undefined ? "" : ` at revision ${input.revision}`;
  if (!access.hosts.includes(host)) {
    throw new StackbusError(
      ErrorCode.PermissionDenied,
      `host ${JSON.stringify(host)} is not in lab ${JSON.stringify(lab)}${at}: plugins are resolved only for the lab's hosts`,
      { lab, host, plugin: input.name },
    );
  }
  if (access.plugins.some((p) => p.name === input.name && p.url === input.url)) return;
  const others = access.plugins.filter((p) => p.name === input.name).map((p) => redactUrl(p.url));
  throw new PluginNotRegisteredError({ plugin: input.name, url: redactUrl(input.url) }, lab, others);
}

function hash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\n")).digest("hex");
}

function indexKey(name: string, source: PluginSource, ref: string): string {
  return `ref.${hash(name, source.key, ref)}`;
}

/** The commit a pin resolved a moving ref to: the pin is the run id for a run's first attempt. */
function runKey(pin: string, source: PluginSource, ref: string): string {
  return `run.${hash(pin, source.key, ref)}`;
}

/** Which pin a run's hosts resolve under, once a resume pinned its refs again. */
function pinOfKey(runId: string): string {
  return `pin.${hash(runId)}`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
