import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_PLUGIN_LIMITS, MAX_LAB_HOSTS, ErrorCode, HostConfigSchema, LabShowSchema, LabPluginAccessSchema, StackbusError, type Diagnostic } from "@stackbus/protocol";
import { readLabBundle, validateLabFile } from "./bundle.js";
import { validateLab } from "./manifest.js";
import { hostConfig, labPluginAccess, labShow } from "./views.js";

const MANIFEST = `lab: demo
defaults:
  failurePolicy: continue
  maxFail: "25%"
  phaseTimeout: 20m
plugins:
  order: requires
  mirrors: [{ prefix: "https://opendev.org/", replace: "http://mirror.local/git/" }]
  credentials: [{ prefix: "https://git.example/", username: u, password: s3cret }]
common: { localConf: common.conf }
hosts:
  - name: controller
    wave: 1
    labels: { role: controller, rack: 3 }
    local: true
    topDir: ./hosts/controller/devstack
    dest: /opt/stack
    localConf: controller.conf
  - name: compute1
    wave: 2
    localConfText: |
      [[local|localrc]]
      SERVICE_HOST=10.0.0.1
      [[post-config|$NOVA_CONF]]
      [DEFAULT]
      compute = yes
`;
const COMMON = "[[local|localrc]]\nGIT_BASE=https://opendev.org\nenable_plugin heat $GIT_BASE/openstack/heat\n";
const CONTROLLER = "[[local|localrc]]\nHOST_IP=10.0.0.1\n[[post-config|$NOVA_CONF]]\n[DEFAULT]\ndebug = True\n";

function messages(diagnostics: Diagnostic[]): string {
  return diagnostics.map((d) => d.message).join("\n");
}

describe("lab manifest - a valid lab", () => {
  const request = { file: "/labs/demo/lab.yaml", text: MANIFEST, files: { "common.conf": COMMON, "controller.conf": CONTROLLER } };
  const validation = validateLab(request);

  it("validates, applies defaults and resolves local paths against the manifest's directory", () => {
    assert.equal(validation.ok, true, messages(validation.diagnostics));
    const lab = validation.lab;
    assert.ok(lab);
    assert.equal(lab.name, "demo");
    assert.deepEqual(lab.defaults, { failurePolicy: "continue", maxFail: { percent: 25 }, phaseTimeoutMs: 1_200_000, ackTimeoutMs: 30_000, heartbeatTimeoutMs: 15_000, waveSteps: null });
    assert.deepEqual(lab.pluginSettings, {
      order: "requires",
      reclone: false,
      offline: false,
      mirrors: [{ prefix: "https://opendev.org/", replace: "http://mirror.local/git/" }],
      allowSchemes: ["https", "http"],
      limits: DEFAULT_PLUGIN_LIMITS,
    });
    assert.deepEqual(lab.credentials, [{ prefix: "https://git.example/", username: "u", password: "s3cret" }]);
    const [controller, compute] = lab.hosts;
    assert.deepEqual(
      [controller?.name, controller?.wave, controller?.labels, controller?.local, controller?.topDir, controller?.dest],
      ["controller", 1, { role: "controller", rack: "3" }, true, "/labs/demo/hosts/controller/devstack", "/opt/stack"],
    );
    assert.deepEqual([compute?.name, compute?.wave, compute?.labels, compute?.local, compute?.topDir], ["compute1", 2, {}, false, undefined]);
  });

  it("gives each host the common local.conf first, then its own, combined", () => {
    const [controller, compute] = validation.lab?.hosts ?? [];
    assert.deepEqual(
      controller?.localConf.map((s) => s.file),
      ["/labs/demo/common.conf", "/labs/demo/controller.conf"],
    );
    assert.equal(controller?.parsed.localrc, "GIT_BASE=https://opendev.org\nenable_plugin heat $GIT_BASE/openstack/heat\nHOST_IP=10.0.0.1\n");
    assert.deepEqual(compute?.parsed.plugins.map((p) => [p.name, p.url, p.file, p.line]), [["heat", "https://opendev.org/openstack/heat", "/labs/demo/common.conf", 3]]);
    assert.deepEqual(
      compute?.parsed.blocks.map((b) => [b.file, b.line, b.spec]),
      [
        ["/labs/demo/common.conf", 1, "localrc"],
        ["/labs/demo/lab.yaml", 22, "localrc"],
        ["/labs/demo/lab.yaml", 24, "$NOVA_CONF"],
      ],
      "inline text is numbered with the manifest's lines",
    );
  });

  it("answers config.get with the host's config at a revision, schema-valid", () => {
    const lab = validation.lab;
    assert.ok(lab);
    const config = HostConfigSchema.parse(hostConfig(lab, "controller", 3));
    assert.equal(config.revision, 3);
    assert.equal(config.wave, 1);
    assert.deepEqual(config.localConf.map((s) => s.text), [COMMON, CONTROLLER]);
    assert.equal(config.localrc, lab.hosts[0]?.parsed.localrc);
    assert.deepEqual(config.plugins.map((p) => p.name), ["heat"]);
    assert.equal(config.pluginSettings.order, "requires");
    assert.ok(!JSON.stringify(config).includes("s3cret"));
    assert.throws(
      () => hostConfig(lab, "compute9", 3),
      (err: unknown) => err instanceof StackbusError && err.code === ErrorCode.NotFound && /"compute9" is not in lab "demo"/.test(err.message),
    );
  });

  it("shows the lab without credentials, and gives them only to the fetcher's view", () => {
    const lab = validation.lab;
    assert.ok(lab);
    const show = LabShowSchema.parse(labShow(lab, 3, 1_700_000_000_000));
    assert.deepEqual(show.hosts.map((h) => [h.name, h.wave, h.local, h.plugins.length, h.warnings]), [
      ["controller", 1, true, 1, 0],
      ["compute1", 2, false, 1, 0],
    ]);
    assert.ok(!JSON.stringify(show).includes("s3cret"));
    const access = LabPluginAccessSchema.parse(labPluginAccess(lab));
    assert.deepEqual(access.credentials, lab.credentials);
    assert.deepEqual(access.hosts, ["controller", "compute1"]);
    assert.deepEqual(access.plugins, [{ name: "heat", url: "https://opendev.org/openstack/heat" }], "both hosts register heat: listed once");
  });
});

