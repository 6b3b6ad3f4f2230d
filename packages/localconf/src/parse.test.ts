import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Diagnostic } from "@stackbus/protocol";
import { combineLocalConfs, parseLocalConf } from "./parse.js";

function only(diagnostics: Diagnostic[], severity: Diagnostic["severity"], pattern: RegExp): Diagnostic {
  const found = diagnostics.filter((d) => d.severity === severity && pattern.test(d.message));
  assert.equal(found.length, 1, `expected one ${severity} matching ${pattern}, got:\n${diagnostics.map((d) => d.message).join("\n")}`);
  return found[0] as Diagnostic;
}

function assertAt(d: Diagnostic, file: string, line: number): void {
  assert.equal(d.file, file);
  assert.equal(d.line, line);
  assert.ok(d.message.startsWith(`${file}:${line}: `), `message names ${file}:${line}: ${d.message}`);
}

describe("localconf parse - meta-sections as DevStack reads them", () => {
  it("keeps repeated headers as separate blocks in file order, with verbatim lines and line numbers", () => {
    const text = [
      "[[post-config|$NOVA_CONF]]",
      "[DEFAULT]",
      "a = 1",
      "",
      "[[post-config|/etc/nova/nova.conf]]",
      "[DEFAULT]",
      "[[post-config|$NOVA_CONF]]",
      "# comment kept",
      "[DEFAULT]",
      "b=2",
    ].join("\n");
    const parsed = parseLocalConf(text, "local.conf");
    assert.deepEqual(
      parsed.blocks.map((b) => [b.group, b.spec, b.line]),
      [
        ["post-config", "$NOVA_CONF", 1],
        ["post-config", "/etc/nova/nova.conf", 5],
        ["post-config", "$NOVA_CONF", 7],
      ],
    );
    assert.deepEqual(parsed.blocks[0]?.lines, [
      { text: "[DEFAULT]", line: 2 },
      { text: "a = 1", line: 3 },
      { text: "", line: 4 },
    ]);
    assert.deepEqual(parsed.blocks[2]?.lines.map((l) => l.text), ["# comment kept", "[DEFAULT]", "b=2"]);
    assert.ok(parsed.blocks.every((b) => b.file === "local.conf"));
    assert.deepEqual(parsed.diagnostics, []);
  });

  it("extracts every [[local|localrc]] block in order, verbatim, and ignores [[local|other]]", () => {
    const text = [
      "ignored_before=1",
      "[[local|localrc]]",
      "A=1",
      "[[post-config|$X]]",
      "[DEFAULT]",
      "x = 1",
      "[[local|localrc]]",
      "B=2 # second block",
      "[x]",
      "[[local|other]]",
      "C=3",
    ].join("\n");
    const parsed = parseLocalConf(text, "local.conf");
    assert.equal(parsed.localrc, "A=1\nB=2 # second block\n[x]\n");
    assertAt(only(parsed.diagnostics, "warning", /\[\[local\|other\]\] is ignored/), "local.conf", 10);
    assertAt(only(parsed.diagnostics, "warning", /before the first \[\[group\|file\]\] header and is ignored/), "local.conf", 1);
  });

  it("uses the first field of a header only, as DevStack's awk does", () => {
    const parsed = parseLocalConf("[[post-config|/etc/a.conf]] # trailing [[words]]\n[s]\nk=v\n[[post-config|$X ]]\n", "lc");
    assert.deepEqual(
      parsed.blocks.map((b) => [b.group, b.spec]),
      [
        ["post-config", "/etc/a.conf"],
        ["post-config", "$X"],
      ],
    );
    assertAt(only(parsed.diagnostics, "warning", /contains spaces: DevStack reads it only up to the first space, as \[\[post-config\|\$X\]\]/), "lc", 4);
  });

  it("warns about a header with a space before the file spec and ignores its block, as DevStack does", () => {
    const parsed = parseLocalConf("[[local|localrc]]\nA=1\n[[post-config| $W/c.conf]]\n[DEFAULT]\nk = v\n", "local.conf");
    assert.deepEqual(parsed.blocks.map((b) => b.spec), ["localrc"]);
    assert.equal(parsed.localrc, "A=1\n");
    assertAt(only(parsed.diagnostics, "warning", /space before its file spec/), "local.conf", 3);
  });

  it("warns about a header with spaces around the group: it matches no group and its lines are ignored", () => {
    const text = '[[local|localrc]]\nA=1\n[[ "$X" == "a|b" ]] && B=2\nC=3\n[[post-config|/etc/a.conf]]\n';
    const parsed = parseLocalConf(text, "local.conf");
    assert.equal(parsed.localrc, "A=1\n");
    assertAt(only(parsed.diagnostics, "warning", /header with spaces that matches no group/), "local.conf", 3);
  });

  it("warns about an empty file spec and ignores the block", () => {
    const parsed = parseLocalConf("[[post-config|]]\n[DEFAULT]\nk=v\n", "x/local.conf");
    assert.deepEqual(parsed.blocks, []);
    assertAt(only(parsed.diagnostics, "warning", /empty file spec/), "x/local.conf", 1);
  });

  it("reports a malformed header as an error naming file:line", () => {
    const parsed = parseLocalConf("[[local|localrc]]\nA=1\n[[post-config]]\n[[post-config|/etc/a\n[[|a.conf|b]]\n", "local.conf");
    const errors = parsed.diagnostics.filter((d) => d.severity === "error");
    assert.deepEqual(
      errors.map((d) => d.line),
      [3, 4, 5],
    );
    for (const d of errors) assert.match(d.message, /^local\.conf:\d+: malformed meta-section header/);
    assert.match(errors[0]?.message ?? "", /expected \[\[group\|file\]\]/);
  });

  it("does not mistake bash conditionals in localrc for headers", () => {
    const parsed = parseLocalConf('[[local|localrc]]\n[[ -n "$X" ]] && A=1\nB=2\n', "local.conf");
    assert.equal(parsed.localrc, '[[ -n "$X" ]] && A=1\nB=2\n');
    assert.deepEqual(parsed.diagnostics, []);
  });

  it("warns about groups stack.sh never merges and about text after the second |", () => {
    const parsed = parseLocalConf("[[post-install|/etc/a.conf]]\n[s]\nk=v\n[[post-config|/etc/b.conf|x]]\n", "lc");
    assertAt(only(parsed.diagnostics, "warning", /group "post-install" is never merged/), "lc", 1);
    assertAt(only(parsed.diagnostics, "warning", /text after the second "\|" is ignored/), "lc", 4);
    assert.deepEqual(parsed.blocks.map((b) => b.spec), ["/etc/a.conf", "/etc/b.conf"]);
  });

  it("numbers lines from firstLine for text embedded in a manifest, and reads CRLF files", () => {
    const parsed = parseLocalConf("[[post-config|/etc/a.conf]]\r\n  indented = 1\r\n", "lab.yaml", { firstLine: 10 });
    assert.deepEqual(parsed.blocks[0]?.lines, [{ text: "  indented = 1", line: 11 }]);
    assertAt(only(parsed.diagnostics, "warning", /indented line/), "lab.yaml", 11);
  });
});

