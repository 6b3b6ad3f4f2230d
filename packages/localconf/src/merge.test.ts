import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { tempDir } from "@stackbus/testkit";
import { bashExpander } from "./bash-expander.test-helper.js";
import type { Expander } from "./expand.js";
import { isPlain, MergeError, mergeConfigGroup, type MergeFiles } from "./merge.js";
import { nodeMergeFiles } from "./node-files.js";
import { parseLocalConf } from "./parse.js";


/** The directory of the test running now: the expander's $W and cwd. */
let dir: string;

/** A fresh directory for one test, as `dir`; `using` it removes it at the end of the test. */
function freshDir(): Disposable {
  const scratch = tempDir("sb-merge-");
  dir = scratch.path;
  return scratch;
}

function expander(env: Record<string, string> = {}): Expander {
  return bashExpander({ env: { W: dir, ...env }, cwd: dir });
}

describe("merge - the §3.5 edge-case table (merge_config_group on a fresh a.conf)", () => {
  const text = [
    "stray=before-any-header",
    "[[post-config|$W/a.conf]]",
    "nosection=1",
    "[DEFAULT]",
    "novalue",
    "  indented = 2",
    "\ttabbed = 3",
    "spaced   =   lots   of   spaces   ",
    'quoted = say "hi"',
    "dollar = $HOME_X/path",
    "backslash = a\\b\\\\c",
    "amp = a&b|c/d",
    "glob = *",
    "empty =",
    "later = yes",
    "[[post-config|$W/a.conf]]",
    "[DEFAULT]",
    "later = second",
  ].join("\n");

  it("writes what DevStack writes for every harmless row, and warns where DevStack is silent", async () => {
    using _dir = freshDir();
    writeFileSync(join(dir, "local.conf"), text);
    writeFileSync(join(dir, "a.conf"), "");
    const parsed = parseLocalConf(text, "local.conf");
    assert.equal(parsed.diagnostics.filter((d) => d.severity === "error").length, 0);
    const warned = (line: number, pattern: RegExp) =>
      assert.ok(parsed.diagnostics.some((d) => d.line === line && pattern.test(d.message)), `warning at line ${line} matching ${pattern}`);
    warned(1, /ignored/);
    warned(3, /before any \[section\]/);
    warned(5, /no "="/);
    warned(6, /indented/);
    warned(7, /indented/);
    warned(8, /runs of spaces/);
    warned(9, /double quotes/);
    warned(11, /backslashes/);
    warned(13, /glob/);

    const outcome = await mergeConfigGroup(parsed.blocks, "post-config", expander({ HOME_X: "/home/x" }), { files: nodeMergeFiles });
    assert.deepEqual(outcome.files, [{ spec: "$W/a.conf", path: join(dir, "a.conf"), created: false }]);
    assert.equal(
      readFileSync(join(dir, "a.conf"), "utf8"),
      [
        "",
        "[DEFAULT]",
        "novalue = ",
        "spaced = lots of spaces",
        "quoted = say hi",
        "dollar = /home/x/path",
        "backslash = ab\\c",
        "amp = a&b|c/d",
        "glob = a.conf local.conf",
        "empty = ",
        "later = yes",
        "later = second",
        "",
      ].join("\n"),
    );
  });

  it("refuses ;semicolon=1 (DevStack: nothing written, plus a shell error), naming file:line", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf("[[post-config|$W/a.conf]]\n[DEFAULT]\n;semicolon=1\nok = 1\n", "local.conf");
    assert.match(parsed.diagnostics.find((d) => d.severity === "error")?.message ?? "", /^local\.conf:3: key ";semicolon" contains ";"/);
    await assert.rejects(mergeConfigGroup(parsed.blocks, "post-config", expander(), { files: nodeMergeFiles }), (err: unknown) => {
      assert.ok(err instanceof MergeError);
      assert.equal(err.file, "local.conf");
      assert.equal(err.line, 3);
      return true;
    });
    assert.equal(existsSync(join(dir, "a.conf")), false);
  });

  it("refuses [ spacedsec ] (DevStack writes a section [k] holding v = ), naming file:line", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf("[[post-config|$W/a.conf]]\n[DEFAULT]\na = 1\n[ spacedsec ]\nk = v\n", "local.conf");
    assert.match(parsed.diagnostics.find((d) => d.severity === "error")?.message ?? "", /^local\.conf:4: section header "\[ spacedsec \]" has spaces/);
    await assert.rejects(mergeConfigGroup(parsed.blocks, "post-config", expander(), { files: nodeMergeFiles }), /local\.conf:4: section header/);
    assert.equal(existsSync(join(dir, "a.conf")), false);
  });

  it("merges a key repeated in a second block as a second value, not last-wins", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf("[[post-config|$W/a.conf]]\n[DEFAULT]\nlater = yes\n[[post-config|$W/a.conf]]\n[DEFAULT]\nlater = second\n", "local.conf");
    await mergeConfigGroup(parsed.blocks, "post-config", expander(), { files: nodeMergeFiles });
    assert.equal(readFileSync(join(dir, "a.conf"), "utf8"), "\n[DEFAULT]\nlater = yes\nlater = second\n");
  });

  it("an undefined file variable refuses the whole group before anything is written (DevStack warns and skips only what follows)", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf(
      "[[post-config|$W/first.conf]]\n[DEFAULT]\nk = 1\n[[post-config|$UNDEFINED_VAR]]\n[DEFAULT]\nk = 2\n[[post-config|$W/b.conf]]\n[DEFAULT]\nk = 3\n",
      "local.conf",
    );
    await assert.rejects(mergeConfigGroup(parsed.blocks, "post-config", expander(), { files: nodeMergeFiles }), (err: unknown) => {
      assert.ok(err instanceof MergeError);
      assert.match(err.message, /^local\.conf:4: \[\[post-config\|\$UNDEFINED_VAR\]\]: \$UNDEFINED_VAR is not set/);
      assert.deepEqual(err.variables, ["UNDEFINED_VAR"]);
      return true;
    });
    assert.equal(existsSync(join(dir, "first.conf")), false);
    assert.equal(existsSync(join(dir, "b.conf")), false);
  });

  it("a file spec that expands to empty is refused naming the group, the spec and the variable, and nothing is written (never an empty path)", async () => {
    using _dir = freshDir();
    const text = "[[post-config|$W/first.conf]]\n[DEFAULT]\nk = 1\n[[post-config|$NOVA_CPU_CONF]]\n[DEFAULT]\nk = 2\n";
    for (const [spec, env, vars] of [
      ["$NOVA_CPU_CONF", { NOVA_CPU_CONF: "" }, ["NOVA_CPU_CONF"]],
      ["${NOVA_CPU_CONF:-}", {}, ["NOVA_CPU_CONF"]],
      ["$CONF_DIR$CONF_NAME", { CONF_DIR: "", CONF_NAME: "" }, ["CONF_DIR", "CONF_NAME"]],
    ] as const) {
      const parsed = parseLocalConf(text.replace("$NOVA_CPU_CONF", spec), "local.conf");
      await assert.rejects(mergeConfigGroup(parsed.blocks, "post-config", expander(env), { files: nodeMergeFiles }), (err: unknown) => {
        assert.ok(err instanceof MergeError);
        const named = vars.map((v) => `\\$${v}`).join(", ");
        assert.match(err.message, new RegExp(`^local\\.conf:4: \\[\\[post-config\\|${spec.replace(/[$.*+?^{}()|[\]\\]/g, "\\$&")}\\]\\]: the file spec expands to nothing: ${named} (is|are) empty in the host's shell`));
        assert.equal(err.group, "post-config");
        assert.equal(err.spec, spec);
        assert.deepEqual(err.variables, vars);
        return true;
      });
      assert.equal(existsSync(join(dir, "first.conf")), false, spec);
    }
    const noVariable = parseLocalConf("[[post-config|$(true)]]\n[DEFAULT]\nk = 1\n", "local.conf");
    await assert.rejects(mergeConfigGroup(noVariable.blocks, "post-config", expander(), { files: nodeMergeFiles }), /: local\.conf:1: \[\[post-config\|\$\(true\)\]\]: the file spec expands to nothing \(DevStack/);
  });

  it("ignores [[post-config| $W/c.conf]] with a warning, as DevStack ignores it", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf("[[post-config| $W/c.conf]]\n[DEFAULT]\nk = v\n", "local.conf");
    assert.match(parsed.diagnostics[0]?.message ?? "", /^local\.conf:1: .*space before its file spec/);
    const outcome = await mergeConfigGroup(parsed.blocks, "post-config", expander(), { files: nodeMergeFiles });
    assert.deepEqual(outcome.files, []);
    assert.equal(existsSync(join(dir, "c.conf")), false);
  });
});

