import { z } from "zod";
import type { Bus, KV, Logger, Subscription } from "@stackbus/bus";
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
  LabListSchema,
} from "@stackbus/protocol";

export interface ConfigServiceOptions {
  bus: Bus;
  logger: Logger;
  /** Revisions kept per lab (KV history), so runs created from an older revision still get it. @default 10 */
  history?: number;
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
 * The config service: accepts lab bundles over NATS, validates all of each (manifest and
 * every local.conf), stores a new revision in the labs KV bucket only when it is entirely
 * valid, and answers config.get, lab show and the fetcher's plugin settings. Its state
 * lives in JetStream, so a restarted instance (or several in the queue group) serves the
 * same revisions.
 */
export async function startConfigService(options: ConfigServiceOptions): Promise<ConfigServiceHandle> {
  const { bus } = options;
  const log = options.logger;
  const kv: KV = await bus.kv(BUCKETS.labs, { history: options.history ?? 10 });
  await ensureAgentRegistry(bus);
  const current = new Map<string, { kvRevision: number; loaded: Loaded }>();
  const byRevision = new Map<string, Loaded>();
  /** Where each of our revisions sits in the KV stream (`lab#revision` -> KV revision). */
  const sequences = new Map<string, number>();

  const revalidate = (labName: string, stored: StoredLab): Loaded => {
    const key = `${labName}#${stored.revision}`;
    const cached = byRevision.get(key);
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
    byRevision.set(key, loaded);
    if (byRevision.size > MAX_CACHED_REVISIONS) byRevision.delete(byRevision.keys().next().value as string);
    return loaded;
  };

  const decodeEntry = (labName: string, data: unknown): StoredLab => {
    const parsed = StoredLabSchema.safeParse(data);
    if (!parsed.success) {
      throw new StackbusError(ErrorCode.Internal, `the stored record of lab ${JSON.stringify(labName)} is damaged: ${parsed.error.message}`, { lab: labName });
    }
    return parsed.data;
  };

  const loadCurrent = async (labName: string): Promise<{ kvRevision: number; loaded: Loaded } | undefined> => {
    const entry = await kv.get(keys.lab(labName));
    if (entry === null || entry.operation !== "PUT") return undefined;
    const cached = current.get(labName);
    if (cached !== undefined && cached.kvRevision === entry.revision) return cached;
    const fresh = { kvRevision: entry.revision, loaded: revalidate(labName, decodeEntry(labName, entry.json())) };
    sequences.set(`${labName}#${fresh.loaded.stored.revision}`, entry.revision);
    current.set(labName, fresh);
    return fresh;
  };

  const loadRevision = async (labName: string, revision: number | undefined): Promise<Loaded> => {
    const latest = await loadCurrent(labName);
    if (latest === undefined) throw notApplied(labName);
    if (revision === undefined || revision === latest.loaded.stored.revision) return latest.loaded;
    const known = sequences.get(`${labName}#${revision}`);
    if (known !== undefined) {
      const entry = await kv.get(keys.lab(labName), { revision: known });
      if (entry !== null && entry.operation === "PUT") {
        const stored = decodeEntry(labName, entry.json());
        if (stored.revision === revision) return revalidate(labName, stored);
      }
    }
    const kept: number[] = [];
    const iter = await kv.history({ key: keys.lab(labName) });
    let found: StoredLab | undefined;
    for await (const e of iter) {
      if (e.operation !== "PUT") continue;
      const stored = decodeEntry(labName, e.json());
      sequences.set(`${labName}#${stored.revision}`, e.revision);
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
    return revalidate(labName, found);
  };

  const apply = async (request: ConfigApplyRequest, subject: string): Promise<ConfigApplyReply> => {
    const labName = labOf(subject);
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
    const reply = (revision: number, unchanged: boolean): ConfigApplyReply => ({
      lab: lab.name,
      revision,
      unchanged,
      hosts: lab.hosts.map((h) => h.name),
      warnings: diagnostics.filter((d) => d.severity === "warning"),
    });
    const key = keys.lab(labName);
    for (let attempt = 0; attempt < 20; attempt++) {
      const entry = await kv.get(key);
      const live = entry !== null && entry.operation === "PUT" ? entry : null;
      const previous = live ? decodeEntry(labName, live.json()) : undefined;
      if (previous !== undefined && sameBundle(previous.request, request)) return reply(previous.revision, true);
      const stored: StoredLab = { revision: (previous?.revision ?? 0) + 1, appliedAt: Date.now(), request };
      const payload = JSON.stringify(stored);
      let kvRevision: number;
      try {
        kvRevision = live ? await kv.update(key, payload, live.revision) : await kv.create(key, payload);
      } catch (err) {
        if (/wrong last sequence|key exists|already exists/i.test((err as Error).message)) continue;
        throw new StackbusError(ErrorCode.Unavailable, `could not store lab ${JSON.stringify(labName)}: ${(err as Error).message}`, { lab: labName }, { cause: err });
      }
      const loaded = { stored, lab };
      sequences.set(`${labName}#${stored.revision}`, kvRevision);
      byRevision.set(`${labName}#${stored.revision}`, loaded);
      current.set(labName, { kvRevision, loaded });
      log.info({ lab: labName, revision: stored.revision, hosts: lab.hosts.length }, "applied a new lab revision");
      bus.publish(subjects.configRevision(labName), ConfigRevisionEventSchema, {
        lab: labName,
        revision: stored.revision,
        appliedAt: stored.appliedAt,
        hosts: lab.hosts.map((h) => h.name),
      });
      return reply(stored.revision, false);
    }
    throw new StackbusError(ErrorCode.Conflict, `lab ${JSON.stringify(labName)} kept changing while it was being applied; try again`, { lab: labName });
  };

  const subs: Subscription[] = [
    bus.serve(wildcards.configApply, ConfigApplyRequestSchema, ConfigApplyReplySchema, apply, { queue: QUEUES.config }),
    bus.serve(
      wildcards.configGet,
      ConfigGetRequestSchema,
      HostConfigSchema,
      async (req, subject) => {
        const parsed = parseSubject(subject);
        const host = parsed?.tokens[2] ?? "";
        const loaded = await loadRevision(labOf(subject), req.revision);
        return hostConfig(loaded.lab, host, loaded.stored.revision);
      },
      { queue: QUEUES.config },
    ),
    bus.serve(
      wildcards.configShow,
      LabShowRequestSchema,
      LabShowSchema,
      async (req, subject) => {
        const loaded = await loadRevision(labOf(subject), req.revision);
        return labShow(loaded.lab, loaded.stored.revision, loaded.stored.appliedAt);
      },
      { queue: QUEUES.config },
    ),
    bus.serve(
      wildcards.configPluginSettings,
      LabPluginAccessRequestSchema,
      LabPluginAccessSchema,
      async (req, subject) => labPluginAccess((await loadRevision(labOf(subject), req.revision)).lab),
      { queue: QUEUES.config },
    ),
    bus.serve(
      subjects.labList(),
      LabListRequestSchema,
      LabListSchema,
      async () => {
        const names: string[] = [];
        for await (const k of await kv.keys()) names.push(k);
        const labs = [];
        for (const name of names.sort()) {
          const latest = await loadCurrent(name).catch(() => undefined);
          if (latest) labs.push({ lab: name, revision: latest.loaded.stored.revision, hosts: latest.loaded.lab.hosts.map((h) => h.name) });
        }
        return { labs };
      },
      { queue: QUEUES.config },
    ),
  ];
  await bus.nc.flush();
  log.info({ bucket: BUCKETS.labs }, "config service ready");

  return {
    async stop() {
      await Promise.all(subs.map((s) => s.drain().catch(() => undefined)));
    },
  };
}