describe("localconf parse - merge block diagnostics", () => {
  const text = [
    "[[post-config|$NOVA_CONF]]", // 1
    "nosection=1", // 2
    "[DEFAULT]", // 3
    "  indented = 2", // 4
    "\ttabbed = 3", // 5
    "  # an indented comment is fine", // 6
    "novalue", // 7
    'quoted = say "hi"', // 8
    "spaced   =   lots   of   spaces", // 9
    "glob = *", // 10
    ";semicolon=1", // 11
    "; a comment", // 12
    "two words = x", // 13
    "[ spacedsec ]", // 14
    "k = v", // 15
    "[a]b", // 16
    "=value", // 17
  ].join("\n");
  const parsed = parseLocalConf(text, "local.conf");

  it("warns that a key before any [section] is dropped, naming file:line", () => {
    assertAt(only(parsed.diagnostics, "warning", /"nosection" comes before any \[section\] header: DevStack drops it/), "local.conf", 2);
  });

  it("warns that indented lines are ignored, naming file:line, and leaves indented comments alone", () => {
    assertAt(only(parsed.diagnostics, "warning", /indented line "indented = 2" is ignored/), "local.conf", 4);
    assertAt(only(parsed.diagnostics, "warning", /indented line "tabbed = 3" is ignored/), "local.conf", 5);
    assert.ok(!parsed.diagnostics.some((d) => d.line === 6));
  });

  it("warns that a line without = becomes a key with an empty value", () => {
    assertAt(only(parsed.diagnostics, "warning", /"novalue" has no "=": it is written as "novalue = "/), "local.conf", 7);
  });

  it("warns when DevStack's expansion rewrites a value: quotes eaten, spaces collapsed, globs expanded", () => {
    assertAt(only(parsed.diagnostics, "warning", /value of "quoted" is rewritten.*double quotes are removed/), "local.conf", 8);
    assertAt(only(parsed.diagnostics, "warning", /value of "spaced" is rewritten.*runs of spaces become one space/), "local.conf", 9);
    assertAt(only(parsed.diagnostics, "warning", /value of "glob" is rewritten.*glob characters/), "local.conf", 10);
  });

  it("refuses keys that DevStack's eval would run or split", () => {
    assertAt(only(parsed.diagnostics, "error", /key ";semicolon" contains ";" \(";" does not start a comment/), "local.conf", 11);
    assertAt(only(parsed.diagnostics, "error", /"; a comment" has no "=" and is not a key \(";" does not start a comment/), "local.conf", 12);
    assertAt(only(parsed.diagnostics, "error", /key "two words" contains a space/), "local.conf", 13);
    assertAt(only(parsed.diagnostics, "error", /has no key before "="/), "local.conf", 17);
  });

  it("refuses a [ spaced ] section header and one with text after the bracket", () => {
    assertAt(only(parsed.diagnostics, "error", /"\[ spacedsec \]" has spaces inside the brackets.*write \[spacedsec\]/), "local.conf", 14);
    assertAt(only(parsed.diagnostics, "error", /"\[a\]b" is read by DevStack as \[ab\]; write \[a\]/), "local.conf", 16);
  });

  it("warns when a block without its own [section] continues the section of an earlier block", () => {
    const p = parseLocalConf("[[post-config|/etc/a.conf]]\n[DEFAULT]\na=1\n[[post-config|/etc/a.conf]]\nb=2\n", "lc");
    assertAt(only(p.diagnostics, "warning", /"b" has no \[section\] header in its .* it goes into \[DEFAULT\] from lc:2/), "lc", 5);
  });
});

describe("localconf parse - enable_plugin lines, read statically", () => {
  it("lists name, URL and ref (master by default) in registration order, with file:line", () => {
    const parsed = parseLocalConf(
      [
        "[[local|localrc]]",
        "GIT_BASE=https://opendev.org",
        "enable_plugin heat $GIT_BASE/openstack/heat stable/2026.1 # orchestration",
        "enable_plugin ceph https://opendev.org/openstack/devstack-plugin-ceph",
        'enable_plugin kafka "${GIT_BASE}/x/devstack-plugin-kafka" ""',
        "# enable_plugin commented https://example.org/x",
        "enable_plugin local-one ${LOCAL_PLUGINS:-/opt/plugins}/one",
      ].join("\n"),
      "local.conf",
    );
    assert.deepEqual(parsed.plugins, [
      { name: "heat", url: "https://opendev.org/openstack/heat", ref: "stable/2026.1", file: "local.conf", line: 3 },
      { name: "ceph", url: "https://opendev.org/openstack/devstack-plugin-ceph", ref: "master", file: "local.conf", line: 4 },
      { name: "kafka", url: "https://opendev.org/x/devstack-plugin-kafka", ref: "master", file: "local.conf", line: 5 },
      { name: "local-one", url: "/opt/plugins/one", ref: "master", file: "local.conf", line: 7 },
    ]);
    assert.deepEqual(parsed.diagnostics, []);
  });

  it("reports the same name enabled twice as an error naming both lines", () => {
    const parsed = parseLocalConf("[[local|localrc]]\nenable_plugin a https://x/a\nenable_plugin b https://x/b\nenable_plugin a https://y/a\n", "local.conf");
    const d = only(parsed.diagnostics, "error", /enabled twice/);
    assertAt(d, "local.conf", 4);
    assert.match(d.message, /first at local\.conf:2/);
    assert.deepEqual(parsed.plugins.map((p) => p.url), ["https://x/a", "https://x/b"]);
  });

  it("reports a missing URL, an unsafe name and an unknown variable, each naming file:line", () => {
    const parsed = parseLocalConf(
      "[[local|localrc]]\nenable_plugin lonely\nenable_plugin bad.name https://x/y\nenable_plugin heat $UNSET_BASE/heat\nenable_plugin z $(pwd)/z\n",
      "local.conf",
    );
    assertAt(only(parsed.diagnostics, "error", /enable_plugin needs NAME and GITURL/), "local.conf", 2);
    assertAt(only(parsed.diagnostics, "error", /plugin name "bad\.name" may not contain "\."/), "local.conf", 3);
    assertAt(only(parsed.diagnostics, "error", /enable_plugin uses \$UNSET_BASE, which localrc does not set before this line/), "local.conf", 4);
    assertAt(only(parsed.diagnostics, "error", /enable_plugin uses \$\(\.\.\.\)/), "local.conf", 5);
    assert.deepEqual(parsed.plugins, []);
  });

  it("warns about an indented enable_plugin and about extra arguments", () => {
    const parsed = parseLocalConf(
      "[[local|localrc]]\nif true; then\n    enable_plugin a https://x/a\nfi\nenable_plugin b https://x/b master extra\n",
      "local.conf",
    );
    assertAt(only(parsed.diagnostics, "warning", /enable_plugin a is indented/), "local.conf", 3);
    assertAt(only(parsed.diagnostics, "warning", /arguments after GITREF are ignored/), "local.conf", 5);
    assert.deepEqual(parsed.plugins.map((p) => p.name), ["a", "b"]);
  });
});

describe("localconf combine - the common file first, then the host's", () => {
  const common = parseLocalConf("[[local|localrc]]\nGIT_BASE=https://git.example\nenable_plugin a $GIT_BASE/a\n[[post-config|/etc/x.conf]]\n[DEFAULT]\nk = common\n", "common.conf");
  it("concatenates blocks, localrc and plugins, and resolves variables set in the common file", () => {
    const host = parseLocalConf("[[local|localrc]]\nenable_plugin b $GIT_BASE/b\n[[post-config|/etc/x.conf]]\n[DEFAULT]\nk = host\n", "host.conf");
    assert.equal(host.diagnostics.filter((d) => d.severity === "error").length, 1, "alone, the host file cannot resolve $GIT_BASE");
    const combined = combineLocalConfs([common, host]);
    assert.deepEqual(combined.diagnostics, []);
    assert.equal(combined.localrc, "GIT_BASE=https://git.example\nenable_plugin a $GIT_BASE/a\nenable_plugin b $GIT_BASE/b\n");
    assert.deepEqual(
      combined.plugins.map((p) => [p.name, p.url, p.file, p.line]),
      [
        ["a", "https://git.example/a", "common.conf", 3],
        ["b", "https://git.example/b", "host.conf", 2],
      ],
    );
    assert.deepEqual(combined.blocks.map((b) => [b.file, b.spec]), [
      ["common.conf", "localrc"],
      ["common.conf", "/etc/x.conf"],
      ["host.conf", "localrc"],
      ["host.conf", "/etc/x.conf"],
    ]);
  });

  it("reports a plugin enabled in both files as an error naming both file:line", () => {
    const host = parseLocalConf("[[local|localrc]]\n\nenable_plugin a https://elsewhere/a\n", "host.conf");
    const combined = combineLocalConfs([common, host]);
    const d = only(combined.diagnostics, "error", /enabled twice/);
    assertAt(d, "host.conf", 3);
    assert.match(d.message, /first at common\.conf:3/);
  });

  it("keeps each file's own header diagnostics once", () => {
    const host = parseLocalConf("[[post-config|]]\n", "host.conf");
    const combined = combineLocalConfs([common, host]);
    assert.equal(combined.diagnostics.length, 1);
    assertAt(only(combined.diagnostics, "warning", /empty file spec/), "host.conf", 1);
  });
});