describe("lab manifest - size", () => {
  const hosts = (n: number) => `lab: big\nhosts:\n${Array.from({ length: n }, (_, i) => `  - name: h${i}\n    localConfText: ""\n`).join("")}`;

  it(`takes ${MAX_LAB_HOSTS} hosts and refuses one more, naming the file and the field`, () => {
    assert.equal(validateLab({ file: "lab.yaml", text: hosts(MAX_LAB_HOSTS), files: {} }).ok, true);
    const v = validateLab({ file: "big.yaml", text: hosts(MAX_LAB_HOSTS + 1), files: {} });
    assert.equal(v.ok, false);
    assert.deepEqual(
      v.diagnostics.filter((d) => d.severity === "error").map((d) => [d.file, d.path, d.line, d.message]),
      [["big.yaml", "hosts", 3, `big.yaml:3: hosts: has ${MAX_LAB_HOSTS + 1} hosts, more than the ${MAX_LAB_HOSTS} a lab may have (its run record must fit in one NATS message)`]],
    );
  });
});

describe("lab manifest - plugin limits", () => {
  const lab = (limits: string) => validateLab({ file: "lab.yaml", text: `lab: lim\nplugins:\n  limits: ${limits}\nhosts:\n  - name: h1\n    localConfText: ""\n`, files: {} });

  it("takes sizes in bytes or with a unit, counts as whole numbers, and the defaults for the rest", () => {
    const v = lab(`{ maxFileBytes: 8MiB, maxUnpackedBytes: "2GB", maxDownloadBytes: 1000, maxFiles: 50000 }`);
    assert.equal(v.ok, true, messages(v.diagnostics));
    assert.deepEqual(v.lab?.pluginSettings.limits, {
      ...DEFAULT_PLUGIN_LIMITS,
      maxFileBytes: 8 * 1024 * 1024,
      maxUnpackedBytes: 2e9,
      maxDownloadBytes: 1000,
      maxFiles: 50_000,
    });
    assert.deepEqual(LabPluginAccessSchema.parse(labPluginAccess(v.lab as NonNullable<typeof v.lab>)).limits, v.lab?.pluginSettings.limits);
  });

  it("names the file, line and field of a bad limit", () => {
    const v = lab(`{ maxFileBytes: 64 parsecs, maxFiles: -3, maxDepth: deep, maxFles: 1 }`);
    assert.equal(v.ok, false);
    const text = messages(v.diagnostics);
    assert.match(text, /lab\.yaml:3: plugins\.limits\.maxFileBytes: "64 parsecs" is not a size \(use bytes, or e\.g\. "64MiB", "1GiB", "500MB"\)/);
    assert.match(text, /lab\.yaml:3: plugins\.limits\.maxFiles: must be a positive whole number, not number -3/);
    assert.match(text, /lab\.yaml:3: plugins\.limits\.maxDepth: must be a number, not string "deep"/);
    assert.match(text, /lab\.yaml:3: plugins\.limits\.maxFles: unknown field \(did you mean "maxFiles"\?\)/);
  });
});

