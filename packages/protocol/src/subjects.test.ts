import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidNameError } from "./errors.js";
import { inboxPrefix, keys, newRunId, pluginObjectName, subjects } from "./subjects.js";
import { isValidName } from "./names.js";

describe("subjects - built only from validated tokens", () => {
  const hostile = ["a.b", "*", ">", "", "with space", "tab\there", "a>b", "x*", "../x", "-flag", "a".repeat(65)];

  for (const bad of hostile) {
    it(`refuses host name ${JSON.stringify(bad)} with an error naming the value`, () => {
      assert.throws(
        () => subjects.hostCommand("lab1", bad),
        (err: unknown) => {
          assert.ok(err instanceof InvalidNameError);
          assert.equal(err.kind, "host");
          assert.equal(err.value, bad);
          assert.ok(err.message.includes(JSON.stringify(bad)), err.message);
          return true;
        },
      );
    });
  }

  it("refuses a bad lab name in every builder that takes one", () => {
    for (const build of [
      () => subjects.configApply("a.b"),
      () => subjects.configGet("*", "h"),
      () => subjects.runEvent(">", "r1"),
      () => subjects.pluginsResolve("two words", "h"),
      () => keys.run("", "r1"),
    ]) {
      assert.throws(build, InvalidNameError);
    }
  });

  it("refuses a bad run id", () => {
    assert.throws(() => subjects.runResult("lab", "r.1", "h"), /run name "r.1" may not contain "."/);
  });

  it("builds the documented subjects from good tokens", () => {
    assert.equal(subjects.hostCommand("demo", "compute-1"), "sb.demo.host.compute-1.cmd");
    assert.equal(subjects.runResult("demo", "r1", "controller"), "sb.demo.run.r1.result.controller");
    assert.equal(subjects.runLog("demo", "r1", "c_2"), "sb.demo.log.r1.c_2");
    assert.equal(keys.agent("demo", "controller"), "demo.controller");
    assert.equal(subjects.pluginsResolve("demo", "compute-1"), "sb.demo.plugins.resolve.compute-1");
    assert.throws(() => subjects.pluginsResolve("demo", "*"), InvalidNameError);
  });

  it("names plugin archives by plugin and commit, refusing path tricks", () => {
    const sha = "a".repeat(40);
    assert.equal(pluginObjectName("devstack-plugin-ceph", sha), `devstack-plugin-ceph/${sha}.tar.gz`);
    assert.throws(() => pluginObjectName("../x", sha), InvalidNameError);
    assert.throws(() => pluginObjectName("ok", "HEAD"), /40-hex/);
  });

  it("makes run ids that are safe tokens and sort by time", () => {
    const a = newRunId(new Date("2026-01-01T00:00:00Z"));
    const b = newRunId(new Date("2026-01-01T00:00:01Z"));
    assert.ok(isValidName(a), a);
    assert.ok(a < b);
  });

  it("gives each identity its own reply-inbox prefix and refuses one that would widen it", () => {
    assert.equal(inboxPrefix("agent-compute1"), "_INBOX.agent-compute1");
    assert.equal(inboxPrefix("UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"), "_INBOX.UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4");
    for (const bad of ["a.b", ">", "*", ""]) assert.throws(() => inboxPrefix(bad), InvalidNameError);
  });
});
