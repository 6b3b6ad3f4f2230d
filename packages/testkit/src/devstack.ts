/**
 * DevStack's tests/test_ini_config.sh fixture (etc/test.ini), as
 * reference/devstack-semantics.md §5.2 describes it: the ini functions of the helper
 * library and of the TypeScript port are both tested against it.
 */
export const DEVSTACK_TEST_INI = `[default]
# comment an option
#log_file=./log.conf
log_file=/etc/log.conf
handlers=do not disturb

[aaa]
# the commented option should not change
#handlers=cc,dd
handlers = aa, bb

[bbb]
handlers=ee,ff

[ ccc ]
spaces  =  yes

[ddd]
empty =

[eee]
multi = foo1
multi = foo2

[fff]
ampersand =

[ggg]
backslash =

[key_with_spaces]
rgw special key = something

# inidelete(a)
[del_separate_options]
a=b
b=c

# inidelete(a)
[del_same_option]
a=b
a=c

# inidelete(a)
[del_missing_option]
b=c

# inidelete(a)
[del_missing_option_multi]
b=c
b=d

# inidelete(a)
[del_no_options]

# inidelete(a)
# no section - del_no_section
`;

/** One step of an ini case: an editing function, or a query whose answer is compared. */
export type IniStep =
  | { op: "set" | "addLiteral"; section: string; option: string; value: string }
  | { op: "delete" | "get" | "getMultiline" | "has"; section: string; option: string }
  | { op: "sections" };

/** A start text and the steps run on it, in order (state carries over). */
export interface IniCase {
  name: string;
  text: string;
  steps: IniStep[];
}

const set = (section: string, option: string, value: string): IniStep => ({ op: "set", section, option, value });
const get = (section: string, option: string): IniStep => ({ op: "get", section, option });
const has = (section: string, option: string): IniStep => ({ op: "has", section, option });
const del = (section: string, option: string): IniStep => ({ op: "delete", section, option });
const multi = (section: string, option: string): IniStep => ({ op: "getMultiline", section, option });
const literal = (section: string, option: string, value: string): IniStep => ({ op: "addLiteral", section, option, value });

const DELETE_SECTIONS = ["del_separate_options", "del_same_option", "del_missing_option", "del_missing_option_multi", "del_no_options", "del_no_section"];

/**
 * DevStack's tests/test_ini_config.sh steps on its fixture (the ones both the helper
 * library's ini functions and localconf's ini operations implement), then the layout rules
 * the local.conf merge relies on. Values have no blank runs: the helper library's iniset
 * squeezes them (DevStack's unquoted echo), where the merge has already expanded them.
 */
export const INI_CASES: IniCase[] = [
  {
    name: "test_ini_config.sh, in order",
    text: DEVSTACK_TEST_INI,
    steps: [
      { op: "sections" },
      set("aaa", "", "x"),
      set("", "", ""),
      get("aaa", "handlers"),
      set("aaa", "handlers", "11, 22"),
      get("aaa", "handlers"),
      get(" ccc ", "spaces"),
      set("b b", "opt_ion", "42"),
      get("b b", "opt_ion"),
      get("bbb", "handlers"),
      set("bbb", "handlers", "33,44"),
      set("fff", "ampersand", "&y"),
      set("fff", "ampersand", "&y"),
      set("fff", "ampersand", "&y"),
      set("ggg", "backslash", "foo\\bar"),
      set("ggg", "backslash", "foo\\bar&baz"),
      has("ddd", "empty"),
      has("bbb", "handlers"),
      set("ddd", "empty", "42"),
      set("aaa", "handlers", "a|b"),
      get("zzz", "handlers"),
      get("aaa", "debug"),
      has("aaa", "debug"),
      ...DELETE_SECTIONS.flatMap((s) => [del(s, "a"), multi(s, "a"), multi(s, "b")]),
      set("key_with_spaces", "rgw another key", "somethingelse"),
      set("key_with_spaces", "rgw special key", "newvalue"),
      del("key_with_spaces", "rgw another key"),
      get("key_with_spaces", "rgw another key"),
      get("key_with_spaces", "rgw special key"),
      { op: "sections" },
    ],
  },
  { name: "a file that does not exist yet", text: "", steps: [set("test", "foo", "bar"), get("test", "foo")] },
  { name: "a new option goes right after its header", text: "[s]\n# note\nold = 1\n", steps: [set("s", "new", "2"), set("s", "old", "3")] },
  { name: "every occurrence in the section is replaced, spacing kept", text: "[s]\nkey1 = old\nkey1=old\n[t]\nkey1 = keep\n", steps: [set("s", "key1", "new"), get("t", "key1")] },
  { name: "a prefix of an option, and a commented option, are other options", text: "[s]\nfoobar = 1\n#foo = x\n", steps: [set("s", "foo", "2"), get("s", "foobar"), get("s", "foo")] },
  { name: "names are literal: '.' is no wildcard", text: "[aXb]\nkXy = 1\n", steps: [get("a.b", "kXy"), get("aXb", "k.y"), set("aXb", "k.y", "2")] },
  { name: "a repeated [DEFAULT] header", text: "[DEFAULT]\na = 1\n[DEFAULT]\nb = 1\n", steps: [set("DEFAULT", "b", "2"), get("DEFAULT", "a"), multi("DEFAULT", "b")] },
  { name: "several values of one option", text: "[s]\nx = 1\nx = 2\n", steps: [get("s", "x"), multi("s", "x"), has("s", "x")] },
  { name: "iniadd_literal", text: "\n[s]\nk = 2\n", steps: [literal("s", "k", "1"), literal("t", "k", "1"), multi("s", "k")] },
  { name: "a repeated option replaced by the merge's delete, set and add", text: "[s]\nm = 0\n", steps: [del("s", "m"), set("s", "m", "3"), literal("s", "m", "2"), literal("s", "m", "1"), multi("s", "m")] },
];