describe("lab manifest - plugin URL credentials", () => {
  it("lab show and config.get show a plugin URL's user:password@ and a mirror's as ***@; only the fetcher's view keeps them", () => {
    const text = `lab: creds
plugins:
  mirrors: [{ prefix: "https://opendev.org/", replace: "https://mirror:M1rr0rPw@mirror.local/git/" }]
hosts:
  - name: h1
    localConfText: |
      [[local|localrc]]
      enable_plugin good http://user:Pw-9f3c@git.example/good.git
`;
    const validation = validateLab({ file: "lab.yaml", text, files: {} });
    assert.equal(validation.ok, true, messages(validation.diagnostics));
    const lab = validation.lab;
    assert.ok(lab);
    const show = LabShowSchema.parse(labShow(lab, 1, 1));
    assert.equal(show.hosts[0]?.plugins[0]?.url, "http://***@git.example/good.git");
    assert.equal(show.pluginSettings.mirrors[0]?.replace, "https://***@mirror.local/git/");
    const config = HostConfigSchema.parse(hostConfig(lab, "h1", 1));
    assert.equal(config.plugins[0]?.url, "http://***@git.example/good.git");
    // The host's own local.conf text (localConf, localrc, blocks) is that host's secret and goes only to it.
    for (const shown of [JSON.stringify(show), JSON.stringify({ ...config, localConf: [], localrc: "", blocks: [] })]) {
      assert.ok(!shown.includes("Pw-9f3c") && !shown.includes("M1rr0rPw"), shown);
    }
    const access = LabPluginAccessSchema.parse(labPluginAccess(lab));
    assert.equal(access.mirrors[0]?.replace, "https://mirror:M1rr0rPw@mirror.local/git/");
  });
});

describe("lab manifest - DevStack mode, waves per step, finally", () => {
  const text = [
    "lab: ds",
    "defaults:",
    "  runner: devstack",
    "  waveSteps: [extra, test-config]",
    "hosts:",
    "  - name: controller",
    "    wave: 1",
    "    localConfText: |",
    "      [[local|localrc]]",
    "  - name: compute1",
    "    wave: 2",
    "    devstackUser: stackuser",
    "    localConfText: |",
    "      [[local|localrc]]",
    "  - name: plain",
    "    runner: hooks",
    "    localConfText: |",
    "      [[local|localrc]]",
    "finally:",
    "  - hosts: [controller]",
    "    run: ./tools/discover_hosts.sh",
    "",
  ].join("\n");

  it("takes the runner and DevStack's user from the host, else from defaults, else hooks and stack", () => {
    const v = validateLab({ file: "lab.yaml", text, files: {} });
    assert.equal(v.ok, true, messages(v.diagnostics));
    const hosts = v.lab?.hosts ?? [];
    assert.deepEqual(hosts.map((h) => [h.name, h.runner, h.devstackUser]), [["controller", "devstack", "stack"], ["compute1", "devstack", "stackuser"], ["plain", "hooks", "stack"]]);
    assert.deepEqual(v.lab?.defaults.waveSteps, ["extra", "test-config"]);
    assert.deepEqual(v.lab?.finally, [{ hosts: ["controller"], kinds: ["stack"], command: "./tools/discover_hosts.sh" }]);
    const lab = v.lab;
    assert.ok(lab);
    const controller = HostConfigSchema.parse(hostConfig(lab, "controller", 1));
    assert.deepEqual([controller.runner, controller.devstackUser, controller.finally], ["devstack", "stack", [{ kinds: ["stack"], command: "./tools/discover_hosts.sh" }]]);
    assert.deepEqual(hostConfig(lab, "compute1", 1).finally, [], "a host a finally entry does not name has no finally command");
    const show = labShow(lab, 1, 0);
    assert.deepEqual(show.finally, [{ hosts: ["controller"], kinds: ["stack"], command: "./tools/discover_hosts.sh" }]);
    assert.deepEqual(show.hosts.map((h) => h.runner), ["devstack", "devstack", "hooks"]);
  });

  it("the multi-node example of docs/devstack-mode.md validates as written", () => {
    const v = validateLabFile(new URL("../../../examples/devstack-multinode/lab.yaml", import.meta.url).pathname);
    assert.equal(v.ok, true, messages(v.diagnostics));
    assert.deepEqual(v.lab?.hosts.map((h) => [h.name, h.wave, h.runner]), [["controller", 1, "devstack"], ["compute1", 2, "devstack"], ["compute2", 2, "devstack"]]);
    assert.deepEqual(v.lab?.defaults.waveSteps, ["extra", "test-config"]);
    assert.deepEqual(v.lab?.finally.map((f) => [f.hosts, f.command]), [[["controller"], "./tools/discover_hosts.sh"]]);
    assert.match(v.lab?.hosts[1]?.parsed.localrc ?? "", /^SERVICE_HOST=192\.168\.42\.11$/m);
  });

  it("refuses an unknown runner, an unknown step in waveSteps and a finally host that is not in the lab, naming each line", () => {
    const bad = text.replace("runner: devstack", "runner: ansible").replace("[extra, test-config]", "[extra, post-extra]").replace("hosts: [controller]", "hosts: [controler]");
    const v = validateLab({ file: "lab.yaml", text: bad, files: {} });
    assert.equal(v.ok, false);
    const out = v.diagnostics.map((d) => `${d.file}:${d.line ?? "?"}: ${d.path ?? ""}: ${d.message}`).join("\n");
    assert.match(out, /lab\.yaml:3: defaults\.runner: must be one of "hooks", "devstack", not string "ansible"/);
    assert.match(out, /lab\.yaml:4: defaults\.waveSteps\[1\]: must be one of .*"extra".*not string "post-extra"/);
    assert.match(out, /lab\.yaml:20: finally\[0\]\.hosts\[0\]: "controler" is not a host of this lab \(its hosts: controller, compute1, plain\)/);
  });
});