describe("merge - all or nothing, and what the outcome reports", () => {
  it("undoes the group's earlier writes when a later file cannot be written", async () => {
    using _dir = freshDir();
    writeFileSync(join(dir, "existing.conf"), "[DEFAULT]\nk = old\n");
    const parsed = parseLocalConf(
      "[[post-config|$W/existing.conf]]\n[DEFAULT]\nk = new\n[[post-config|$W/new-dir/deeper/new.conf]]\n[s]\nk = v\n[[post-config|/proc/sb-cannot.conf]]\n[s]\nk = v\n",
      "local.conf",
    );
    await assert.rejects(mergeConfigGroup(parsed.blocks, "post-config", expander(), { files: nodeMergeFiles }), (err: unknown) => {
      assert.ok(err instanceof MergeError);
      assert.match(err.message, /could not create config file .*nothing of \[\[post-config\|\.\.\.\]\] was written/);
      return true;
    });
    assert.equal(readFileSync(join(dir, "existing.conf"), "utf8"), "[DEFAULT]\nk = old\n");
    assert.equal(existsSync(join(dir, "new-dir")), false);
  });

  it("warns about an unset variable in a value and writes it empty, as DevStack does", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf("[[post-config|$W/a.conf]]\n[DEFAULT]\nurl = http://$UNSET_HOST:5000\n", "local.conf");
    const outcome = await mergeConfigGroup(parsed.blocks, "post-config", expander(), { files: nodeMergeFiles });
    assert.equal(readFileSync(join(dir, "a.conf"), "utf8"), "\n[DEFAULT]\nurl = http://:5000\n");
    assert.equal(outcome.warnings.length, 1);
    assert.match(outcome.warnings[0]?.message ?? "", /^local\.conf:3: the value of "url" uses \$UNSET_HOST, not set in the host's shell/);
  });

  it("expands section and key names, and refuses one that expands to nothing", async () => {
    using _dir = freshDir();
    const ok = parseLocalConf("[[post-config|$W/a.conf]]\n[$SEC]\n$KEY = v\n", "local.conf");
    await mergeConfigGroup(ok.blocks, "post-config", expander({ SEC: "database", KEY: "connection" }), { files: nodeMergeFiles });
    assert.equal(readFileSync(join(dir, "a.conf"), "utf8"), "\n[database]\nconnection = v\n");
    await assert.rejects(mergeConfigGroup(ok.blocks, "post-config", expander({ SEC: "database" }), { files: nodeMergeFiles }), /local\.conf:3: .*key "\$KEY" cannot be expanded: it expands to 0 words \(\$KEY not set in the host's shell\)/);
  });

  it("merges two specs that name the same file one after the other", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf("[[post-config|$W/n.conf]]\n[DEFAULT]\na = 1\n[[post-config|$NOVA_CONF]]\n[DEFAULT]\nb = 2\na = 3\n", "local.conf");
    const outcome = await mergeConfigGroup(parsed.blocks, "post-config", expander({ NOVA_CONF: join(dir, "n.conf") }), { files: nodeMergeFiles });
    assert.equal(readFileSync(join(dir, "n.conf"), "utf8"), "\n[DEFAULT]\nb = 2\na = 3\n");
    assert.deepEqual(
      outcome.files.map((f) => f.created),
      [true, false],
    );
  });

  it("merges only the group asked for, and a group with no blocks does nothing", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf("[[post-config|$W/a.conf]]\n[s]\nk = 1\n[[test-config|$W/t.conf]]\n[s]\nk = 2\n", "local.conf");
    let calls = 0;
    const counting: Expander = async (requests) => {
      calls++;
      return expander()(requests);
    };
    assert.deepEqual((await mergeConfigGroup(parsed.blocks, "extra", counting, { files: nodeMergeFiles })).files, []);
    assert.equal(calls, 0);
    await mergeConfigGroup(parsed.blocks, "test-config", counting, { files: nodeMergeFiles });
    assert.equal(calls, 1, "one expansion batch per group");
    assert.equal(existsSync(join(dir, "a.conf")), false);
    assert.equal(readFileSync(join(dir, "t.conf"), "utf8"), "\n[s]\nk = 2\n");
  });

  it("resolves relative file specs against the cwd option (the host's TOP_DIR)", async () => {
    using _dir = freshDir();
    const parsed = parseLocalConf("[[post-config|etc/rel.conf]]\n[s]\nk = 1\n", "local.conf");
    const outcome = await mergeConfigGroup(parsed.blocks, "post-config", bashExpander({ cwd: tmpdir() }), { cwd: dir, files: nodeMergeFiles });
    assert.equal(outcome.files[0]?.path, join(dir, "etc/rel.conf"));
    assert.equal(readFileSync(join(dir, "etc/rel.conf"), "utf8"), "\n[s]\nk = 1\n");
  });
});

