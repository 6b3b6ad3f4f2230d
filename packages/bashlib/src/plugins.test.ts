import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDir } from "@stackbus/testkit";
import { bash, bashOut, q } from "./bash-harness.js";

describe("enable_plugin / is_plugin_enabled (reference §1.2-§1.3)", () => {
  it("enable_plugin - registers in order: DEVSTACK_PLUGINS starts with a comma and lists names as enabled", async () => {
    const out = await bashOut(
      [
        "DEST=/opt/stack",
        "enable_plugin beta https://git.example/beta",
        "enable_plugin alpha https://git.example/alpha stable/2026.1",
        "enable_plugin gamma https://git.example/gamma 4f2c1d0",
        'echo "$DEVSTACK_PLUGINS"',
        'for p in ${DEVSTACK_PLUGINS//,/ }; do echo "$p ${GITREPO[$p]} ${GITBRANCH[$p]} ${GITDIR[$p]}"; done',
      ].join("\n"),
    );
    assert.deepEqual(out.split("\n"), [
      ",beta,alpha,gamma",
      "beta https://git.example/beta master /opt/stack/beta",
      "alpha https://git.example/alpha stable/2026.1 /opt/stack/alpha",
      "gamma https://git.example/gamma 4f2c1d0 /opt/stack/gamma",
    ]);
  });

  it("enable_plugin - GITDIR uses DEST as it is when enable_plugin runs; a later DEST does not move the plugin", async () => {
    const out = await bashOut("DEST=/srv/a\nenable_plugin one u\nDEST=/srv/b\nenable_plugin two u\necho ${GITDIR[one]} ${GITDIR[two]}");
    assert.equal(out, "/srv/a/one /srv/b/two");
  });

  it("enable_plugin - the same name twice dies with DevStack's message, naming the second line", async () => {
    const dir = tempDir("sb-plugin-");
    try {
      const localrc = join(dir.path, "localrc");
      writeFileSync(localrc, "enable_plugin beta https://x\nenable_plugin alpha https://y\nenable_plugin beta https://x\necho not-reached\n");
      const run = await bash(`source ${q(localrc)}`);
      assert.equal(run.status, 1);
      assert.equal(run.stdout, "");
      assert.match(run.stderr, /^\[Call Trace\]$/m);
      assert.equal(run.stderr.trimEnd().split("\n").at(-1), `[ERROR] ${localrc}:3 Plugin attempted to be enabled twice: beta https://x master`);
    } finally {
      dir.remove();
    }
  });

  it("is_plugin_enabled - an exact name test, not a pattern or a prefix", async () => {
    const out = await bashOut(
      "enable_plugin alpha u\nfor n in alpha al.* alp lpha ''; do is_plugin_enabled \"$n\" && echo \"$n yes\" || echo \"$n no\"; done",
    );
    assert.deepEqual(out.split("\n"), ["alpha yes", "al.* no", "alp no", "lpha no", " no"]);
  });

  it("enable_plugin - the arrays exist (and stay) when the library is sourced again", async () => {
    const out = await bashOut(
      'enable_plugin alpha u\nsource "$__STACKBUS_BASHLIB_DIR/functions.sh"\necho "$DEVSTACK_PLUGINS ${GITREPO[alpha]} $(declare -p GITDIR | cut -c1-10)"',
    );
    assert.equal(out, ",alpha u declare -A");
  });

  it("define_plugin and plugin_requires - accepted and do nothing", async () => {
    const run = await bash('define_plugin foo; plugin_requires foo bar; echo "rc=$? [${DEVSTACK_PLUGINS}]"');
    assert.equal(run.stdout, "rc=0 []\n");
  });
});
