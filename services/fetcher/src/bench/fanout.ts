#!/usr/bin/env node
/**
 * Fan-out benchmark: N hosts receiving one plugin through stackbus (one clone by the
 * fetcher, N object-store downloads and unpacks) against N hosts each cloning it with
 * isomorphic-git, as DevStack's git_clone does on every host. Not a test.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import git from "isomorphic-git";
import nodeHttp from "isomorphic-git/http/node";
import { Bus, silentLogger, type ObjectStore } from "@stackbus/bus";
import { installPlugin } from "@stackbus/plugin-install";
import {
  LabPluginAccessRequestSchema,
  LabPluginAccessSchema,
  OBJECT_STORES,
  PluginResolveReplySchema,
  PluginResolveRequestSchema,
  subjects,
  type LabPluginAccess,
} from "@stackbus/protocol";
import { startGitServer, startNats, tempDir, type FixtureFile } from "@stackbus/testkit";
import { startFetcherService } from "../service.js";

export interface FanoutBenchOptions {
  /** Hosts receiving the plugin. @default 50 */
  hosts: number;
  /** Size of the plugin's incompressible content. @default 5 */
  sizeMB: number;
  /** Measurements of each side; the medians are reported. @default 3 */
  repetitions: number;
  /** Measure the clones too (off: the stackbus side alone, for profiling it). @default true */
  clones?: boolean;
  /** Measurements of the clones (they vary little and take the longest). @default repetitions */
  cloneRepetitions?: number;
}

export interface FanoutBenchResult {
  hosts: number;
  sizeMB: number;
  /** Bytes of one plugin archive in the object store. */
  archiveBytes: number;
  /** Wall time for all hosts to have the plugin through stackbus, per repetition. */
  stackbusMs: number[];
  /** Of stackbusMs, the time until the fetcher answered the first host (clone, archive, upload), per repetition. */
  fetcherMs: number[];
  /**
   * The transport's own limit, per repetition: the time for the N hosts' connections to
   * read the archive from the object store at once, each byte only counted (the object
   * store's own digest check included), nothing hashed again, written or unpacked.
   */
  transferMs: number[];
  /** Wall time for all hosts to have cloned the plugin themselves, per repetition. */
  clonesMs: number[];
  medianStackbusMs: number;
  medianClonesMs: number;
  /** medianClonesMs / medianStackbusMs: above 1, stackbus is faster. */
  speedup: number;
  /** upload-pack requests the git server saw during the stackbus runs (one clone per run). */
  stackbusUploadPacks: number;
  /**
   * The disk's own limit, per repetition: the time to write N copies of the archive's
   * bytes (one file per host, at once, no fsync, as unpacking and cloning write), in the
   * same directory.
   */
  diskMs: number[];
  medianDiskMs: number;
}

/**
 * Runs the fan-out benchmark on this machine: a real nats-server, the testkit git
 * server, a fresh fetcher and a fresh plugin name for every repetition (so each
 * stackbus run includes its clone and archive), and N host connections.
 */