describe("merge - the files are handed in", () => {
  /** A file system in memory: only what the merge was given to read, and what it wrote. */
  function memoryFiles(initial: Record<string, string>, failWrite?: string): MergeFiles & { files: Map<string, string>; dirs: Set<string> } {
    const files = new Map(Object.entries(initial));
    const dirs = new Set(["/", "/etc"]);
    return {
      files,
      dirs,
      kind: (path) => (files.has(path) ? "file" : dirs.has(path) ? "directory" : undefined),
      read: (path) => files.get(path) ?? null,
      write: (path, text) => {
        if (path === failWrite) throw new Error("disk full");
        files.set(path, text);
      },
      makeDirs: (dir) => {
        for (let d = dir; d !== "/"; d = d.slice(0, d.lastIndexOf("/")) || "/") dirs.add(d);
      },
      remove: (path) => void files.delete(path),
      removeDir: (dir) => void dirs.delete(dir),
    };
  }
  const noShell: Expander = async (requests) => requests.map((r) => ({ value: r.text, unset: [] }));

  it("reads and writes only through the file system it is given", async () => {
    using _dir = freshDir();
    const fs = memoryFiles({ "/etc/nova.conf": "[DEFAULT]\nx = 1\n" });
    const parsed = parseLocalConf("[[post-config|/etc/nova.conf]]\n[DEFAULT]\ny = 2\n[[post-config|/etc/neutron/n.conf]]\n[s]\nk = v\n", "local.conf");
    const outcome = await mergeConfigGroup(parsed.blocks, "post-config", noShell, { files: fs });
    assert.deepEqual(outcome.files, [
      { spec: "/etc/nova.conf", path: "/etc/nova.conf", created: false },
      { spec: "/etc/neutron/n.conf", path: "/etc/neutron/n.conf", created: true },
    ]);
    assert.equal(fs.files.get("/etc/nova.conf"), "[DEFAULT]\ny = 2\nx = 1\n", "iniset adds an option right after its section header");
    assert.equal(fs.files.get("/etc/neutron/n.conf"), "\n[s]\nk = v\n");
    assert.ok(fs.dirs.has("/etc/neutron"));
  });

  it("undoes the group's writes through it when a write fails", async () => {
    using _dir = freshDir();
    const fs = memoryFiles({ "/etc/nova.conf": "[DEFAULT]\nx = 1\n" }, "/etc/neutron/n.conf");
    const parsed = parseLocalConf("[[post-config|/etc/nova.conf]]\n[DEFAULT]\ny = 2\n[[post-config|/etc/neutron/n.conf]]\n[s]\nk = v\n", "local.conf");
    await assert.rejects(mergeConfigGroup(parsed.blocks, "post-config", noShell, { files: fs }), /could not create config file \/etc\/neutron\/n\.conf .*disk full/);
    assert.equal(fs.files.get("/etc/nova.conf"), "[DEFAULT]\nx = 1\n");
    assert.equal(fs.files.has("/etc/neutron/n.conf"), false);
    assert.equal(fs.dirs.has("/etc/neutron"), false);
  });
});

describe("merge - text it does not send to the shell", () => {
  it("is exactly what the shell would make of it", async () => {
    using _dir = freshDir();
    const samples: Array<["word" | "value" | "literal", string]> = [
      ["word", "DEFAULT"],
      ["word", "filter:authtoken"],
      ["word", "a=b"],
      ["word", "-x"],
      ["value", "http://10.0.0.1:5000/v3"],
      ["value", "RetryFilter,AvailabilityZoneFilter"],
      ["value", "one two three"],
      ["value", "a -n"],
      ["value", ""],
      ["literal", "x  y"],
      ["literal", "-e"],
    ];
    for (const [kind, text] of samples) assert.ok(isPlain(kind, text), `${kind} ${JSON.stringify(text)} is plain`);
    for (const [kind, text] of [["value", "-n"], ["value", "a  b"], ["value", "*"], ["word", "$X"], ["literal", "a\\b"]] as const) {
      assert.ok(!isPlain(kind, text), `${kind} ${JSON.stringify(text)} is not plain`);
    }
    const results = await bashExpander({ env: {}, cwd: dir })(samples.map(([kind, text]) => ({ kind, text })));
    assert.deepEqual(
      results.map((r) => r.value),
      samples.map(([, text]) => text),
    );
  });
});
