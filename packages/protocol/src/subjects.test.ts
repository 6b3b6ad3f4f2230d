import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidNameError } from "./errors.js";
import { describeSubject, inboxPrefix, keys, newRunId, pluginObjectName, subjects } from "./subjects.js";
import { isValidName } from "./names.js";
import { versionsCompatible } from "./version.js";

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

  it("names what a subject reaches in people's words: services, hosts' agents, runs", () => {
    assert.equal(describeSubject(subjects.hostPlan("lab1", "ctl")), "the agent of host ctl in lab lab1");
    assert.equal(describeSubject(subjects.hostCommand("lab1", "compute-2")), "the agent of host compute-2 in lab lab1");
    assert.equal(describeSubject(subjects.configShow("lab1")), "the config service of lab lab1");
    assert.equal(describeSubject(subjects.labList()), "the config service");
    assert.equal(describeSubject(subjects.pluginsResolve("lab1", "h")), "the plugin fetcher of lab lab1");
    assert.equal(describeSubject(subjects.runStart("lab1")), "the coordinator of lab lab1");
    assert.equal(describeSubject("$JS.API.STREAM.INFO.SB_RUNS"), "JetStream (is the server running with -js?)");
    assert.equal(describeSubject("other.subject"), "other.subject");
  });
});

describe("versions - agents and the coordinator of a lab share major and minor", () => {
  it("patch versions mix; another minor or major does not; a malformed version matches nothing", () => {
    assert.equal(versionsCompatible("0.1.0", "0.1.7"), true);
    assert.equal(versionsCompatible("0.1.0", "0.2.0"), false);
    assert.equal(versionsCompatible("1.1.0", "0.1.0"), false);
    assert.equal(versionsCompatible("dev", "dev"), false);
  });
});
