import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { bash, bashOut, q } from "./bash-harness.js";

/** Sets ENABLED_SERVICES, runs `call` (bash text), prints ENABLED_SERVICES. */
async function enabledAfter(start: string, call: string): Promise<string> {
  return bashOut(`ENABLED_SERVICES=${q(start)}\n${call}\nprintf '%s' "$ENABLED_SERVICES"`);
}

/** Which of `names` is_service_enabled accepts after `setup`. */
async function enabledNames(setup: string, names: string[]): Promise<string[]> {
  const out = await bashOut(
    `${setup}\nfor s in ${names.map(q).join(" ")}; do if is_service_enabled "$s"; then echo "$s"; fi; done`,
  );
  return out === "" ? [] : out.split("\n");
}

describe("enable_service - DevStack's test_functions.sh table", () => {
  const rows: Array<[string, string, string]> = [
    ["", "a", "a"],
    ["a", "b", "a,b"],
    ["a,b", "c", "a,b,c"],
    ["a,b", "c", "a,b,c"],
    ["a,b,", "c", "a,b,c"],
    ["a,b", "c,d", "a,b,c,d"],
    ["a,b", "c d", "a,b,c,d"],
    ["a,b,c", "c", "a,b,c"],
    ["a,b,-c", "c", "a,b"],
    ["a,b,c", "-c", "a,b"],
  ];
  for (const [start, arg, result] of rows) {
    it(`enable_service - '${start}' + ${arg} gives '${result}'`, async () => {
      assert.equal(await enabledAfter(start, `enable_service ${arg}`), result);
    });
  }

  it("enable_service - the already-enabled check reads the global list, so a repeated argument is added twice", async () => {
    assert.equal(await enabledAfter("a", "enable_service b a b"), "a,b,b");
  });

  it("enable_service - a group name already enabled through a member is not added", async () => {
    assert.equal(await enabledAfter("n-cpu", "enable_service nova"), "n-cpu");
  });

  it("enable_service - a disabled service is not enabled and the warning names the caller's file and line", async () => {
    const run = await bash(`ENABLED_SERVICES=a\nDISABLED_SERVICES=x\nenable_service x\necho "list=$ENABLED_SERVICES"`);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^\[WARNING\] .*:\d+ Attempt to enable_service x when it has been disabled$/m);
    assert.match(run.stdout, /^list=a$/m);
  });
});

describe("disable_service - DevStack's test_functions.sh table", () => {
  const rows: Array<[string, string, string]> = [
    ["a,b,c", "a", "b,c"],
    ["a,b,c", "b", "a,c"],
    ["a,b,c", "c", "a,b"],
    ["a,b,c", "a", "b,c"],
    ["b,c", "b", "c"],
    ["c", "c", ""],
    ["", "d", ""],
    ["a,b,c,", "c", "a,b"],
    ["a,b", "c", "a,b"],
  ];
  for (const [start, arg, result] of rows) {
    it(`disable_service - '${start}' - ${arg} gives '${result}'`, async () => {
      assert.equal(await enabledAfter(start, `disable_service ${arg}`), result);
    });
  }

  it("disable_service - records every argument in DISABLED_SERVICES, enabled or not", async () => {
    const out = await bashOut(`ENABLED_SERVICES=a,b\ndisable_service b zz\necho "$ENABLED_SERVICES|$DISABLED_SERVICES"`);
    assert.equal(out, "a|b,zz");
  });

  it("disable_service - removes one occurrence per repeated entry (non-overlapping)", async () => {
    assert.equal(await enabledAfter("a,a,b", "disable_service a"), "a,b");
  });
});

