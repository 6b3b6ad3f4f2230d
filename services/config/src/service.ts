import { z } from "zod";
import { casUpdate, type Bus, type KV, type Logger, type Subscription } from "@stackbus/bus";
import { hostConfig, InvalidManifestError, labPluginAccess, labShow, validateLab, type Lab } from "@stackbus/lab";
import {
  BUCKETS,
  ConfigApplyReplySchema,
  ConfigApplyRequestSchema,
  ConfigGetRequestSchema,
  ConfigRevisionEventSchema,
  ErrorCode,
  HostConfigSchema,
  keys,
  LabPluginAccessRequestSchema,
  LabPluginAccessSchema,
  LabShowRequestSchema,
  LabShowSchema,
  parseSubject,
  QUEUES,
  StackbusError,
  subjects,
  wildcards,
  type ConfigApplyReply,
  type ConfigApplyRequest,
  type Diagnostic,
  LabListRequestSchema,
  LabDeleteRequestSchema,
  LabDeleteReplySchema,
  LabListSchema,
} from "@stackbus/protocol";

export interface ConfigServiceOptions {
  bus: Bus;
  logger: Logger;
  /** Revisions kept per lab (KV history), so runs created from an older revision still get it; see CONFIG_SERVICE_DEFAULTS. */
  history?: number;
}

/** The config service's defaults: the one place they are set. */
export const CONFIG_SERVICE_DEFAULTS = {
  /** KV history per lab. JetStream keeps at most 64 values per key. */
  history: 10,
} as const;

/** The options with the defaults applied, checked once when the service starts. */
export function compileConfigServiceOptions(options: ConfigServiceOptions): Required<ConfigServiceOptions> {
  const history = options.history ?? CONFIG_SERVICE_DEFAULTS.history;
  if (!Number.isInteger(history) || history < 1 || history > 64) {
    throw new StackbusError(ErrorCode.InvalidArgument, `config service history ${history} must be a whole number from 1 to 64`, { value: String(history) });
  }
  return { bus: options.bus, logger: options.logger, history };
}

export interface ConfigServiceHandle {
  /** Stops answering (drains the subscriptions); the bus stays open. */
  stop(): Promise<void>;
}

/** What the labs bucket holds under `keys.lab(lab)`: the applied bundle, its revision and when. */
const StoredLabSchema = z.object({
  revision: z.number().int().positive(),
  appliedAt: z.number().int().nonnegative(),
  request: ConfigApplyRequestSchema,
});
type StoredLab = z.infer<typeof StoredLabSchema>;

interface Loaded {
  stored: StoredLab;
  lab: Lab;
}

const MAX_CACHED_REVISIONS = 64;

function sameBundle(a: ConfigApplyRequest, b: ConfigApplyRequest): boolean {
  const canonical = (r: ConfigApplyRequest) => JSON.stringify([r.file, r.text, Object.entries(r.files).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))]);
  return canonical(a) === canonical(b);
}

function labOf(subject: string): string {
  const parsed = parseSubject(subject);
  if (parsed === undefined) throw new StackbusError(ErrorCode.BadMessage, `${subject} is not a stackbus subject`, { subject });
  return parsed.lab;
}

function notApplied(lab: string): StackbusError {
  return new StackbusError(
    ErrorCode.NotFound,
    `no lab ${JSON.stringify(lab)} has been applied: run \`stackbus lab apply FILE\` first`,
    { lab },
  );
}

/**
 * Creates the agents' registry bucket (agents may not create buckets), with direct gets off:
 * an agent writes its own key, and reads it back through the stream-message get, whose reply
 * is a JSON envelope rather than the value it wrote (a direct get answers with the stored
 * value itself, on any reply subject the asker names, such as another host's command
 * subject). A bucket an earlier version let the agents create is switched over.
 */
