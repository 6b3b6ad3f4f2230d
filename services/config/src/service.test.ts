import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import { Bus, silentLogger } from "@stackbus/bus";
import {
  BUCKETS,
  MAX_LAB_HOSTS,
  ConfigApplyReplySchema,
  ConfigApplyRequestSchema,
  ConfigGetRequestSchema,
  LabPluginAccessRequestSchema,
  ConfigRevisionEventSchema,
  ErrorCode,
  HostConfigSchema,
  LabPluginAccessSchema,
  LabShowRequestSchema,
  LabShowSchema,
  StackbusError,
  subjects,
  type ConfigApplyRequest,
  type Diagnostic,
  LabListRequestSchema,
  LabListSchema,
} from "@stackbus/protocol";
import { startNats, waitFor } from "@stackbus/testkit";
import { startConfigService, type ConfigServiceHandle } from "./service.js";

function manifest(lab: string, extra = ""): string {
  return `lab: ${lab}
plugins:
  credentials: [{ prefix: "https://git.example/", username: u, password: s3cret }]
common: { localConf: common.conf }
hosts:
  - name: controller
    wave: 1
    localConf: controller.conf
  - name: compute1
    wave: 2
    labels: { role: compute }
    localConfText: |
      [[local|localrc]]
      SERVICE_HOST=10.0.0.1
${extra}`;
}

function bundle(lab: string, controller = "[[local|localrc]]\nHOST_IP=10.0.0.1\n", extra = ""): ConfigApplyRequest {
  return {
    file: "/labs/lab.yaml",
    text: manifest(lab, extra),
    files: { "common.conf": "[[local|localrc]]\nenable_plugin heat https://opendev.org/openstack/heat\n", "controller.conf": controller },
  };
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, pattern: RegExp): Promise<StackbusError> {
  let caught: StackbusError | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StackbusError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    caught = err;
    return true;
  });
  return caught as StackbusError;
}

