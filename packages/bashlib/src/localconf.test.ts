import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { tempDir } from "@stackbus/testkit";
import { bash, bashOut, q } from "./bash-harness.js";

// DevStack's tests/test_localconf.sh fixtures; C1 and C2 stand for the two config
// file names written into the meta headers.
const C1 = "/tmp/conf one.ini";
const C2 = "/etc/conf2.ini";

const CONF1_BLOCK = `[[post-config|${C1}]]
[conf1_t1]
conf1_t1_opt1=conf1_t1_val1
conf1_t1_opt2=conf1_t1_val2
conf1_t1_opt3=conf1_t1_val3
[conf1_t2]
conf1_t2_opt1=conf1_t2_val1
conf1_t2_opt2=conf1_t2_val2
conf1_t2_opt3=conf1_t2_val3
[conf1_t3]
conf1_t3_opt1=conf1_t3_val1
conf1_t3_opt2=conf1_t3_val2
conf1_t3_opt3=conf1_t3_val3
`;
const LOCALRC_BLOCK = `[[local|localrc]]
LOCALRC_VAR1=localrc_val1
LOCALRC_VAR2=localrc_val2
LOCALRC_VAR3=localrc_val3
`;
const CONF2_BLOCK = `[[post-extra|${C2}]]
[conf2_t1]
conf2_t1_opt1=conf2_t1_val1
conf2_t1_opt2=conf2_t1_val2
conf2_t1_opt3=conf2_t1_val3
`;