async function ensureAgentRegistry(bus: Bus): Promise<void> {
  await bus.kv(BUCKETS.agents);
  const jsm = await bus.jsm();
  const stream = `KV_${BUCKETS.agents}`;
  const info = await jsm.streams.info(stream);
  if (info.config.allow_direct) await jsm.streams.update(stream, { ...info.config, allow_direct: false });
}

/**
 * The revisions of every lab, in the labs KV bucket, with the ones already validated kept
 * in memory: a revision is validated again only when its stored record changed.
 */
class LabStore {
  readonly #kv: KV;
  readonly #current = new Map<string, { kvRevision: number; loaded: Loaded }>();
  readonly #byRevision = new Map<string, Loaded>();
  /** Where each of our revisions sits in the KV stream (`lab#revision` -> KV revision). */
  readonly #sequences = new Map<string, number>();

  constructor(kv: KV) {
    this.#kv = kv;
  }

  /** The names of every lab ever applied. */
  async names(): Promise<string[]> {
    const names: string[] = [];
    for await (const k of await this.#kv.keys()) names.push(k);
    return names;
  }

  #revalidate(labName: string, stored: StoredLab): Loaded {
    const key = `${labName}#${stored.revision}`;
    const cached = this.#byRevision.get(key);
    if (cached !== undefined && cached.stored.appliedAt === stored.appliedAt && sameBundle(cached.stored.request, stored.request)) return cached;
    const validation = validateLab(stored.request);
    if (!validation.ok || validation.lab === undefined || validation.lab.name !== labName) {
      throw new InvalidManifestError(
        stored.request.file,
        validation.diagnostics,
        `revision ${stored.revision} of lab ${JSON.stringify(labName)} (${stored.request.file}) does not validate any more`,
      );
    }
    const loaded = { stored, lab: validation.lab };
    this.#byRevision.set(key, loaded);
    if (this.#byRevision.size > MAX_CACHED_REVISIONS) this.#byRevision.delete(this.#byRevision.keys().next().value as string);
    return loaded;
  }

  /** The current revision of a lab, or undefined when it was never applied. */
  async current(labName: string): Promise<{ kvRevision: number; loaded: Loaded } | undefined> {
    const entry = await this.#kv.get(keys.lab(labName));
    if (entry === null || entry.operation !== "PUT") return undefined;
    const cached = this.#current.get(labName);
    if (cached !== undefined && cached.kvRevision === entry.revision) return cached;
    const fresh = { kvRevision: entry.revision, loaded: this.#revalidate(labName, decodeEntry(labName, entry.json())) };
    this.#sequences.set(`${labName}#${fresh.loaded.stored.revision}`, entry.revision);
    this.#current.set(labName, fresh);
    return fresh;
  }

  /** A revision of a lab (the current one when `revision` is undefined), as long as the bucket keeps it. */
  async revision(labName: string, revision: number | undefined): Promise<Loaded> {
    const latest = await this.current(labName);
    if (latest === undefined) throw notApplied(labName);
    if (revision === undefined || revision === latest.loaded.stored.revision) return latest.loaded;
    const known = this.#sequences.get(`${labName}#${revision}`);
    if (known !== undefined) {
      const entry = await this.#kv.get(keys.lab(labName), { revision: known });
      if (entry !== null && entry.operation === "PUT") {
        const stored = decodeEntry(labName, entry.json());
        if (stored.revision === revision) return this.#revalidate(labName, stored);
      }
    }
    const kept: number[] = [];
    const iter = await this.#kv.history({ key: keys.lab(labName) });
    let found: StoredLab | undefined;
    for await (const e of iter) {
      if (e.operation !== "PUT") continue;
      const stored = decodeEntry(labName, e.json());
      this.#sequences.set(`${labName}#${stored.revision}`, e.revision);
      kept.push(stored.revision);
      if (stored.revision === revision) found = stored;
    }
    if (found === undefined) {
      throw new StackbusError(
        ErrorCode.NotFound,
        revision > latest.loaded.stored.revision
          ? `lab ${JSON.stringify(labName)} has no revision ${revision} (the current one is ${latest.loaded.stored.revision})`
          : `revision ${revision} of lab ${JSON.stringify(labName)} is no longer kept (kept: ${kept.join(", ")})`,
        { lab: labName, revision },
      );
    }
    return this.#revalidate(labName, found);
  }

  /** Removes a lab and every revision of it. Returns the revision that was current, if any. */
  async remove(labName: string): Promise<number | undefined> {
    const latest = await this.current(labName).catch(() => undefined);
    const entry = await this.#kv.get(keys.lab(labName));
    if (entry === null || entry.operation !== "PUT") return undefined;
    await this.#kv.purge(keys.lab(labName));
    this.#current.delete(labName);
    for (const key of [...this.#byRevision.keys(), ...this.#sequences.keys()]) {
      if (key.startsWith(`${labName}#`)) {
        this.#byRevision.delete(key);
        this.#sequences.delete(key);
      }
    }
    return latest?.loaded.stored.revision ?? 0;
  }

  /**
   * Stores `request` (already validated as `lab`) as the lab's next revision, unless it is
   * the bundle of the current one. Returns the revision and whether it was new.
   */
  async store(labName: string, request: ConfigApplyRequest, lab: Lab): Promise<{ stored: StoredLab; unchanged: boolean }> {
    const { result, revision } = await casUpdate<{ stored: StoredLab; unchanged: boolean }>(
      this.#kv,
      keys.lab(labName),
      (live) => {
        const previous = live ? decodeEntry(labName, live.json()) : undefined;
        if (previous !== undefined && sameBundle(previous.request, request)) return { unchanged: { stored: previous, unchanged: true } };
        const stored: StoredLab = { revision: (previous?.revision ?? 0) + 1, appliedAt: Date.now(), request };
        return { value: JSON.stringify(stored), result: { stored, unchanged: false } };
      },
      {
        attempts: 20,
        conflict: () => new StackbusError(ErrorCode.Conflict, `lab ${JSON.stringify(labName)} kept changing while it was being applied; try again`, { lab: labName }),
        writeFailed: (err) =>
          new StackbusError(ErrorCode.Unavailable, `could not store lab ${JSON.stringify(labName)}: ${(err as Error).message}`, { lab: labName }, { cause: err }),
      },
    );
    if (revision !== undefined) {
      const loaded = { stored: result.stored, lab };
      this.#sequences.set(`${labName}#${result.stored.revision}`, revision);
      this.#byRevision.set(`${labName}#${result.stored.revision}`, loaded);
      this.#current.set(labName, { kvRevision: revision, loaded });
    }
    return result;
  }
}

function decodeEntry(labName: string, data: unknown): StoredLab {
  const parsed = StoredLabSchema.safeParse(data);
  if (!parsed.success) {
    throw new StackbusError(ErrorCode.Internal, `the stored record of lab ${JSON.stringify(labName)} is damaged: ${parsed.error.message}`, { lab: labName });
  }
  return parsed.data;
}

/** Validates a bundle sent to `labName`: the lab, or InvalidManifestError with every diagnostic. */
function validateFor(labName: string, request: ConfigApplyRequest, log: Logger): { lab: Lab; warnings: Diagnostic[] } {
  const validation = validateLab(request);
  const diagnostics: Diagnostic[] = [...validation.diagnostics];
  if (validation.lab !== undefined && validation.lab.name !== labName) {
    diagnostics.push({
      severity: "error",
      file: request.file,
      path: "lab",
      message: `${request.file}: lab: the manifest is for lab ${JSON.stringify(validation.lab.name)} but was sent to lab ${JSON.stringify(labName)}`,
    });
  }
  const lab = validation.lab;
  if (!validation.ok || lab === undefined || diagnostics.some((d) => d.severity === "error")) {
    log.warn({ lab: labName, errors: diagnostics.filter((d) => d.severity === "error").length }, "refused an invalid lab bundle");
    throw new InvalidManifestError(request.file, diagnostics);
  }
  return { lab, warnings: diagnostics.filter((d) => d.severity === "warning") };
}

/**
 * The config service: accepts lab bundles over NATS, validates all of each (manifest and
 * every local.conf), stores a new revision in the labs KV bucket only when it is entirely
 * valid, and answers config.get, lab show and the fetcher's plugin settings. Its state
 * lives in JetStream, so a restarted instance (or several in the queue group) serves the
 * same revisions.
 */
export async function startConfigService(input: ConfigServiceOptions): Promise<ConfigServiceHandle> {
  const options = compileConfigServiceOptions(input);
  const { bus } = options;
  const log = options.logger;
  const labs = new LabStore(await bus.kv(BUCKETS.labs, { history: options.history }));
  await ensureAgentRegistry(bus);

  const apply = async (request: ConfigApplyRequest, subject: string): Promise<ConfigApplyReply> => {
    const labName = labOf(subject);
    const { lab, warnings } = validateFor(labName, request, log);
    const { stored, unchanged } = await labs.store(labName, request, lab);
    const hosts = lab.hosts.map((h) => h.name);
    if (!unchanged) {
      log.info({ lab: labName, revision: stored.revision, hosts: lab.hosts.length }, "applied a new lab revision");
      bus.publish(subjects.configRevision(labName), ConfigRevisionEventSchema, { lab: labName, revision: stored.revision, appliedAt: stored.appliedAt, hosts });
    }
    return { lab: lab.name, revision: stored.revision, unchanged, hosts, warnings };
  };

  const queue = { queue: QUEUES.config };
  const subs: Subscription[] = [
    bus.serve(wildcards.configApply, ConfigApplyRequestSchema, ConfigApplyReplySchema, apply, queue),
    bus.serve(
      wildcards.configGet,
      ConfigGetRequestSchema,
      HostConfigSchema,
      async (req, subject) => {
        const host = parseSubject(subject)?.tokens[2] ?? "";
        const loaded = await labs.revision(labOf(subject), req.revision);
        return hostConfig(loaded.lab, host, loaded.stored.revision);
      },
      queue,
    ),
    bus.serve(
      wildcards.configShow,
      LabShowRequestSchema,
      LabShowSchema,
      async (req, subject) => {
        const loaded = await labs.revision(labOf(subject), req.revision);
        return labShow(loaded.lab, loaded.stored.revision, loaded.stored.appliedAt);
      },
      queue,
    ),
    bus.serve(
      wildcards.configPluginSettings,
      LabPluginAccessRequestSchema,
      LabPluginAccessSchema,
      async (req, subject) => labPluginAccess((await labs.revision(labOf(subject), req.revision)).lab),
      queue,
    ),
    bus.serve(
      wildcards.configDelete,
      LabDeleteRequestSchema,
      LabDeleteReplySchema,
      async (_req, subject) => {
        const labName = labOf(subject);
        const revision = await labs.remove(labName);
        if (revision !== undefined) log.info({ lab: labName, revision }, "deleted a lab");
        return { lab: labName, deleted: revision !== undefined, revision: revision || null };
      },
      queue,
    ),
    bus.serve(
      subjects.labList(),
      LabListRequestSchema,
      LabListSchema,
      async () => {
        const list = [];
        for (const name of (await labs.names()).sort()) {
          const latest = await labs.current(name).catch(() => undefined);
          if (latest) list.push({ lab: name, revision: latest.loaded.stored.revision, hosts: latest.loaded.lab.hosts.map((h) => h.name) });
        }
        return { labs: list };
      },
      queue,
    ),
  ];
  await bus.flush();
  log.info({ bucket: BUCKETS.labs }, "config service ready");

  return {
    async stop() {
      await Promise.all(subs.map((s) => s.drain().catch(() => undefined)));
    },
  };
}
