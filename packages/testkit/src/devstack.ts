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
