import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { DEVSTACK_TEST_INI, tempDir } from "@stackbus/testkit";
import { bash, bashOut, q } from "./bash-harness.js";

const FIXTURE = DEVSTACK_TEST_INI + "\n";

for (const sudo of ["", "-sudo "]) {
  test(`ini functions${sudo ? " with -sudo" : ""} - DevStack's test_ini_config.sh cases, in order`, async (t) => {
    using dir = tempDir("sb-ini-");
    mkdirSync(join(dir.path, "etc"));
    const ini = join(dir.path, "etc", "test.ini");
    writeFileSync(ini, FIXTURE);
    const sh = (script: string) => bashOut(script.replaceAll("$S", sudo).replaceAll("$T", q(ini)));
    const read = () => readFileSync(ini, "utf8");

    await t.test("1. iniget_sections lists every section, '[ ccc ]' as ccc", async () => {
      assert.equal(
        await sh("iniget_sections $T"),
        "default aaa bbb ccc ddd eee fff ggg key_with_spaces del_separate_options del_same_option del_missing_option del_missing_option_multi del_no_options",
      );
    });

    await t.test("2. iniset without an option leaves the file byte-identical", async () => {
      const before = read();
      await sh("iniset $S$T aaa");
      assert.equal(read(), before);
    });

    await t.test("3. iniset without a section leaves the file byte-identical", async () => {
      const before = read();
      await sh("iniset $S$T");
      assert.equal(read(), before);
    });

    await t.test("4. iniget reads a value with spaces", async () => {
      assert.equal(await sh("iniget $T aaa handlers"), "aa, bb");
    });

    await t.test("5. iniset writes a value with spaces", async () => {
      assert.equal(await sh("iniset $S$T aaa handlers '11, 22'\niniget $T aaa handlers"), "11, 22");
    });

    await t.test("6. iniget finds a section whose header has spaces", async () => {
      assert.equal(await sh("iniget $T ' ccc ' spaces"), "yes");
    });

    await t.test("7. iniset appends a missing section with a space in its name", async () => {
      assert.equal(await sh("iniset $S$T 'b b' opt_ion 42\niniget $T 'b b' opt_ion"), "42");
      assert.ok(read().endsWith("\n\n[b b]\nopt_ion = 42\n"));
    });

    await t.test("8. iniget reads a value without spaces", async () => {
      assert.equal(await sh("iniget $T bbb handlers"), "ee,ff");
    });

    await t.test("9. iniset writes a value without spaces", async () => {
      assert.equal(await sh("iniset $S$T bbb handlers 33,44\niniget $T bbb handlers"), "33,44");
    });

    await t.test("10. iniset keeps '&' literally, also when repeated", async () => {
      const out = await sh("for i in 1 2 3; do iniset $S$T fff ampersand '&y'; done\niniget $T fff ampersand");
      assert.equal(out, "&y");
    });

    await t.test("11. iniset keeps a backslash", async () => {
      assert.equal(await sh("iniset $S$T ggg backslash 'foo\\bar'\niniget $T ggg backslash"), "foo\\bar");
    });

    await t.test("12. iniset keeps a backslash and '&' together", async () => {
      assert.equal(await sh("iniset $S$T ggg backslash 'foo\\bar&baz'\niniget $T ggg backslash"), "foo\\bar&baz");
    });

    await t.test("13. ini_has_option is true for an option with an empty value", async () => {
      assert.equal(await sh("ini_has_option $S$T ddd empty && echo yes || echo no"), "yes");
    });

    await t.test("14. ini_has_option is true for a set option", async () => {
      assert.equal(await sh("ini_has_option $S$T bbb handlers && echo yes || echo no"), "yes");
    });

    await t.test("15. iniset fills an empty value", async () => {
      assert.equal(await sh("iniset $S$T ddd empty 42\niniget $T ddd empty"), "42");
    });

    await t.test("16. iniset keeps '|' literally", async () => {
      assert.equal(await sh("iniset $S$T aaa handlers 'a|b'\niniget $T aaa handlers"), "a|b");
    });

    await t.test("17. iniget of a missing section is empty", async () => {
      assert.equal(await sh("iniget $T zzz handlers"), "");
    });

    await t.test("18. iniget of a missing option is empty", async () => {
      assert.equal(await sh("iniget $T aaa debug"), "");
    });

    await t.test("19. ini_has_option is false for a missing option", async () => {
      assert.equal(await sh("ini_has_option $S$T aaa debug && echo yes || echo no"), "no");
    });

    await t.test("20. inicomment hides the option from iniget", async () => {
      assert.equal(await sh("inicomment $S$T aaa handlers\niniget $T aaa handlers"), "");
      assert.match(read(), /^#handlers = a\|b$/m);
    });

    await t.test("21. iniset_multiline replaces all values, in order", async () => {
      assert.equal(await sh("iniset_multiline $S$T eee multi bar1 bar2\niniget_multiline $T eee multi"), "bar1 bar2");
    });

    await t.test("22. iniadd appends a value to a multi-line option", async () => {
      assert.equal(await sh("iniadd $S$T eee multi bar3\niniget_multiline $T eee multi"), "bar1 bar2 bar3");
    });

    await t.test("23. iniadd creates a multi-line option", async () => {
      assert.equal(await sh("iniadd $S$T eee non-multi foobar1 foobar2\niniget_multiline $T eee non-multi"), "foobar1 foobar2");
    });

    await t.test("24. inidelete removes every 'a' line and only those, with or without the option or the section", async () => {
      const sections = ["del_separate_options", "del_same_option", "del_missing_option", "del_missing_option_multi", "del_no_options", "del_no_section"];
      for (const section of sections) {
        assert.equal(await sh(`inidelete $S$T ${section} a\niniget_multiline $T ${section} a`), "", section);
      }
      assert.equal(await sh("iniget_multiline $T del_separate_options b"), "c");
      assert.equal(await sh("iniget_multiline $T del_missing_option b"), "c");
      assert.equal(await sh("iniget_multiline $T del_missing_option_multi b"), "c d");
    });

    await t.test("25. iniset creates a missing file, which then starts with an empty line", async () => {
      const created = join(dir.path, "etc", "test.new.ini");
      assert.equal(await bashOut(`iniset ${sudo}${q(created)} test foo bar\niniget ${q(created)} test foo`), "bar");
      assert.equal(readFileSync(created, "utf8"), "\n[test]\nfoo = bar\n");
    });

    await t.test("26. iniset adds a key with spaces", async () => {
      const out = await sh("iniset $S$T key_with_spaces 'rgw another key' somethingelse\niniget $T key_with_spaces 'rgw another key'");
      assert.equal(out, "somethingelse");
    });

    await t.test("27. iniset replaces a key with spaces", async () => {
      const out = await sh("iniset $S$T key_with_spaces 'rgw special key' newvalue\niniget $T key_with_spaces 'rgw special key'");
      assert.equal(out, "newvalue");
    });

    await t.test("28. inidelete removes a key with spaces", async () => {
      const out = await sh("inidelete $S$T key_with_spaces 'rgw another key'\niniget $T key_with_spaces 'rgw another key'");
      assert.equal(out, "");
    });
  });
}

test("ini functions - layout rules", async (t) => {
  using dir = tempDir("sb-ini-layout-");

  function file(name: string, text: string): string {
    const path = join(dir.path, name);
    writeFileSync(path, text);
    return path;
  }

  await t.test("iniset - a new option goes right after the header; an existing one keeps its spacing", async () => {
    const f = file("a.ini", "[DEFAULT]\n# comment\ntype=original\n");
    await bashOut(`iniset ${q(f)} DEFAULT type new\niniset ${q(f)} DEFAULT added 1`);
    assert.equal(readFileSync(f, "utf8"), "[DEFAULT]\nadded = 1\n# comment\ntype=new\n");
  });

  await t.test("iniset - squeezes blank runs in the value but does not expand globs", async () => {
    const f = file("b.ini", "[s]\n");
    await bashOut(`iniset ${q(f)} s spaced '  lots   of   spaces  '\niniset ${q(f)} s glob '*'`, { cwd: dir.path });
    assert.equal(readFileSync(f, "utf8"), "[s]\nglob = *\nspaced = lots of spaces\n");
  });

  await t.test("iniset - names are literal: '.' in a section or option is no wildcard", async () => {
    const f = file("c.ini", "[aXb]\nkXy = 1\n");
    assert.equal(await bashOut(`iniget ${q(f)} a.b kXy; iniget ${q(f)} aXb k.y`), "");
    await bashOut(`iniset ${q(f)} aXb k.y 2`);
    assert.equal(readFileSync(f, "utf8"), "[aXb]\nk.y = 2\nkXy = 1\n");
  });

  await t.test("iniset - a prefix of an option name is a different option", async () => {
    const f = file("d.ini", "[s]\nfoobar = 1\n");
    await bashOut(`iniset ${q(f)} s foo 2`);
    assert.equal(await bashOut(`iniget ${q(f)} s foobar; iniget ${q(f)} s foo`), "1\n2");
  });

  await t.test("iniset - every line of the option in the section is replaced, other sections untouched", async () => {
    const f = file("e.ini", "[s]\nk = old\nk = old\n[t]\nk = keep\n");
    await bashOut(`iniset ${q(f)} s k new`);
    assert.equal(readFileSync(f, "utf8"), "[s]\nk = new\nk = new\n[t]\nk = keep\n");
  });

  await t.test("iniget - several values of one option come back joined as DevStack prints them", async () => {
    const f = file("f.ini", "[s]\nx = 1\nx = 2\n");
    assert.equal(await bashOut(`iniget ${q(f)} s x`), "1 x = 2");
  });

  await t.test("iniadd_literal - inserts after the header without touching other values; no section, no change", async () => {
    const f = file("g.ini", "[s]\nm = 1\n");
    await bashOut(`iniadd_literal ${q(f)} s m '2  literal'\niniadd_literal ${q(f)} missing m 3`);
    assert.equal(readFileSync(f, "utf8"), "[s]\nm = 2  literal\nm = 1\n");
  });

  await t.test("iniuncomment - restores commented options of the section only", async () => {
    const f = file("h.ini", "[s]\n#a = 1\n# a=2\n##a = 3\n#b = 4\n[t]\n#a = 5\n");
    await bashOut(`iniuncomment ${q(f)} s a`);
    assert.equal(readFileSync(f, "utf8"), "[s]\na = 1\na=2\na = 3\n#b = 4\n[t]\n#a = 5\n");
  });

  await t.test("iniset_multiline - appends a missing section and writes the values in order", async () => {
    const f = file("i.ini", "[s]\nx = 1\n");
    await bashOut(`iniset_multiline ${q(f)} new v a b c`);
    assert.equal(readFileSync(f, "utf8"), "[s]\nx = 1\n\n[new]\nv = a\nv = b\nv = c\n");
  });

  await t.test("iniset - of two back-to-back blocks of one section only the first is the section; a new key goes after both headers", async () => {
    const f = file("j.ini", "[DEFAULT]\na = 1\n[DEFAULT]\nb = 2\n");
    await bashOut(`iniset ${q(f)} DEFAULT b 3`);
    assert.equal(readFileSync(f, "utf8"), "[DEFAULT]\nb = 3\na = 1\n[DEFAULT]\nb = 3\nb = 2\n");
  });

  await t.test("iniset - keeps the file's inode and mode (written in place)", async () => {
    const f = file("k.ini", "[s]\n");
    const run = await bash(`chmod 640 ${q(f)}; before=$(stat -c %i:%a ${q(f)}); iniset ${q(f)} s k v; after=$(stat -c %i:%a ${q(f)}); [[ $before == "$after" ]] && echo same`);
    assert.equal(run.stdout, "same\n");
  });

  await t.test("iniget - a missing file gives an empty value and status 0", async () => {
    const run = await bash(`iniget ${q(join(dir.path, "nope.ini"))} s k; echo "rc=$?"`);
    assert.equal(run.stdout, "\nrc=0\n");
  });
});