describe("disable_all_services / disable_negated_services / remove_disabled_services", () => {
  it("disable_all_services - empties ENABLED_SERVICES and leaves DISABLED_SERVICES alone", async () => {
    const out = await bashOut(`ENABLED_SERVICES=a,b,c\nDISABLED_SERVICES=x\ndisable_all_services\necho "[$ENABLED_SERVICES][$DISABLED_SERVICES]"`);
    assert.equal(out, "[][x]");
  });

  const negated: Array<[string, string]> = [
    ["-a", ""],
    ["-a,a", ""],
    ["-a,-a", ""],
    ["a,-a", ""],
    ["b,a,-a", "b"],
    ["a,b,-a", "b"],
    ["a,-a,b", "b"],
    ["a,aa,-a", "aa"],
    ["aa,-a", "aa"],
    ["a_a, -a_a", ""],
    ["a-b, -a-b", ""],
    ["a-b, b, -a-b", "b"],
    ["a,-a,av2,b", "av2,b"],
    ["a,aa,-a", "aa"],
    ["a,av2,-a,a", "av2"],
    ["a,-a,av2", "av2"],
  ];
  for (const [start, result] of negated) {
    it(`disable_negated_services - '${start}' gives '${result}'`, async () => {
      assert.equal(await enabledAfter(start, "disable_negated_services"), result);
    });
  }

  const removals: Array<[string, string, string]> = [
    ["a,b,c", "a,c", "b"],
    ["a,b,c", "b", "a,c"],
    ["a,b,c,d", "a,c d", "b"],
    ["a,b c,d", "a d", "b,c"],
    ["a,b,c", "a,b,c", ""],
    ["a,b,c", "d", "a,b,c"],
    ["a,b,c", "", "a,b,c"],
    ["", "a,b,c", ""],
    ["", "", ""],
  ];
  for (const [list, remove, result] of removals) {
    it(`remove_disabled_services - '${list}' minus '${remove}' gives '${result}'`, async () => {
      assert.equal(await bashOut(`remove_disabled_services ${q(list)} ${q(remove)}`), result);
    });
  }

  it("_cleanup_service_list - one pass of ',,' -> ',' then one leading and one trailing comma removed", async () => {
    const out = await bashOut(`for s in 'a,,,b' ',,,' ',a,,' 'a,b'; do echo "[$(_cleanup_service_list "$s")]"; done`);
    assert.deepEqual(out.split("\n"), ["[a,,b]", "[]", "[a]", "[a,b]"]);
  });
});

describe("is_service_enabled - names, groups and hooks (reference §4)", () => {
  const matrix = "ENABLED_SERVICES=key,n-cpu,c-vol,neutron-api,placement-client";

  it("is_service_enabled - the verified matrix: keystone, nova, cinder and neutron are enabled through members, placement is not", async () => {
    const names = ["keystone", "nova", "cinder", "neutron", "placement", "key", "n-cpu", "glance", "swift"];
    assert.deepEqual(await enabledNames(matrix, names), ["keystone", "nova", "cinder", "neutron", "key", "n-cpu"]);
  });

  it("is_service_enabled - after disable_service keystone nova cinder: keystone and cinder are off, key, c-vol and nova stay on", async () => {
    const names = ["keystone", "key", "nova", "n-cpu", "cinder", "c-vol"];
    assert.deepEqual(await enabledNames(`${matrix}\ndisable_service keystone nova cinder`, names), ["key", "nova", "n-cpu", "c-vol"]);
  });

  it("is_service_enabled - placement follows placement-api, not placement-client", async () => {
    assert.deepEqual(await enabledNames("ENABLED_SERVICES=placement-api", ["placement"]), ["placement"]);
  });

  it("is_service_enabled - legacy groups: glance g-*, neutron q-*, swift s-*, trove tr-*, n-cpu-* and s-* names", async () => {
    const setup = "ENABLED_SERVICES=g-api,q-svc,s-proxy,tr-api,n-cpu,swift";
    const names = ["glance", "neutron", "swift", "trove", "n-cpu-x", "s-object", "cinder", "keystone"];
    assert.deepEqual(await enabledNames(setup, names), ["glance", "neutron", "swift", "trove", "n-cpu-x", "s-object"]);
  });

  it("is_service_enabled - neutron through neutron-* is off once a neutron* name is disabled, through q-* it stays on", async () => {
    assert.deepEqual(await enabledNames("ENABLED_SERVICES=neutron-api\nDISABLED_SERVICES=neutron", ["neutron"]), []);
    assert.deepEqual(await enabledNames("ENABLED_SERVICES=q-svc\nDISABLED_SERVICES=neutron", ["neutron"]), ["neutron"]);
  });

  it("is_service_enabled - true when any argument is enabled, false when none is", async () => {
    assert.equal(await bashOut("ENABLED_SERVICES=a,b\nis_service_enabled x b && echo yes || echo no"), "yes");
    assert.equal(await bashOut("ENABLED_SERVICES=a,b\nis_service_enabled x y && echo yes || echo no"), "no");
    assert.equal(await bashOut("ENABLED_SERVICES=a,b\nis_service_enabled 'x b' && echo yes || echo no"), "yes");
  });

  it("is_service_enabled - a plain name matches exactly: no prefix, no suffix, no dot wildcard", async () => {
    const setup = "ENABLED_SERVICES=n-api,tempest,ab";
    assert.deepEqual(await enabledNames(setup, ["n-ap", "n-api", "temp", "a.", "a", "b"]), ["n-api"]);
  });

  it("is_service_enabled - a name with regex characters is matched as a regex, as DevStack callers expect", async () => {
    assert.deepEqual(await enabledNames("ENABLED_SERVICES=key,n-api", ["n-.*", "q-.*", "(key|x)"]), ["n-.*", "(key|x)"]);
  });

  it("is_service_enabled - a plugin's is_<name>_enabled function decides for names the list does not hold", async () => {
    const setup = [
      "ENABLED_SERVICES=container,k8s-master",
      'function is_k8s_enabled { [[ ,${ENABLED_SERVICES} =~ ,"k8s-" ]]; }',
    ].join("\n");
    assert.deepEqual(await enabledNames(setup, ["k8s", "container", "k8s-node"]), ["k8s", "container"]);
    assert.deepEqual(await enabledNames("ENABLED_SERVICES=container\nfunction is_k8s_enabled { return 1; }", ["k8s"]), []);
  });

  it("is_service_enabled - every argument's hook runs, even after an earlier argument matched", async () => {
    const out = await bashOut(
      'ENABLED_SERVICES=a\nfunction is_b_enabled { echo "hook b ran"; return 1; }\nis_service_enabled a b && echo enabled',
    );
    assert.equal(out, "hook b ran\nenabled");
  });
});