export async function runFanoutBench(options: FanoutBenchOptions): Promise<FanoutBenchResult> {
  const { hosts, sizeMB, repetitions } = options;
  const nats = await startNats();
  const gitServer = await startGitServer();
  const work = tempDir("sb-bench-fanout-");
  const logger = silentLogger();
  const buses: Bus[] = [];
  try {
    const files: Record<string, FixtureFile> = {
      "devstack/plugin.sh": { content: "echo bench plugin $1 $2\n", mode: 0o755 },
      "devstack/settings": "define_plugin bench\n",
    };
    const perFile = 512 * 1024;
    for (let i = 0; i * perFile < sizeMB * 1024 * 1024; i++) files[`data/blob-${i}.bin`] = { content: randomBytes(perFile) };
    await gitServer.commit("bench", files);
    const url = gitServer.repoUrl("bench");

    const fetcherBus = await Bus.connect({ servers: nats.url, name: "bench-fetcher", logger });
    buses.push(fetcherBus);
    // The config service's answer for the bench lab: its hosts, and the plugin each repetition registers.
    const access: LabPluginAccess = {
      order: "registration",
      reclone: false,
      offline: false,
      mirrors: [],
      allowSchemes: ["http"],
      credentials: [],
      hosts: Array.from({ length: hosts }, (_, i) => `host-${i}`),
      plugins: Array.from({ length: repetitions }, (_, rep) => ({ name: `bench-${rep}`, url })),
    };
    await fetcherBus.confirmed(fetcherBus.serve(subjects.configPluginSettings("bench"), LabPluginAccessRequestSchema, LabPluginAccessSchema, () => access));
    for (let i = 0; i < hosts; i++) buses.push(await Bus.connect({ servers: nats.url, name: `bench-host-${i}`, logger }));
    const hostBuses = buses.slice(1);
    const stores = await Promise.all(hostBuses.map((b) => b.objectStore(OBJECT_STORES.plugins)));

    const stackbusMs: number[] = [];
    const fetcherMs: number[] = [];
    const clonesMs: number[] = [];
    // Node's global agent drops sockets idle for 5 s; 50 clones on a small machine wait longer than that for their packs.
    const http = { request: (req: Parameters<typeof nodeHttp.request>[0]) => nodeHttp.request({ ...req, fetchOptions: { timeout: 600_000 } }) };
    let archiveBytes = 0;
    let archiveObject = "";
    const packsBefore = gitServer.uploadPacks("bench");
    for (let rep = 0; rep < repetitions; rep++) {
      const fetcher = await startFetcherService({ bus: fetcherBus, logger, cacheDir: join(work.path, `cache-${rep}`) });
      const name = `bench-${rep}`;
      const started = performance.now();
      let answered = 0;
      await Promise.all(
        hostBuses.map(async (bus, i) => {
          const plugin = await bus.request(
            subjects.pluginsResolve("bench", `host-${i}`),
            PluginResolveRequestSchema,
            { name, url, ref: "master" },
            PluginResolveReplySchema,
            { timeoutMs: 600_000 },
          );
          archiveBytes = plugin.size;
          archiveObject = plugin.object;
          answered ||= performance.now() - started;
          await installPlugin({ store: stores[i] as (typeof stores)[number], plugin, dest: join(work.path, `sb-${rep}`, `host-${i}`), reclone: false });
        }),
      );
      stackbusMs.push(performance.now() - started);
      fetcherMs.push(answered);
      await fetcher.stop();
      rmSync(join(work.path, `sb-${rep}`), { recursive: true, force: true });
    }
    const stackbusUploadPacks = gitServer.uploadPacks("bench") - packsBefore;

    const transferMs = await timed(repetitions, () => Promise.all(stores.map((store) => readArchive(store, archiveObject, archiveBytes))));
    for (let rep = 0; rep < (options.clones === false ? 0 : (options.cloneRepetitions ?? repetitions)); rep++) {
      const root = join(work.path, `clone-${rep}`);
      mkdirSync(root, { recursive: true });
      const started = performance.now();
      await Promise.all(
        Array.from({ length: hosts }, (_, i) => git.clone({ fs, http, dir: join(root, `host-${i}`, "bench"), url, ref: "master" })),
      );
      clonesMs.push(performance.now() - started);
      rmSync(root, { recursive: true, force: true });
    }
    const diskMs = await diskLimit(join(work.path, "disk"), hosts, archiveBytes, repetitions);

    const medianStackbusMs = median(stackbusMs);
    const medianClonesMs = median(clonesMs);
    return {
      hosts,
      sizeMB,
      archiveBytes,
      stackbusMs,
      fetcherMs,
      transferMs,
      clonesMs,
      medianStackbusMs,
      medianClonesMs,
      speedup: medianClonesMs / medianStackbusMs,
      stackbusUploadPacks,
      diskMs,
      medianDiskMs: median(diskMs),
    };
  } finally {
    await Promise.all(buses.map((b) => b.drain().catch(() => undefined)));
    await gitServer.stop();
    await nats.stop();
    work.remove();
  }
}