describe("lab manifest - errors, all at once, naming the file, line and field path", () => {
  it("reports every manifest error with its YAML line and field path", () => {
    const text = `lab: demo.lab
defaults:
  failurePolicy: sometimes
  phaseTimeout: 15 minutes
  maxFail: 120%
  ackTimout: 30s
plugins:
  allowSchemes: [https, ftp]
hosts:
  - name: controller
    wave: 1.5
    localConf: controller.conf
    topDir: ./x
  - name: compute.1
    labels: { role: compute, "bad key": x }
    localConf: c.conf
    localConfText: "x"
  - controller
  - name: controller
    local: yes
`;
    const v = validateLab({ file: "lab.yaml", text, files: { "controller.conf": "" } });
    assert.equal(v.ok, false);
    assert.equal(v.lab, undefined);
    const expected: Array<[number, string, RegExp]> = [
      [1, "lab", /"demo\.lab" may not contain "\."/],
      [3, "defaults.failurePolicy", /must be one of "abort", "continue", not string "sometimes"/],
      [4, "defaults.phaseTimeout", /"15 minutes" is not a duration/],
      [5, "defaults.maxFail", /"120%" must be a whole number of hosts or a percentage/],
      [6, "defaults.ackTimout", /unknown field \(did you mean "ackTimeout"\?\)/],
      [8, "plugins.allowSchemes[1]", /must be one of "https", "http", "file", "path", not string "ftp"/],
      [11, "hosts[0].wave", /must be an integer, not number 1\.5/],
      [13, "hosts[0].topDir", /is only used with local: true/],
      [14, "hosts[1].name", /^lab\.yaml:14: hosts\[1\]\.name: "compute\.1" may not contain "\."/],
      [15, "hosts[1].labels.bad key", /label name "bad key" may not contain spaces/],
      [17, "hosts[1].localConfText", /give localConf \(a file\) or localConfText \(inline\), not both/],
      [18, "hosts[2]", /must be a mapping, not string "controller"/],
      [19, "hosts[3].name", /"controller" is already the name of hosts\[0\] \(line 10\)/],
      [20, "hosts[3].local", /must be true or false, not string "yes"/],
    ];
    for (const [line, path, pattern] of expected) {
      const d = v.diagnostics.find((x) => x.path === path && pattern.test(x.message));
      assert.ok(d, `no diagnostic for ${path} matching ${pattern} in:\n${messages(v.diagnostics)}`);
      assert.equal(d.line, line, path);
      assert.equal(d.file, "lab.yaml");
      assert.ok(d.message.startsWith(`lab.yaml:${line}: ${path}: `), d.message);
    }
    assert.equal(v.diagnostics.filter((d) => d.severity === "error").length, expected.length, messages(v.diagnostics));
  });

  it("never repeats a credential's value in a message", () => {
    const v = validateLab({
      file: "lab.yaml",
      text: "lab: demo\nplugins:\n  credentials: [{ prefix: p, username: u, password: 98765 }]\nhosts:\n  - name: a\n",
      files: {},
    });
    const d = v.diagnostics.find((x) => x.path === "plugins.credentials[0].password");
    assert.match(d?.message ?? "", /^lab\.yaml:3: plugins\.credentials\[0\]\.password: must be a string, not a number$/);
    assert.ok(!messages(v.diagnostics).includes("98765"));
  });

  it("reports YAML syntax errors, an empty manifest and a missing hosts list", () => {
    const syntax = validateLab({ file: "lab.yaml", text: "lab: demo\nhosts:\n  - name: a\n  - name: b\n    name: c\n", files: {} });
    assert.match(messages(syntax.diagnostics), /^lab\.yaml:5: .*unique/m);
    assert.match(messages(validateLab({ file: "lab.yaml", text: "", files: {} }).diagnostics), /^lab\.yaml: the manifest is empty/);
    assert.match(messages(validateLab({ file: "lab.yaml", text: "- a\n", files: {} }).diagnostics), /must be a mapping with lab and hosts, not a list/);
    const noHosts = validateLab({ file: "lab.yaml", text: "lab: demo\n", files: {} });
    assert.match(messages(noHosts.diagnostics), /^lab\.yaml:1: hosts: is required$/m);
    const empty = validateLab({ file: "lab.yaml", text: "lab: demo\nhosts: []\n", files: {} });
    assert.match(messages(empty.diagnostics), /^lab\.yaml:2: hosts: needs at least one host$/m);
  });

  it("reports local.conf problems in that local.conf's file and line, and every one of them", () => {
    const text = "lab: demo\ncommon: { localConf: common.conf }\nhosts:\n  - name: a\n    localConf: a.conf\n  - name: b\n    localConf: missing.conf\n  - name: c\n    localConfText: |\n      [[local|localrc]]\n      enable_plugin heat https://other/heat\n";
    const v = validateLab({
      file: "/l/lab.yaml",
      text,
      files: { "common.conf": "[[local|localrc]]\nenable_plugin heat https://opendev.org/openstack/heat\n", "a.conf": "[[post-config|/etc/x.conf]]\n[[post-config]]\n" },
    });
    assert.equal(v.ok, false);
    const all = messages(v.diagnostics);
    assert.match(all, /^\/l\/a\.conf:2: malformed meta-section header "\[\[post-config\]\]"/m);
    assert.match(all, /^\/l\/lab\.yaml:7: hosts\[1\]\.localConf: missing\.conf was not sent with the manifest/m);
    assert.match(all, /^\/l\/lab\.yaml:11: plugin "heat" is enabled twice \(first at \/l\/common\.conf:2\)/m);
  });
});