test("local.conf editing - DevStack's test_localconf.sh cases", async (t) => {
  using dir = tempDir("sb-localconf-");
  let n = 0;

  function localConf(text: string): string {
    const path = join(dir.path, `local-${++n}.conf`);
    writeFileSync(path, text);
    return path;
  }

  async function status(script: string): Promise<number | null> {
    return (await bash(script)).status;
  }

  await t.test("localconf_has_section - finds sections of the named meta section only", async () => {
    const lc = q(localConf(`${LOCALRC_BLOCK}\n${CONF1_BLOCK}\n${CONF2_BLOCK}`));
    const cases: Array<[string, number]> = [
      [`post-config ${q(C1)} conf1_t1`, 0],
      [`post-config ${q(C1)} conf1_t2`, 0],
      [`post-config ${q(C1)} conf1_t3`, 0],
      [`post-extra ${q(C2)} conf2_t1`, 0],
      [`post-config ${q(C1)} conf1_t4`, 1],
      [`post-install ${q(C1)} conf1_t1`, 1],
      ["local localrc conf1_t2", 1],
    ];
    for (const [args, expected] of cases) {
      assert.equal(await status(`localconf_has_section ${lc} ${args}`), expected, args);
    }
  });

  await t.test("localconf_has_option - finds options of the named meta section and section", async () => {
    const spaced = CONF1_BLOCK.replace(/^(conf1_t1_opt\d)=(.*)$/gm, "$1 = $2");
    const lc = q(localConf(`${spaced}\n${LOCALRC_BLOCK}\n${CONF2_BLOCK}`));
    const cases: Array<[string, number]> = [
      ['local localrc "" LOCALRC_VAR1', 0],
      ['local localrc "" LOCALRC_VAR2', 0],
      ['local localrc "" LOCALRC_VAR3', 0],
      [`post-config ${q(C1)} conf1_t1 conf1_t1_opt1`, 0],
      [`post-config ${q(C1)} conf1_t2 conf1_t2_opt2`, 0],
      [`post-config ${q(C1)} conf1_t3 conf1_t3_opt3`, 0],
      [`post-extra ${q(C2)} conf2_t1 conf2_t1_opt2`, 0],
      [`post-config ${q(C1)} conf1_t1_opt4`, 1],
      [`post-install ${q(C1)} conf1_t1_opt1`, 1],
      ["local localrc conf1_t2 conf1_t2_opt1", 1],
    ];
    for (const [args, expected] of cases) {
      assert.equal(await status(`localconf_has_option ${lc} ${args}`), expected, args);
    }
  });

  await t.test("localconf_update_option - replaces existing values keeping each line's spacing, ignores missing ones", async () => {
    const spacedLocalrc = LOCALRC_BLOCK.replace(/^(LOCALRC_VAR\d)=/gm, "$1 = ");
    const path = localConf(`${spacedLocalrc}\n${CONF1_BLOCK}\n${CONF2_BLOCK}`);
    const lc = q(path);
    await bashOut(
      [
        `localconf_update_option "" ${lc} local localrc "" LOCALRC_VAR2 localrc_val2_update`,
        `localconf_update_option "" ${lc} post-config ${q(C1)} conf1_t1 conf1_t1_opt1 conf1_t1_val1_update`,
        `localconf_update_option "" ${lc} post-config ${q(C1)} conf1_t2 conf1_t2_opt2 conf1_t2_val2_update`,
        `localconf_update_option "" ${lc} post-config ${q(C1)} conf1_t3 conf1_t3_opt3 conf1_t3_val3_update`,
        `localconf_update_option "" ${lc} post-extra ${q(C2)} conf2_t1 conf2_t1_opt3 conf2_t1_val3_update`,
      ].join("\n"),
    );
    const expected = `${spacedLocalrc.replace("localrc_val2", "localrc_val2_update")}\n${CONF1_BLOCK.replace("=conf1_t1_val1", "=conf1_t1_val1_update")
      .replace("=conf1_t2_val2", "=conf1_t2_val2_update")
      .replace("=conf1_t3_val3", "=conf1_t3_val3_update")}\n${CONF2_BLOCK.replace("=conf2_t1_val3", "=conf2_t1_val3_update")}`;
    assert.equal(readFileSync(path, "utf8"), expected);
    await bashOut(
      [
        `localconf_update_option "" ${lc} post-config ${q(C1)} conf1_t2 conf1_t3_opt1 conf1_t3_val1_update`,
        `localconf_update_option "" ${lc} post-extra ${q(C2)} conf2_t1 conf2_t1_opt4 conf2_t1_val4_update`,
        `localconf_update_option "" ${lc} post-install ${q(C2)} conf2_t1 conf2_t1_opt1 conf2_t1_val1_update`,
        `localconf_update_option "" ${lc} local localrc "" LOCALRC_VAR4 localrc_val4_update`,
      ].join("\n"),
    );
    assert.equal(readFileSync(path, "utf8"), expected);
  });

  await t.test("localconf_add_option - inserts opt=val after the [section] line or the meta header; missing targets change nothing", async () => {
    const spacedConf2 = CONF2_BLOCK.replace(/^(conf2_t1_opt\d)=/gm, "$1 = ");
    const path = localConf(`${CONF1_BLOCK}\n${LOCALRC_BLOCK}\n${spacedConf2}`);
    const lc = q(path);
    await bashOut(
      [
        `localconf_add_option "" ${lc} local localrc "" LOCALRC_VAR4 localrc_val4`,
        `localconf_add_option "" ${lc} post-config ${q(C1)} conf1_t1 conf1_t1_opt4 conf1_t1_val4`,
        `localconf_add_option "" ${lc} post-config ${q(C1)} conf1_t2 conf1_t2_opt4 conf1_t2_val4`,
        `localconf_add_option "" ${lc} post-config ${q(C1)} conf1_t3 conf1_t3_opt4 conf1_t3_val4`,
        `localconf_add_option "" ${lc} post-extra ${q(C2)} conf2_t1 conf2_t1_opt4 conf2_t1_val4`,
      ].join("\n"),
    );
    const expected = `${CONF1_BLOCK.replace("[conf1_t1]\n", "[conf1_t1]\nconf1_t1_opt4=conf1_t1_val4\n")
      .replace("[conf1_t2]\n", "[conf1_t2]\nconf1_t2_opt4=conf1_t2_val4\n")
      .replace("[conf1_t3]\n", "[conf1_t3]\nconf1_t3_opt4=conf1_t3_val4\n")}\n${LOCALRC_BLOCK.replace(
      "[[local|localrc]]\n",
      "[[local|localrc]]\nLOCALRC_VAR4=localrc_val4\n",
    )}\n${spacedConf2.replace("[conf2_t1]\n", "[conf2_t1]\nconf2_t1_opt4=conf2_t1_val4\n")}`;
    assert.equal(readFileSync(path, "utf8"), expected);
    await bashOut(
      [
        `localconf_add_option "" ${lc} local localrc.conf "" LOCALRC_VAR4 localrc_val4_update`,
        `localconf_add_option "" ${lc} post-config ${q(C1)} conf1_t4 conf1_t4_opt1 conf1_t4_val1`,
        `localconf_add_option "" ${lc} post-extra ${q(C2)} conf2_t2 conf2_t2_opt4 conf2_t2_val4`,
        `localconf_add_option "" ${lc} post-install ${q(C2)} conf2_t1 conf2_t1_opt4 conf2_t2_val4`,
      ].join("\n"),
    );
    assert.equal(readFileSync(path, "utf8"), expected);
  });

  await t.test("localconf_add_section_and_option - inserts [section] and opt=val right after the meta header", async () => {
    const path = localConf(`${CONF1_BLOCK}\n${LOCALRC_BLOCK}\n${CONF2_BLOCK}`);
    const lc = q(path);
    await bashOut(
      [
        `localconf_add_section_and_option "" ${lc} post-config ${q(C1)} conf1_t4 conf1_t4_opt1 conf1_t4_val1`,
        `localconf_add_section_and_option "" ${lc} post-extra ${q(C2)} conf2_t2 conf2_t2_opt1 conf2_t2_val1`,
      ].join("\n"),
    );
    const expected = `${CONF1_BLOCK.replace("]]\n", "]]\n[conf1_t4]\nconf1_t4_opt1=conf1_t4_val1\n")}\n${LOCALRC_BLOCK}\n${CONF2_BLOCK.replace(
      "]]\n",
      "]]\n[conf2_t2]\nconf2_t2_opt1=conf2_t2_val1\n",
    )}`;
    assert.equal(readFileSync(path, "utf8"), expected);
    await bashOut(`localconf_add_section_and_option "" ${lc} post-install ${q(C2)} conf2_t2 conf2_t2_opt1 conf2_t2_val1`);
    assert.equal(readFileSync(path, "utf8"), expected);
  });

  await t.test("localconf_set - appends a missing meta section, replaces in place, adds sections and options, all as opt=val", async () => {
    const path = localConf(`${LOCALRC_BLOCK}\n${CONF1_BLOCK}\n${CONF2_BLOCK}`);
    const lc = q(path);
    await bashOut(
      [
        `localconf_set ${lc} post-install /etc/neutron/plugin/ml2/ml2_conf.ini ml2 ml2_opt1 ml2_val1`,
        `localconf_set ${lc} local localrc "" LOCALRC_VAR2 localrc_val2_update`,
        `localconf_set ${lc} post-config ${q(C1)} conf1_t4 conf1_t4_opt1 conf1_t4_val1`,
        `localconf_set ${lc} post-extra ${q(C2)} conf2_t1 conf2_t1_opt4 conf2_t1_val4`,
      ].join("\n"),
    );
    const expected =
      `${LOCALRC_BLOCK.replace("localrc_val2", "localrc_val2_update")}\n` +
      `${CONF1_BLOCK.replace("]]\n", "]]\n[conf1_t4]\nconf1_t4_opt1=conf1_t4_val1\n")}\n` +
      `${CONF2_BLOCK.replace("[conf2_t1]\n", "[conf2_t1]\nconf2_t1_opt4=conf2_t1_val4\n")}` +
      "\n[[post-install|/etc/neutron/plugin/ml2/ml2_conf.ini]]\n[ml2]\nml2_opt1=ml2_val1\n";
    assert.equal(readFileSync(path, "utf8"), expected);
  });
});

