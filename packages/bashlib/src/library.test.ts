import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDir } from "@stackbus/testkit";
import { bash, bashOut, q } from "./bash-harness.js";
import { BASHLIB_FUNCTIONS, STACKBUS_FUNCTIONS } from "./functions.js";
import { bashlibEntry, stackbusFunctionsPath } from "./paths.js";

const ERR_TRAP = [
  "set -o errtrace",
  'trap \'echo "ERR ${BASH_SOURCE[0]}:${LINENO}: $BASH_COMMAND" >> "$ERR_LOG"\' ERR',
].join("\n");

describe("library - the contract with the agent", () => {
  it("bashlibEntry / stackbusFunctionsPath - absolute paths of files that exist", () => {
    for (const path of [bashlibEntry(), stackbusFunctionsPath()]) {
      assert.ok(path.startsWith("/"), path);
      assert.ok(existsSync(path), path);
    }
    assert.ok(bashlibEntry().endsWith("/bash/functions.sh"));
    assert.ok(stackbusFunctionsPath().endsWith("/bash/stackbus.sh"));
  });

  it("sourcing under errtrace with an ERR trap raises no ERR, prints nothing and sets no shell option", async () => {
    const dir = tempDir("sb-src-");
    try {
      const errLog = join(dir.path, "err.log");
      const run = await bash(`set +o | sort > ${q(join(dir.path, "after"))}\nshopt | sort >> ${q(join(dir.path, "after"))}`, {
        prelude: `${ERR_TRAP}\nset +o | sort > ${q(join(dir.path, "before"))}\nshopt | sort >> ${q(join(dir.path, "before"))}`,
        env: { ERR_LOG: errLog },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stdout, "");
      assert.equal(run.stderr, "");
      assert.equal(existsSync(errLog) ? readFileSync(errLog, "utf8") : "", "");
      assert.equal(readFileSync(join(dir.path, "after"), "utf8"), readFileSync(join(dir.path, "before"), "utf8"));
    } finally {
      dir.remove();
    }
  });

  it("the helpers raise no ERR of their own when they succeed, under errtrace (and under errexit, nounset, pipefail)", async () => {
    const dir = tempDir("sb-errtrace-");
    try {
      const errLog = join(dir.path, "err.log");
      const ini = join(dir.path, "x.ini");
      const lc = join(dir.path, "local.conf");
      const script = [
        "ENABLED_SERVICES=key,n-cpu,-x",
        "DEST=/opt/stack",
        "enable_service a b; disable_service b; disable_negated_services; verify_disabled_services",
        "is_service_enabled nova; is_service_enabled a n-.*",
        "remove_disabled_services a,b b >/dev/null; _cleanup_service_list ,a, >/dev/null",
        "enable_plugin p https://x; is_plugin_enabled p; define_plugin p; plugin_requires p q",
        `iniset ${q(ini)} s k v; iniset ${q(ini)} s k w; iniget ${q(ini)} s k >/dev/null; ini_has_option ${q(ini)} s k`,
        `iniset_multiline ${q(ini)} s m 1 2; iniadd ${q(ini)} s m 3; iniget_multiline ${q(ini)} s m >/dev/null`,
        `iniadd_literal ${q(ini)} s l v; inicomment ${q(ini)} s l; iniuncomment ${q(ini)} s l; inidelete ${q(ini)} s l`,
        `iniget_sections ${q(ini)} >/dev/null; iniget ${q(ini)} nosuch k >/dev/null; inidelete ${q(join(dir.path, "none"))} s k`,
        `localconf_set ${q(lc)} post-config '$F' s o v; localrc_set ${q(lc)} A 1; localrc_set ${q(lc)} A 2`,
        `localconf_set ${q(lc)} post-config '$F' s o w; localconf_set ${q(lc)} post-config '$F' t o v`,
        "X=$(trueorfalse False NOPE); Y=1; isset Y; is_set Y; export_proxy_variables",
        "generate_hex_string 4 >/dev/null; read_password PW; time_start t; time_stop t",
        "warn $LINENO w >/dev/null; deprecated d 2>/dev/null; echo_summary s >/dev/null; err 1 e 2>/dev/null",
        "GetOSVersion; GetDistro; is_ubuntu || is_fedora || true; is_package_installed bash; is_arch \"$(uname -m)\"",
        `STACKBUS_FACTS_FILE=${q(join(dir.path, "facts"))} stackbus_export Y`,
        "declare -gA STACKBUS_FACTS=([h/Y]=1); stackbus_fact h Y >/dev/null",
        "echo done",
      ].join("\n");
      const run = await bash(script, { prelude: `${ERR_TRAP}\nset -o errexit -o nounset -o pipefail`, env: { ERR_LOG: errLog } });
      assert.equal(existsSync(errLog) ? readFileSync(errLog, "utf8") : "", "");
      assert.equal(run.status, 0, run.stderr);
      assert.ok(run.stdout.endsWith("done\n"), run.stdout);
    } finally {
      dir.remove();
    }
  });

  it("a failing helper still reaches the agent's ERR trap, at the hook's line", async () => {
    const dir = tempDir("sb-errtrace2-");
    try {
      const errLog = join(dir.path, "err.log");
      const run = await bash("ENABLED_SERVICES=a\nis_service_enabled zz\necho after", { prelude: ERR_TRAP, env: { ERR_LOG: errLog } });
      assert.equal(run.stdout, "after\n");
      assert.match(readFileSync(errLog, "utf8"), /^ERR [^\n]*:2: /m);
    } finally {
      dir.remove();
    }
  });

  it("sourcing never reads stdin", async () => {
    const out = await bashOut("read -r line; echo \"got:$line\"", { stdin: "first line\n" });
    assert.equal(out, "got:first line");
  });

  it("sourcing twice keeps services, plugins and timers", async () => {
    const out = await bashOut(
      'ENABLED_SERVICES=a\nenable_plugin p u\ntime_start t\nsource "$__STACKBUS_BASHLIB_DIR/functions.sh"\ntime_stop t\necho "$ENABLED_SERVICES $DEVSTACK_PLUGINS ${GITREPO[p]}"',
    );
    assert.equal(out, "a ,p u");
  });

  it("BASHLIB_FUNCTIONS - lists exactly the public functions functions.sh defines", async () => {
    const out = await bashOut("declare -F | awk '{print $3}' | grep -v '^__stackbus_' ; echo __stackbus_die_exit");
    assert.deepEqual([...out.split("\n")].sort(), [...BASHLIB_FUNCTIONS].sort());
  });

  it("STACKBUS_FUNCTIONS - lists exactly what stackbus.sh defines on its own", async () => {
    const out = await bashOut("declare -F | awk '{print $3}'", { library: stackbusFunctionsPath() });
    assert.deepEqual(out.split("\n").sort(), [...STACKBUS_FUNCTIONS].sort());
  });

  it("a real plugin's dispatch pattern runs: settings enable the service, plugin.sh dispatches on mode and phase", async () => {
    const dir = tempDir("sb-dispatch-");
    try {
      writeFileSync(join(dir.path, "settings"), "enable_service template\nTEMPLATE_OPT=${TEMPLATE_OPT:-default}\n");
      writeFileSync(
        join(dir.path, "plugin.sh"),
        [
          "if is_service_enabled template; then",
          '    if [[ "$1" == "stack" && "$2" == "install" ]]; then',
          '        echo_summary "Installing template"',
          '    elif [[ "$1" == "stack" && "$2" == "post-config" ]]; then',
          '        iniset "$CONF" DEFAULT opt "$TEMPLATE_OPT"',
          "    fi",
          '    if [[ "$1" == "unstack" ]]; then echo "unstack argc=$#"; fi',
          "fi",
          "",
        ].join("\n"),
      );
      const p = q(dir.path);
      const out = await bashOut(
        `ENABLED_SERVICES=key\nCONF=${p}/t.conf\nsource ${p}/settings\nsource ${p}/plugin.sh stack install\nsource ${p}/plugin.sh stack post-config\nsource ${p}/plugin.sh unstack\ncat "$CONF"`,
      );
      assert.equal(out, "Installing template\nunstack argc=1\n\n[DEFAULT]\nopt = default");
    } finally {
      dir.remove();
    }
  });
});
