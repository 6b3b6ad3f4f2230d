import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEVSTACK_TEST_INI } from "@stackbus/testkit";
import { iniAddLiteral, iniDelete, iniGet, iniGetMultiline, iniHasOption, iniSections, iniSet } from "./ini.js";

const FIXTURE = DEVSTACK_TEST_INI;

describe("ini - DevStack's test_ini_config.sh cases on the TypeScript ini operations (state carries over)", () => {
  let ini = FIXTURE;

  it("1: lists every section, [ ccc ] as ccc", () => {
    assert.equal(
      iniSections(ini),
      "default aaa bbb ccc ddd eee fff ggg key_with_spaces del_separate_options del_same_option del_missing_option del_missing_option_multi del_no_options",
    );
  });

  it("2-3: iniset without an option or without a section leaves the file byte-identical", () => {
    assert.equal(iniSet(ini, "aaa", "", "x"), ini);
    assert.equal(iniSet(ini, "", "", ""), ini);
  });

  it("4-5: iniget reads a value; iniset replaces it in place, keeping the line's spacing", () => {
    assert.equal(iniGet(ini, "aaa", "handlers"), "aa, bb");
    ini = iniSet(ini, "aaa", "handlers", "11, 22");
    assert.equal(iniGet(ini, "aaa", "handlers"), "11, 22");
    assert.ok(ini.includes("\nhandlers = 11, 22\n"));
    assert.ok(ini.includes("#handlers=cc,dd\n"), "the commented option does not change");
  });

  it("6: reads an option of a section whose header has spaces", () => {
    assert.equal(iniGet(ini, " ccc ", "spaces"), "yes");
  });

  it("7: iniset on a missing section appends it after a blank line", () => {
    ini = iniSet(ini, "b b", "opt_ion", "42");
    assert.equal(iniGet(ini, "b b", "opt_ion"), "42");
    assert.ok(ini.endsWith("# no section - del_no_section\n\n[b b]\nopt_ion = 42\n"));
  });

  it("8-9: reads and replaces a value written without spaces", () => {
    assert.equal(iniGet(ini, "bbb", "handlers"), "ee,ff");
    ini = iniSet(ini, "bbb", "handlers", "33,44");
    assert.equal(iniGet(ini, "bbb", "handlers"), "33,44");
    assert.ok(ini.includes("\nhandlers=33,44\n"));
  });

  it("10: an ampersand survives being set three times", () => {
    for (let i = 0; i < 3; i++) ini = iniSet(ini, "fff", "ampersand", "&y");
    assert.equal(iniGet(ini, "fff", "ampersand"), "&y");
  });

  it("11-12: backslashes and ampersands are written literally", () => {
    ini = iniSet(ini, "ggg", "backslash", "foo\\bar");
    assert.equal(iniGet(ini, "ggg", "backslash"), "foo\\bar");
    ini = iniSet(ini, "ggg", "backslash", "foo\\bar&baz");
    assert.equal(iniGet(ini, "ggg", "backslash"), "foo\\bar&baz");
  });

  it("13-15: an option with an empty value is present, and can be set", () => {
    assert.equal(iniHasOption(ini, "ddd", "empty"), true);
    assert.equal(iniHasOption(ini, "bbb", "handlers"), true);
    ini = iniSet(ini, "ddd", "empty", "42");
    assert.equal(iniGet(ini, "ddd", "empty"), "42");
  });

  it("16: a pipe in a value is written literally", () => {
    ini = iniSet(ini, "aaa", "handlers", "a|b");
    assert.equal(iniGet(ini, "aaa", "handlers"), "a|b");
  });

  it("17-19: a missing section or option reads as empty and is not present", () => {
    assert.equal(iniGet(ini, "zzz", "handlers"), "");
    assert.equal(iniGet(ini, "aaa", "debug"), "");
    assert.equal(iniHasOption(ini, "aaa", "debug"), false);
  });

  it("24: inidelete removes every occurrence of the option in its section and nothing else", () => {
    for (const section of ["del_separate_options", "del_same_option", "del_missing_option", "del_missing_option_multi", "del_no_options", "del_no_section"]) {
      ini = iniDelete(ini, section, "a");
      assert.equal(iniGetMultiline(ini, section, "a"), "", section);
    }
    assert.equal(iniGetMultiline(ini, "del_separate_options", "b"), "c");
    assert.equal(iniGetMultiline(ini, "del_missing_option", "b"), "c");
    assert.equal(iniGetMultiline(ini, "del_missing_option_multi", "b"), "c d");
  });

  it("25: iniset on a file that does not exist creates it with a blank line first", () => {
    const created = iniSet("", "test", "foo", "bar");
    assert.equal(iniGet(created, "test", "foo"), "bar");
    assert.equal(created, "\n[test]\nfoo = bar\n");
  });

  it("26-28: keys with spaces are set, replaced and deleted", () => {
    ini = iniSet(ini, "key_with_spaces", "rgw another key", "somethingelse");
    assert.equal(iniGet(ini, "key_with_spaces", "rgw another key"), "somethingelse");
    ini = iniSet(ini, "key_with_spaces", "rgw special key", "newvalue");
    assert.equal(iniGet(ini, "key_with_spaces", "rgw special key"), "newvalue");
    ini = iniDelete(ini, "key_with_spaces", "rgw another key");
    assert.equal(iniGet(ini, "key_with_spaces", "rgw another key"), "");
    assert.equal(iniGet(ini, "key_with_spaces", "rgw special key"), "newvalue");
  });
});

describe("ini - the layout rules the merge relies on (§3.4)", () => {
  it("a new key goes right after its section header, above existing content", () => {
    assert.equal(iniSet("[s]\n# note\nold = 1\n", "s", "new", "2"), "[s]\nnew = 2\n# note\nold = 1\n");
  });

  it("replaces every occurrence inside the section, keeping each line's spacing", () => {
    assert.equal(iniSet("[s]\nkey1 = old\nkey1=old\n[t]\nkey1 = keep\n", "s", "key1", "new"), "[s]\nkey1 = new\nkey1=new\n[t]\nkey1 = keep\n");
  });

  it("does not confuse a key with a longer key it prefixes, nor a commented-out key", () => {
    assert.equal(iniSet("[s]\nfoobar = 1\n#foo = x\n", "s", "foo", "2"), "[s]\nfoo = 2\nfoobar = 1\n#foo = x\n");
  });

  it("a repeated [DEFAULT] header closes the first range: its keys are not updated, and new keys go after every header", () => {
    const text = "[DEFAULT]\na = 1\n[DEFAULT]\nb = 1\n";
    assert.equal(iniSet(text, "DEFAULT", "b", "2"), "[DEFAULT]\nb = 2\na = 1\n[DEFAULT]\nb = 2\nb = 1\n");
  });

  it("iniadd_literal inserts after the header, and does nothing when the section is missing", () => {
    assert.equal(iniAddLiteral("\n[s]\nk = 2\n", "s", "k", "1"), "\n[s]\nk = 1\nk = 2\n");
    assert.equal(iniAddLiteral("\n[s]\n", "t", "k", "1"), "\n[s]\n");
  });

  it("keeps a file without a final newline as it is, except where a line is added at its end", () => {
    assert.equal(iniSet("[s]\nk = 1", "s", "k", "2"), "[s]\nk = 2");
    assert.equal(iniSet("[s]", "s", "k", "2"), "[s]\nk = 2\n");
  });
});
