import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ErrorCode } from "@stackbus/protocol";
import { tempDir } from "@stackbus/testkit";
import { bashExpander } from "./bash-expander.test-helper.js";
import { MergeError, mergeConfigFile, mergeConfigGroup } from "./merge.js";
import { nodeMergeFiles } from "./node-files.js";
import { parseLocalConf } from "./parse.js";
import type { ParsedLocalConf } from "./types.js";

/**
 * DevStack's tests/test_meta_config.sh fixture (test.conf after its heredoc expansion),
 * as §5.1 lists it. One change: test8's file is under /proc, which cannot be created even
 * by root (the original relies on running as an unprivileged user).
 */
const FIXTURE = `[[test1|test1a.conf]]
[default]
# comment an option
#log_file=./log.conf
log_file=/etc/log.conf
handlers=do not disturb

[aaa]
# the commented option should not change
#handlers=cc,dd
handlers = aa, bb

[[test1|test1b.conf]]
[bbb]
handlers=ee,ff

[ ccc ]
spaces  =  yes

[[test2|test2a.conf]]
[ddd]
# new comment
type=new
additional=true

[[test1|test1c.conf]]
[eee]
type=new
multi = foo2

[[test3|test-space.conf]]
[DEFAULT]
attribute=value

# the above line has a single space

[[test4|$TEST4_DIR/$TEST4_FILE]]
[fff]
type=new

[[test-env|test-env.conf]]
[foo]
foo=\${FOO_BAR_BAZ}

[[test5|test-equals.conf]]
[DEFAULT]
drivers = driver=python.import.path.Driver

[[test6|test-strip.conf]]
[DEFAULT]
# next line has trailing space
attr = strip_trailing_space 

[[test7|test-colon.conf]]
[DEFAULT]
servers=10.11.12.13:80

[[test8|/proc/permission-denied.conf]]
foo=bar

[[test9|$UNDEF]]
foo=bar

[[test10|does-not-exist-dir/test.conf]]
foo=bar

[[test11|test-same.conf]]
[DEFAULT]
foo=bar

[[test11|test-same.conf]]
[some]
random=config

[[test12|run_tests.sh/test.conf]]
foo=bar

[[test-multi-sections|test-multi-sections.conf]]
[sec-1]
cfg_item1 = abcd
cfg_item2 = efgh

[sec-2]
cfg_item1 = abcd
cfg_item3 = /1/2/3/4:5
cfg_item4 = end

[sec-3]
cfg_item5 = 5555
cfg_item6 = 6666
cfg_item5 = 5555another

[[test-multiline|test-multiline.conf]]
[multi]
cfg_item1 = ab:cd:ef:gh
cfg_item1 = abcd
cfg_item2 = efgh
cfg_item2 = \${FOO_BAR_BAZ}

[[test11|test-same.conf]]
[another]
non = sense
`;

/** As the bash tests compare: captured with $(...), so trailing newlines are stripped. */
/** The line number of the first fixture line equal to `text`, searching from `after`. */
function lineOf(text: string, after = ""): number {
  const lines = FIXTURE.split("\n");
  return lines.indexOf(text, after === "" ? 0 : lines.indexOf(after)) + 1;
}

function captured(text: string): string {
  return text.replace(/\n+$/, "");
}

function getMetaSectionFiles(parsed: ParsedLocalConf, group: string): string {
  return parsed.blocks
    .filter((b) => b.group === group)
    .map((b) => b.spec)
    .join("\n");
}

function getMetaSection(parsed: ParsedLocalConf, group: string, spec: string): string {
  return captured(
    parsed.blocks
      .filter((b) => b.group === group && b.spec === spec)
      .flatMap((b) => b.lines.map((l) => `${l.text}\n`))
      .join(""),
  );
}