test("config service - over a real nats-server", async (t) => {
  await using server = await startNats();
  await using client = await Bus.connect({ servers: server.url, name: "client", logger: silentLogger() });
  let bus: Bus = await Bus.connect({ servers: server.url, name: "config", logger: silentLogger() });
  let service: ConfigServiceHandle = await startConfigService({ bus, logger: silentLogger() });
  // The service of the moment (a test restarts it), stopped before the client and the server.
  await using _service = {
    async [Symbol.asyncDispose]() {
      await service.stop();
      await bus.drain();
    },
  };
  const apply = (lab: string, request: ConfigApplyRequest) =>
    client.request(subjects.configApply(lab), ConfigApplyRequestSchema, request, ConfigApplyReplySchema);
  const get = (lab: string, host: string, revision?: number) =>
    client.request(subjects.configGet(lab, host), ConfigGetRequestSchema, revision === undefined ? {} : { revision }, HostConfigSchema);
  const show = (lab: string) => client.request(subjects.configShow(lab), LabShowRequestSchema, {}, LabShowSchema);

  await t.test("applies a valid lab as revision 1, then answers config.get and lab show from it", async () => {
    const reply = await apply("alpha", bundle("alpha"));
    assert.deepEqual(reply, { lab: "alpha", revision: 1, unchanged: false, hosts: ["controller", "compute1"], warnings: [] });
    const config = await get("alpha", "controller");
    assert.equal(config.revision, 1);
    assert.equal(config.wave, 1);
    assert.equal(config.localrc, "enable_plugin heat https://opendev.org/openstack/heat\nHOST_IP=10.0.0.1\n");
    assert.deepEqual(config.plugins.map((p) => [p.name, p.ref]), [["heat", "master"]]);
    assert.deepEqual(
      config.localConf.map((s) => s.file),
      ["/labs/common.conf", "/labs/controller.conf"],
    );
    const compute = await get("alpha", "compute1");
    assert.deepEqual(compute.labels, { role: "compute" });
    const shown = await show("alpha");
    assert.equal(shown.revision, 1);
    assert.deepEqual(shown.hosts.map((h) => h.name), ["controller", "compute1"]);
    assert.ok(!JSON.stringify(shown).includes("s3cret"), "lab show never carries credentials");
  });

  await t.test("lists the labs it holds, with their revision and hosts", async () => {
    await apply("alpha", bundle("alpha"));
    const list = await client.request(subjects.labList(), LabListRequestSchema, {}, LabListSchema);
    const alpha = list.labs.find((l) => l.lab === "alpha");
    assert.ok(alpha);
    assert.deepEqual(alpha.hosts, ["controller", "compute1"]);
    assert.ok(alpha.revision >= 1);
  });

  await t.test("returns the current revision unchanged for an identical bundle, and publishes an event for each new one", async () => {
    await apply("beta", bundle("beta"));
    assert.deepEqual(await apply("beta", bundle("beta")), { lab: "beta", revision: 1, unchanged: true, hosts: ["controller", "compute1"], warnings: [] });
    const events: unknown[] = [];
    client.subscribe(subjects.configRevision("beta"), ConfigRevisionEventSchema, (e) => void events.push(e));
    await client.flush();
    const second = await apply("beta", bundle("beta", "[[local|localrc]]\nHOST_IP=10.0.0.2\n"));
    assert.equal(second.revision, 2);
    assert.equal(second.unchanged, false);
    await waitFor("the revision event", () => events.length === 1);
    assert.deepEqual(events[0], { lab: "beta", revision: 2, appliedAt: (events[0] as { appliedAt: number }).appliedAt, hosts: ["controller", "compute1"] });
    assert.equal((await get("beta", "controller")).localrc.includes("HOST_IP=10.0.0.2"), true);
    const old = await get("beta", "controller", 1);
    assert.equal(old.revision, 1);
    assert.ok(old.localrc.includes("HOST_IP=10.0.0.1"), "config.get with a revision answers that revision");
    await rejectsWith(get("beta", "controller", 7), ErrorCode.NotFound, /lab "beta" has no revision 7 \(the current one is 2\)/);
  });

  await t.test("refuses an invalid bundle over a valid one with every error, and keeps serving the valid revision", async () => {
    await apply("gamma", bundle("gamma"));
    const invalid = bundle("gamma", "[[local|localrc]]\nenable_plugin heat https://elsewhere/heat\n[[post-config]]\n", "  - name: compute.2\n    wave: x\n");
    const err = await rejectsWith(apply("gamma", invalid), ErrorCode.InvalidManifest, /\/labs\/lab\.yaml is not a valid lab \(4 errors\)/);
    const diagnostics = err.data["diagnostics"] as Diagnostic[];
    const errors = diagnostics.filter((d) => d.severity === "error").map((d) => d.message);
    assert.equal(errors.length, 4, errors.join("\n"));
    assert.ok(errors.some((m) => /^\/labs\/lab\.yaml:15: hosts\[2\]\.name: "compute\.2" may not contain "\."/.test(m)), errors.join("\n"));
    assert.ok(errors.some((m) => /^\/labs\/lab\.yaml:16: hosts\[2\]\.wave: must be an integer/.test(m)), errors.join("\n"));
    assert.ok(errors.some((m) => /^\/labs\/controller\.conf:2: plugin "heat" is enabled twice \(first at \/labs\/common\.conf:2\)/.test(m)), errors.join("\n"));
    assert.ok(errors.some((m) => /^\/labs\/controller\.conf:3: malformed meta-section header/.test(m)), errors.join("\n"));
    const config = await get("gamma", "controller");
    assert.equal(config.revision, 1);
    assert.equal(config.localrc.includes("HOST_IP=10.0.0.1"), true);
    assert.equal((await show("gamma")).revision, 1);
  });

  await t.test("refuses a manifest sent to another lab's subject", async () => {
    await rejectsWith(apply("delta", bundle("epsilon")), ErrorCode.InvalidManifest, /the manifest is for lab "epsilon" but was sent to lab "delta"/);
    await rejectsWith(get("delta", "controller"), ErrorCode.NotFound, /no lab "delta" has been applied: run `stackbus lab apply FILE`/);
  });

  await t.test("answers NOT_FOUND naming the host and the lab for an unknown host", async () => {
    await apply("zeta", bundle("zeta"));
    await rejectsWith(get("zeta", "compute9"), ErrorCode.NotFound, /host "compute9" is not in lab "zeta"/);
  });

  await t.test(`refuses a manifest of more than ${MAX_LAB_HOSTS} hosts (the issue's 5,000), naming the file and the field, and stores nothing`, async () => {
    const text = `lab: huge\nhosts:\n${Array.from({ length: 5_000 }, (_, i) => `  - name: h${i}\n    localConfText: ""\n`).join("")}`;
    const err = await rejectsWith(apply("huge", { file: "/labs/huge.yaml", text, files: {} }), ErrorCode.InvalidManifest, /\/labs\/huge\.yaml:\d+: hosts: has 5000 hosts, more than the 1000 a lab may have/);
    assert.equal((err.data as Record<string, unknown>)["file"], "/labs/huge.yaml");
    await rejectsWith(get("huge", "h0"), ErrorCode.NotFound, /no lab "huge" has been applied/);
  });

  await t.test("creates the agents' registry before any agent connects, with direct gets off (an agent reads its key back only as an envelope)", async () => {
    const info = await (await client.jsm()).streams.info(`KV_${BUCKETS.agents}`);
    assert.deepEqual(info.config.subjects, [`$KV.${BUCKETS.agents}.>`]);
    assert.equal(info.config.allow_direct, false);
    const registry = await client.kv(BUCKETS.agents);
    await registry.put("lab.host", "{}");
    assert.equal((await registry.get("lab.host"))?.string(), "{}");
  });

  await t.test("gives the fetcher the plugin settings with credentials, the hosts and the plugins the lab registers", async () => {
    await apply("eta", bundle("eta"));
    const access = await client.request(subjects.configPluginSettings("eta"), LabPluginAccessRequestSchema, {}, LabPluginAccessSchema);
    assert.deepEqual(access.credentials, [{ prefix: "https://git.example/", username: "u", password: "s3cret" }]);
    assert.equal(access.order, "registration");
    assert.deepEqual(access.allowSchemes, ["https", "http"]);
    assert.ok(access.hosts.includes("controller"), access.hosts.join(","));
    assert.deepEqual(access.plugins, [{ name: "heat", url: "https://opendev.org/openstack/heat" }]);
    const first = await client.request(subjects.configPluginSettings("eta"), LabPluginAccessRequestSchema, { revision: 1 }, LabPluginAccessSchema);
    assert.deepEqual(first.plugins, access.plugins);
  });

  await t.test("answers a message that fails its schema with BAD_MESSAGE on every subject, and keeps serving", async () => {
    await apply("theta", bundle("theta"));
    for (const subject of [subjects.configApply("theta"), subjects.configGet("theta", "controller"), subjects.configShow("theta"), subjects.configPluginSettings("theta")]) {
      for (const raw of ["not json", JSON.stringify({ revision: "one" })]) {
        const msg = await client.nc.request(subject, new TextEncoder().encode(raw), { timeout: 2000 });
        const reply = JSON.parse(new TextDecoder().decode(msg.data));
        assert.equal(reply.ok, false, `${subject} ${raw}`);
        assert.equal(reply.error.code, ErrorCode.BadMessage, `${subject} ${raw}`);
      }
    }
    assert.equal((await get("theta", "controller")).revision, 1);
  });

  await t.test("gives concurrent applies of different bundles distinct, consecutive revisions (two instances)", async () => {
    const otherBus = await Bus.connect({ servers: server.url, name: "config-2", logger: silentLogger() });
    const other = await startConfigService({ bus: otherBus, logger: silentLogger() });
    try {
      const replies = await Promise.all(
        [1, 2, 3, 4, 5, 6].map((n) => apply("iota", bundle("iota", `[[local|localrc]]\nHOST_IP=10.0.0.${n}\n`))),
      );
      assert.deepEqual(
        replies.map((r) => r.revision).sort((a, b) => a - b),
        [1, 2, 3, 4, 5, 6],
      );
      assert.equal((await get("iota", "controller")).revision, 6);
    } finally {
      await other.stop();
      await otherBus.drain();
    }
  });

  await t.test("serves the same revision after the service is restarted", async () => {
    await apply("kappa", bundle("kappa"));
    await apply("kappa", bundle("kappa", "[[local|localrc]]\nHOST_IP=10.9.9.9\n"));
    const before = await get("kappa", "controller");
    await service.stop();
    await bus.drain();
    bus = await Bus.connect({ servers: server.url, name: "config", logger: silentLogger() });
    service = await startConfigService({ bus, logger: silentLogger() });
    const afterRestart = await get("kappa", "controller");
    assert.equal(afterRestart.revision, 2);
    assert.deepEqual(afterRestart, before);
    assert.equal((await get("kappa", "controller", 1)).revision, 1);
  });
});

