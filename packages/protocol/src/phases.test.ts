import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PHASE_MODEL, findStep, stepsOf, type Action, type RunKind } from "./phases.js";

const ids = (kind: "stack" | "unstack" | "clean") => stepsOf(kind).map((s) => s.id);

describe("phase model", () => {
  it("stack runs the seven DevStack phases after prepare, in stack.sh order", () => {
    assert.deepEqual(ids("stack"), [
      "prepare",
      "override_defaults",
      "source",
      "pre-install",
      "install",
      "post-config",
      "extra",
      "test-config",
    ]);
  });

  it("unstack and clean give override_defaults and source first; clean runs unstack first", () => {
    assert.deepEqual(ids("unstack"), ["prepare", "override_defaults", "source", "unstack"]);
    assert.deepEqual(ids("clean"), ["prepare", "override_defaults", "source", "unstack", "clean"]);
  });

  it("extras.d always precede the plugins inside a step", () => {
    for (const kind of ["stack", "unstack", "clean"] as const) {
      for (const step of stepsOf(kind)) {
        const kinds = step.actions.map((a) => a.kind);
        const e = kinds.indexOf("extras");
        const p = kinds.indexOf("plugins");
        if (e >= 0 && p >= 0) assert.ok(e < p, `${kind}/${step.id}`);
      }
    }
  });

  it("passes plugin.sh two arguments in stack phases and one in unstack and clean", () => {
    const pluginArgs = (kind: "stack" | "unstack" | "clean", id: string) =>
      (findStep(kind, id)?.actions.find((a) => a.kind === "plugins") as Extract<Action, { kind: "plugins" }>).args;
    assert.deepEqual(pluginArgs("stack", "install"), ["stack", "install"]);
    assert.deepEqual(pluginArgs("stack", "test-config"), ["stack", "test-config"]);
    assert.deepEqual(pluginArgs("unstack", "unstack"), ["unstack"]);
    assert.deepEqual(pluginArgs("clean", "clean"), ["clean"]);
  });

  it("maps override_defaults and source to the plugin files, not to plugin.sh", () => {
    const files = (id: string) =>
      findStep("stack", id)
        ?.actions.filter((a): a is Extract<Action, { kind: "plugins" }> => a.kind === "plugins")
        .map((a) => a.file);
    assert.deepEqual(files("override_defaults"), ["override-defaults"]);
    assert.deepEqual(files("source"), ["settings"]);
  });

  it("places the local.conf merges where stack.sh applies them", () => {
    const order = (id: string) => findStep("stack", id)?.actions.map((a) => (a.kind === "merge" ? `merge:${a.group}` : a.kind));
    assert.deepEqual(order("post-config"), ["extras", "plugins", "merge:post-config"]);
    assert.deepEqual(order("extra"), ["hypervisor", "merge:extra", "extras", "plugins", "merge:post-extra"]);
    assert.deepEqual(order("test-config"), ["extras", "plugins", "merge:test-config"]);
  });

  it("stack phases stop on the first failure; unstack and clean go on", () => {
    assert.ok(PHASE_MODEL.stack.every((s) => s.errexit));
    assert.ok(!findStep("clean", "unstack")?.errexit);
    assert.ok(!findStep("clean", "clean")?.errexit);
  });

  it("with a DevStack checkout, each kind loads DevStack's files where its script does: stackrc or openrc (the localrc) in prepare, lib files around override_defaults", () => {
    /** What a step loads from the checkout, in order: files, GetDistro, and <localrc via X>. */
    const loads = (kind: RunKind, id: string) =>
      (findStep(kind, id)?.actions ?? []).flatMap((a) =>
        a.kind === "devstack" ? a.load.map((l) => ("source" in l ? l.source : l.call)) : a.kind === "localrc" ? [`<localrc via ${a.via}>`] : [],
      );
    const lib = (...names: string[]) => names.map((n) => `lib/${n}`);
    // stack.sh 176-179, 225, 587-591; then 607-629
    assert.deepEqual(loads("stack", "prepare"), ["lib/stack", "GetDistro", "<localrc via stackrc>", ...lib("database", "rpc_backend", "host")]);
    assert.deepEqual(loads("stack", "override_defaults"), []);
    assert.deepEqual(
      loads("stack", "source"),
      lib("apache", "tls", "infra", "libraries", "lvm", "horizon", "keystone", "glance", "nova", "placement", "cinder", "swift", "neutron", "ldap", "dstat", "atop", "tcpdump", "etcd3", "os-vif"),
    );
    // unstack.sh: lib/database, openrc, GetDistro; run_phase override_defaults; its lib files
    assert.deepEqual(loads("unstack", "prepare"), ["lib/database", "<localrc via openrc>", "GetDistro"]);
    assert.deepEqual(loads("unstack", "source"), lib("apache", "tls", "infra", "lvm", "horizon", "keystone", "glance", "nova", "placement", "cinder", "swift", "neutron", "ldap", "dstat", "atop", "tcpdump", "etcd3"));
    // clean.sh: openrc, GetDistro, its lib files; its unstack.sh child adds the rest of unstack.sh's after override_defaults
    assert.deepEqual(loads("clean", "prepare"), [
      "<localrc via openrc>",
      "GetDistro",
      ...lib("apache", "ldap", "database", "rpc_backend", "tls", "libraries", "lvm", "horizon", "keystone", "glance", "nova", "placement", "cinder", "swift", "neutron"),
    ]);
    assert.deepEqual(loads("clean", "source"), lib("infra", "dstat", "atop", "tcpdump", "etcd3"));
    for (const kind of ["stack", "unstack", "clean"] as const) {
      const all = stepsOf(kind).flatMap((s) => loads(kind, s.id));
      assert.equal(new Set(all).size, all.length, `${kind}: each file is loaded once per run`);
      assert.equal(findStep(kind, "source")?.actions[0]?.kind, "devstack", `${kind}: the lib files come before the source phase's hooks (and the hypervisor plugin lib/nova loads)`);
      assert.ok(findStep(kind, "prepare")?.errexit, `${kind}: a failed prepare ends the run on the host`);
    }
  });

  it("calls the hypervisor plugin functions where DevStack calls them", () => {
    const fns = (kind: "stack" | "unstack" | "clean", id: string) =>
      findStep(kind, id)
        ?.actions.filter((a): a is Extract<Action, { kind: "hypervisor" }> => a.kind === "hypervisor")
        .map((a) => a.fn);
    assert.deepEqual(fns("stack", "install"), ["install_nova_hypervisor", "configure_nova_hypervisor"]);
    assert.deepEqual(fns("stack", "extra"), ["start_nova_hypervisor"]);
    assert.deepEqual(fns("unstack", "unstack"), ["stop_nova_hypervisor"]);
    assert.deepEqual(fns("clean", "clean"), ["cleanup_nova_hypervisor"]);
  });
});