describe("lab bundle - reading the manifest and its local.conf files", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "sb-lab-"));
    mkdirSync(join(dir, "hosts"));
    writeFileSync(join(dir, "common.conf"), COMMON);
    writeFileSync(join(dir, "hosts/a.conf"), "[[local|localrc]]\nA=1\n");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads every referenced local.conf relative to the manifest, keyed as written", () => {
    writeFileSync(join(dir, "lab.yaml"), "lab: demo\ncommon: { localConf: common.conf }\nhosts:\n  - name: a\n    localConf: hosts/a.conf\n");
    const { request, diagnostics } = readLabBundle(join(dir, "lab.yaml"));
    assert.deepEqual(diagnostics, []);
    assert.equal(request.file, join(dir, "lab.yaml"));
    assert.deepEqual(request.files, { "common.conf": COMMON, "hosts/a.conf": "[[local|localrc]]\nA=1\n" });
    assert.equal(validateLab(request).ok, true);
  });

  it("turns unreadable files into diagnostics, and validateLabFile reports each problem once", () => {
    writeFileSync(join(dir, "bad.yaml"), "lab: demo\nhosts:\n  - name: a\n    localConf: nope.conf\n  - name: b.c\n");
    const { diagnostics } = readLabBundle(join(dir, "bad.yaml"));
    assert.equal(diagnostics.length, 1);
    assert.match(diagnostics[0]?.message ?? "", /bad\.yaml:4: hosts\[0\]\.localConf: cannot read .*nope\.conf: no such file/);
    const v = validateLabFile(join(dir, "bad.yaml"));
    assert.equal(v.ok, false);
    assert.equal(v.diagnostics.length, 2, messages(v.diagnostics));
    assert.match(messages(v.diagnostics), /hosts\[1\]\.name: "b\.c" may not contain "\."/);
    const missing = readLabBundle(join(dir, "absent.yaml"));
    assert.match(missing.diagnostics[0]?.message ?? "", /absent\.yaml: cannot read the lab manifest: no such file/);
  });
});