/** Runs `work` `repetitions` times, one after another; the wall time of each. */
async function timed(repetitions: number, work: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let rep = 0; rep < repetitions; rep++) {
    const started = performance.now();
    await work();
    times.push(performance.now() - started);
  }
  return times;
}

/** Reads an object of the store to its end, counting its bytes only (the store checks its digest). */
async function readArchive(store: ObjectStore, object: string, size: number): Promise<void> {
  const got = await store.get(object);
  if (!got) throw new Error(`the archive ${object} is not in the object store`);
  let bytes = 0;
  for await (const chunk of got.data) bytes += chunk.byteLength;
  const err = await got.error;
  if (err || bytes !== size) throw new Error(`reading ${object}: ${err?.message ?? `${bytes} bytes, not ${size}`}`);
}

/** The disk's limit: `hosts` copies of `size` bytes written at once (no fsync), per repetition. */
async function diskLimit(dir: string, hosts: number, size: number, repetitions: number): Promise<number[]> {
  const bytes = randomBytes(size);
  const times: number[] = [];
  for (let rep = 0; rep < repetitions; rep++) {
    const root = join(dir, String(rep));
    mkdirSync(root, { recursive: true });
    const started = performance.now();
    await Promise.all(Array.from({ length: hosts }, (_, i) => fs.promises.writeFile(join(root, `host-${i}.bin`), bytes)));
    times.push(performance.now() - started);
    rmSync(root, { recursive: true, force: true });
  }
  return times;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      hosts: { type: "string", default: "50" },
      "size-mb": { type: "string", default: "5" },
      repetitions: { type: "string", default: "3" },
      json: { type: "boolean", default: false },
      "no-clones": { type: "boolean", default: false },
      "clone-repetitions": { type: "string" },
    },
    strict: true,
  });
  const options = {
    hosts: positiveInt("--hosts", values.hosts),
    sizeMB: positiveInt("--size-mb", values["size-mb"]),
    repetitions: positiveInt("--repetitions", values.repetitions),
    clones: !values["no-clones"],
    ...(values["clone-repetitions"] !== undefined ? { cloneRepetitions: positiveInt("--clone-repetitions", values["clone-repetitions"]) } : {}),
  };
  const result = await runFanoutBench(options);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const ms = (v: number) => `${Math.round(v)} ms`;
  process.stdout.write(
    [
      `fan-out: ${result.hosts} hosts, ${result.sizeMB} MB plugin (archive ${(result.archiveBytes / 1024 / 1024).toFixed(1)} MB), ${options.repetitions} repetitions`,
      `  stackbus (1 clone + object store): median ${ms(result.medianStackbusMs)}  [${result.stackbusMs.map(ms).join(", ")}]  upload-packs: ${result.stackbusUploadPacks}`,
      `    of which the fetcher's clone, archive and upload, until it answered the first host: [${result.fetcherMs.map(ms).join(", ")}]`,
      `  the transport's limit (${result.hosts} reads of the archive from the object store at once): [${result.transferMs.map(ms).join(", ")}]`,
      `  ${result.hosts} isomorphic-git clones:         median ${ms(result.medianClonesMs)}  [${result.clonesMs.map(ms).join(", ")}]`,
      `  ratio clones / stackbus: ${result.speedup.toFixed(2)}x`,
      `  the disk's limit (${result.hosts} copies of the archive's bytes written): median ${ms(result.medianDiskMs)}  [${result.diskMs.map(ms).join(", ")}]`,
      "",
    ].join("\n"),
  );
}

function positiveInt(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer, not ${JSON.stringify(value)}`);
  return n;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`fan-out benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exit(1);
    },
  );
}
