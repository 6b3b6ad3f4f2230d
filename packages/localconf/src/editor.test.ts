import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { localconfSet, localrcSet } from "./editor.js";
import { parseLocalConf } from "./parse.js";

const C1 = "/tmp/conf1.conf";
const C2 = "/tmp/conf2.conf";
const FIXTURE = `[[local|localrc]]
LOCALRC_VAR1=localrc_val1
LOCALRC_VAR2=localrc_val2
LOCALRC_VAR3=localrc_val3

[[post-config|${C1}]]
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

[[post-extra|${C2}]]
[conf2_t1]
conf2_t1_opt1=conf2_t1_val1
conf2_t1_opt2=conf2_t1_val2
conf2_t1_opt3=conf2_t1_val3
`;

describe("editor - localconf_set and localrc_set (§5.3), writing option=value", () => {
  it("reproduces DevStack's verified localconf_set sequence in the one form stackbus writes", () => {
    let text = localconfSet(FIXTURE, "post-install", "/etc/neutron/plugin/ml2/ml2_conf.ini", "ml2", "ml2_opt1", "ml2_val1");
    text = localconfSet(text, "local", "localrc", "", "LOCALRC_VAR2", "localrc_val2_update");
    text = localconfSet(text, "post-config", C1, "conf1_t4", "conf1_t4_opt1", "conf1_t4_val1");
    text = localconfSet(text, "post-extra", C2, "conf2_t1", "conf2_t1_opt4", "conf2_t1_val4");
    const expected = FIXTURE.replace("LOCALRC_VAR2=localrc_val2\n", "LOCALRC_VAR2=localrc_val2_update\n")
      .replace(`[[post-config|${C1}]]\n`, `[[post-config|${C1}]]\n[conf1_t4]\nconf1_t4_opt1=conf1_t4_val1\n`)
      .replace("[conf2_t1]\n", "[conf2_t1]\nconf2_t1_opt4=conf2_t1_val4\n")
      .concat("\n[[post-install|/etc/neutron/plugin/ml2/ml2_conf.ini]]\n[ml2]\nml2_opt1=ml2_val1\n");
    assert.equal(text, expected);
    assert.deepEqual(parseLocalConf(text, "local.conf").diagnostics.filter((d) => d.severity === "error"), []);
  });

  it("updates an existing option in place, keeping the line's spacing, in the right block and section only", () => {
    const spaced = FIXTURE.replace("LOCALRC_VAR1=localrc_val1", "LOCALRC_VAR1 = localrc_val1").replace(
      "conf1_t2_opt2=conf1_t2_val2",
      "conf1_t2_opt2  =  conf1_t2_val2",
    );
    let text = localrcSet(spaced, "LOCALRC_VAR1", "localrc_val1_update");
    text = localconfSet(text, "post-config", C1, "conf1_t2", "conf1_t2_opt2", "conf1_t2_val2_update");
    assert.ok(text.includes("\nLOCALRC_VAR1 = localrc_val1_update\n"));
    assert.ok(text.includes("\nconf1_t2_opt2  =  conf1_t2_val2_update\n"));
    assert.equal(text.split("_update").length - 1, 2);
  });

  it("adds a missing option right after its [section] line, or after the block header when there is no section", () => {
    let text = localconfSet(FIXTURE, "post-config", C1, "conf1_t3", "conf1_t3_opt4", "conf1_t3_val4");
    text = localrcSet(text, "LOCALRC_VAR4", "localrc_val4");
    assert.ok(text.includes("[conf1_t3]\nconf1_t3_opt4=conf1_t3_val4\nconf1_t3_opt1=conf1_t3_val1\n"));
    assert.ok(text.startsWith("[[local|localrc]]\nLOCALRC_VAR4=localrc_val4\nLOCALRC_VAR1=localrc_val1\n"));
  });

  it("does nothing when group, conf, option or value is empty", () => {
    assert.equal(localconfSet(FIXTURE, "", C1, "s", "o", "v"), FIXTURE);
    assert.equal(localconfSet(FIXTURE, "post-config", "", "s", "o", "v"), FIXTURE);
    assert.equal(localconfSet(FIXTURE, "post-config", C1, "s", "", "v"), FIXTURE);
    assert.equal(localrcSet(FIXTURE, "LOCALRC_VAR1", ""), FIXTURE);
  });

  it("creates the block in an empty local.conf", () => {
    assert.equal(localrcSet("", "A", "1"), "\n[[local|localrc]]\nA=1\n");
  });
});