test("meta-config - DevStack's test_meta_config.sh cases (§5.1), in order", async (t) => {
  using scratch = tempDir("sb-meta-config-");
  const dir = scratch.path;
  const parsed = parseLocalConf(FIXTURE, "test.conf");
  const absent = parseLocalConf("", "nofile.ini");
  const read = (name: string) => captured(readFileSync(join(dir, name), "utf8"));
  const expander = (env: Record<string, string> = {}) => bashExpander({ env, cwd: dir });

  await t.test("1-3: get_meta_section_files lists a group's file specs in file order", () => {
    assert.equal(getMetaSectionFiles(parsed, "test0"), "");
    assert.equal(getMetaSectionFiles(parsed, "test1"), "test1a.conf\ntest1b.conf\ntest1c.conf");
    assert.equal(getMetaSectionFiles(parsed, "test2"), "test2a.conf");
  });

  await t.test("4-7: get_meta_section returns a block's lines verbatim, comments kept, and nothing for unknown ones", () => {
    assert.equal(getMetaSection(parsed, "test0", "test0.conf"), "");
    assert.equal(getMetaSection(parsed, "test1", "test1c.conf"), "[eee]\ntype=new\nmulti = foo2");
    assert.equal(getMetaSection(parsed, "test2", "test2a.conf"), "[ddd]\n# new comment\ntype=new\nadditional=true");
    assert.equal(getMetaSection(parsed, "test2", "test2z.conf"), "");
  });

  await t.test("8-9: a local.conf that is absent (read as empty) has no sections", () => {
    assert.equal(getMetaSectionFiles(absent, "test1"), "");
    assert.equal(getMetaSection(absent, "test0", "test0.conf"), "");
  });

  await t.test("10: merge_config_file adds new keys after the header and replaces existing ones in place", async () => {
    writeFileSync(join(dir, "test1c.conf"), "[eee]\n# original comment\ntype=original\n");
    await mergeConfigFile(parsed.blocks, "test1", "test1c.conf", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test1c.conf"), "[eee]\nmulti = foo2\n# original comment\ntype=new");
  });

  await t.test("11: merge_config_file keeps comments of the target file", async () => {
    writeFileSync(join(dir, "test2a.conf"), "[ddd]\n# original comment\ntype=original\n");
    await mergeConfigFile(parsed.blocks, "test2", "test2a.conf", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test2a.conf"), "[ddd]\nadditional = true\n# original comment\ntype=new");
  });

  await t.test("12: a new file starts with a blank line and the [section] header, keys in local.conf order", async () => {
    rmSync(join(dir, "test2a.conf"));
    const outcome = await mergeConfigFile(parsed.blocks, "test2", "test2a.conf", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test2a.conf"), "\n[ddd]\ntype = new\nadditional = true");
    assert.deepEqual(outcome.files, [{ spec: "test2a.conf", path: join(dir, "test2a.conf"), created: true }]);
  });

  await t.test("13: several sections, and a repeated key grouped before the key that followed its first value", async () => {
    await mergeConfigFile(parsed.blocks, "test-multi-sections", "test-multi-sections.conf", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(
      read("test-multi-sections.conf"),
      "\n[sec-1]\ncfg_item1 = abcd\ncfg_item2 = efgh\n\n[sec-2]\ncfg_item1 = abcd\ncfg_item3 = /1/2/3/4:5\ncfg_item4 = end\n\n[sec-3]\ncfg_item5 = 5555\ncfg_item5 = 5555another\ncfg_item6 = 6666",
    );
  });

  await t.test("14: a repeated key becomes multi-valued in local.conf order, values expanded with the host's variables", async () => {
    await mergeConfigFile(parsed.blocks, "test-multiline", "test-multiline.conf", expander({ FOO_BAR_BAZ: "foo bar baz" }), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-multiline.conf"), "\n[multi]\ncfg_item1 = ab:cd:ef:gh\ncfg_item1 = abcd\ncfg_item2 = efgh\ncfg_item2 = foo bar baz");
  });

  await t.test("15: merge_config_group merges every file of the group", async () => {
    rmSync(join(dir, "test2a.conf"));
    await mergeConfigGroup(parsed.blocks, "test2", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test2a.conf"), "\n[ddd]\ntype = new\nadditional = true");
  });

  await t.test("16: a group of a local.conf that is absent creates nothing", async () => {
    rmSync(join(dir, "test2a.conf"));
    const outcome = await mergeConfigGroup(parseLocalConf("", "x-test.conf").blocks, "test2", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.deepEqual(outcome.files, []);
    assert.equal(existsSync(join(dir, "test2a.conf")), false);
  });

  await t.test("17: a blank line and a comment after the key change nothing", async () => {
    await mergeConfigFile(parsed.blocks, "test3", "test-space.conf", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-space.conf"), "\n[DEFAULT]\nattribute = value");
  });

  await t.test("18: ${VAR} in a value is expanded at merge time", async () => {
    await mergeConfigFile(parsed.blocks, "test-env", "test-env.conf", expander({ FOO_BAR_BAZ: "foo bar baz" }), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-env.conf"), "\n[foo]\nfoo = foo bar baz");
  });

  await t.test("19-20: the file spec is expanded with the host's variables, into an existing file and then a fresh one", async () => {
    mkdirSync(join(dir, "test-etc"), { recursive: true });
    writeFileSync(join(dir, "test-etc/test4.conf"), "[fff]\n# original comment\ntype=original\n");
    const env = { TEST4_DIR: "test-etc", TEST4_FILE: "test4.conf" };
    await mergeConfigGroup(parsed.blocks, "test4", expander(env), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-etc/test4.conf"), "[fff]\n# original comment\ntype=new");
    rmSync(join(dir, "test-etc/test4.conf"));
    await mergeConfigGroup(parsed.blocks, "test4", expander(env), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-etc/test4.conf"), "\n[fff]\ntype = new");
  });

  await t.test("21: only the first = separates key and value", async () => {
    await mergeConfigFile(parsed.blocks, "test5", "test-equals.conf", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-equals.conf"), "\n[DEFAULT]\ndrivers = driver=python.import.path.Driver");
  });

  await t.test("22: trailing spaces of a value are stripped", async () => {
    await mergeConfigFile(parsed.blocks, "test6", "test-strip.conf", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-strip.conf"), "\n[DEFAULT]\nattr = strip_trailing_space");
  });

  await t.test("23: a colon in a value is kept", async () => {
    await mergeConfigFile(parsed.blocks, "test7", "test-colon.conf", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-colon.conf"), "\n[DEFAULT]\nservers = 10.11.12.13:80");
  });

  await t.test("24: a file that cannot be created fails the merge naming the file", async () => {
    await assert.rejects(mergeConfigFile(parsed.blocks, "test8", "/proc/permission-denied.conf", expander(), { cwd: dir, files: nodeMergeFiles }), (err: unknown) => {
      assert.ok(err instanceof MergeError);
      assert.equal(err.code, ErrorCode.MergeFailed);
      assert.match(err.message, /could not create config file \/proc\/permission-denied\.conf \(\/proc\/permission-denied\.conf\)/);
      assert.match(err.message, /^test\.conf:\d+: \[\[test8\|\/proc\/permission-denied\.conf\]\]/);
      assert.equal(err.path, "/proc/permission-denied.conf");
      return true;
    });
  });

  await t.test("25: a file spec whose variable is undefined refuses the group, naming the spec and the variable (DevStack warns and goes on)", async () => {
    await assert.rejects(mergeConfigGroup(parsed.blocks, "test9", expander(), { cwd: dir, files: nodeMergeFiles }), (err: unknown) => {
      assert.ok(err instanceof MergeError);
      assert.equal(err.code, ErrorCode.MergeFailed);
      assert.match(err.message, /^test\.conf:\d+: \[\[test9\|\$UNDEF\]\]: \$UNDEF is not set in the host's shell/);
      assert.deepEqual(err.variables, ["UNDEF"]);
      assert.equal(err.spec, "$UNDEF");
      assert.equal(err.group, "test9");
      return true;
    });
  });

  await t.test("26: a missing directory is created, and a key before any [section] is dropped (an empty file)", async () => {
    const outcome = await mergeConfigGroup(parsed.blocks, "test10", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(readFileSync(join(dir, "does-not-exist-dir/test.conf"), "utf8"), "");
    assert.deepEqual(outcome.files, [{ spec: "does-not-exist-dir/test.conf", path: join(dir, "does-not-exist-dir/test.conf"), created: true }]);
    const dropped = parsed.diagnostics.find((d) => d.message.includes('"foo" comes before any [section]') && d.line === lineOf("foo=bar", "[[test10|does-not-exist-dir/test.conf]]"));
    assert.ok(dropped, "parse warns that test10's foo=bar is dropped");
  });

  await t.test("27: blocks with the same [[group|file]] merge together", async () => {
    await mergeConfigGroup(parsed.blocks, "test11", expander(), { cwd: dir, files: nodeMergeFiles });
    assert.equal(read("test-same.conf"), "\n[DEFAULT]\nfoo = bar\n\n[some]\nrandom = config\n\n[another]\nnon = sense");
  });

  await t.test("28: a spec whose parent is a file is an error naming it", async () => {
    writeFileSync(join(dir, "run_tests.sh"), "#!/bin/bash\n");
    await assert.rejects(mergeConfigGroup(parsed.blocks, "test12", expander(), { cwd: dir, files: nodeMergeFiles }), (err: unknown) => {
      assert.ok(err instanceof MergeError);
      assert.match(err.message, /bogus config file specification: .*run_tests\.sh exists but is not a directory/);
      assert.equal(err.path, join(dir, "run_tests.sh"));
      return true;
    });
  });

  await t.test("the fixture's [ ccc ] section (never merged by the cases) is reported", () => {
    assert.ok(parsed.diagnostics.some((d) => d.severity === "error" && d.line === lineOf("[ ccc ]") && d.message.includes("[ ccc ]")));
  });
});