test("local.conf editing - localconf_set and localrc_set beyond DevStack's cases", async (t) => {
  using dir = tempDir("sb-localconf2-");

  await t.test("localconf_set - creates a missing file starting with an empty line", async () => {
    const path = join(dir.path, "new.conf");
    await bashOut(`localconf_set ${q(path)} post-config '$NOVA_CPU_CONF' compute cpu_mode host`);
    assert.equal(readFileSync(path, "utf8"), "\n[[post-config|$NOVA_CPU_CONF]]\n[compute]\ncpu_mode=host\n");
  });

  await t.test("localconf_set - does nothing when the group, conf, option or value is empty", async () => {
    const path = join(dir.path, "empty-args.conf");
    writeFileSync(path, "[[local|localrc]]\nA=1\n");
    await bashOut(
      [`'' localrc '' A 2`, `local '' '' A 2`, `local localrc '' '' 2`, `local localrc '' A ''`]
        .map((args) => `localconf_set ${q(path)} ${args}`)
        .join("\n"),
    );
    assert.equal(readFileSync(path, "utf8"), "[[local|localrc]]\nA=1\n");
  });

  await t.test("localrc_set - sets a variable in [[local|localrc]], keeping the others", async () => {
    const path = join(dir.path, "localrc.conf");
    writeFileSync(path, "[[local|localrc]]\nA=1\nB = 2\n[[post-config|$X]]\n[s]\nA=9\n");
    await bashOut(`localrc_set ${q(path)} B 3\nlocalrc_set ${q(path)} C 4`);
    assert.equal(readFileSync(path, "utf8"), "[[local|localrc]]\nC=4\nA=1\nB = 3\n[[post-config|$X]]\n[s]\nA=9\n");
  });

  await t.test("localconf_set - a commented-out option is not taken as present, and values are written literally", async () => {
    const path = join(dir.path, "commented.conf");
    writeFileSync(path, "[[post-config|$C]]\n[s]\n#opt=old\n");
    await bashOut(`localconf_set ${q(path)} post-config '$C' s opt 'a&b\\c|d'`);
    assert.equal(readFileSync(path, "utf8"), "[[post-config|$C]]\n[s]\nopt=a&b\\c|d\n#opt=old\n");
  });
});