describe("verify_disabled_services / use_exclusive_service", () => {
  it("verify_disabled_services - passes when no disabled service is listed as enabled", async () => {
    const run = await bash("ENABLED_SERVICES=a,b\nDISABLED_SERVICES=c\nverify_disabled_services\necho ok");
    assert.equal(run.status, 0);
    assert.equal(run.stdout, "ok\n");
  });

  it("verify_disabled_services - dies naming the service when ENABLED_SERVICES was edited after disable_service", async () => {
    const run = await bash('ENABLED_SERVICES=a,b\ndisable_service b\nENABLED_SERVICES+=",b"\nverify_disabled_services\necho not-reached');
    assert.equal(run.status, 1);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /\[ERROR\] .*:\d+ ENABLED_SERVICES directly modified to overcome 'disable_service b'/);
  });

  it("use_exclusive_service - enables the selection, disables the other options and sets the output variable", async () => {
    const out = await bashOut(
      'ENABLED_SERVICES=mysql\nDATABASE_BACKENDS="mysql postgresql"\nuse_exclusive_service DATABASE_BACKENDS DATABASE_TYPE postgresql\necho "$ENABLED_SERVICES|$DISABLED_SERVICES|$DATABASE_TYPE"',
    );
    assert.equal(out, "postgresql|mysql|postgresql");
  });

  it("use_exclusive_service - an unknown selection returns 1 and changes nothing", async () => {
    const out = await bashOut(
      'ENABLED_SERVICES=mysql\nDATABASE_BACKENDS="mysql postgresql"\nuse_exclusive_service DATABASE_BACKENDS DATABASE_TYPE oracle; echo "rc=$? $ENABLED_SERVICES|${DISABLED_SERVICES:-}|${DATABASE_TYPE:-}"',
    );
    assert.equal(out, "rc=1 mysql||");
  });

  it("use_exclusive_service - a substring of the options that is no option disables them all (DevStack quirk)", async () => {
    const out = await bashOut(
      'ENABLED_SERVICES=mysql\nDATABASE_BACKENDS="mysql postgresql"\nuse_exclusive_service DATABASE_BACKENDS DATABASE_TYPE sql\necho "$ENABLED_SERVICES|$DISABLED_SERVICES|$DATABASE_TYPE"',
    );
    assert.equal(out, "|mysql,postgresql|sql");
  });
});