describe("config service - nats-server restarted with its store kept", () => {
  it("serves the same revision after nats-server comes back", async () => {
    await using server = await startNats();
    await using client = await Bus.connect({ servers: server.url, name: "client", logger: silentLogger() });
    await using bus = await Bus.connect({ servers: server.url, name: "config", logger: silentLogger() });
    const service = await startConfigService({ bus, logger: silentLogger() });
    await using _service = { [Symbol.asyncDispose]: () => service.stop() };
    const first = await client.request(subjects.configApply("lambda"), ConfigApplyRequestSchema, bundle("lambda"), ConfigApplyReplySchema);
    assert.equal(first.revision, 1);
    await server.stop({ keepData: true });
    await server.restart();
    const config = await waitFor(
      "config.get after the restart",
      () => client.request(subjects.configGet("lambda", "controller"), ConfigGetRequestSchema, {}, HostConfigSchema, { timeoutMs: 1000 }),
      20_000,
      200,
    );
    assert.equal(config.revision, 1);
    assert.equal(config.localrc, "enable_plugin heat https://opendev.org/openstack/heat\nHOST_IP=10.0.0.1\n");
    const again = await client.request(subjects.configApply("lambda"), ConfigApplyRequestSchema, bundle("lambda"), ConfigApplyReplySchema);
    assert.deepEqual([again.revision, again.unchanged], [1, true]);
  });
});
