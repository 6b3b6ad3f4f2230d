import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode, redactUrl, type LabPluginAccess } from "@stackbus/protocol";
import { PluginUrlError } from "./errors.js";
import { redact, resolveSource, stripCredentials } from "./source.js";

const BASE: LabPluginAccess = {
  order: "registration",
  reclone: false,
  offline: false,
  mirrors: [],
  allowSchemes: ["https", "http", "file", "path"],
  credentials: [],
  hosts: ["h1"],
  plugins: [],
};
const access = (over: Partial<LabPluginAccess> = {}): LabPluginAccess => ({ ...BASE, ...over });

describe("resolveSource - how a plugin URL is reached in a lab", () => {
  it("recognises https, http, file:// and absolute paths", () => {
    assert.equal(resolveSource("p", "https://opendev.org/openstack/p", access()).kind, "https");
    assert.equal(resolveSource("p", "http://127.0.0.1:8080/p.git", access()).kind, "http");
    const file = resolveSource("p", "file:///srv/git/p.git", access());
    assert.deepEqual([file.kind, file.target], ["file", "/srv/git/p.git"]);
    const path = resolveSource("p", "/srv/git/../git/p", access());
    assert.deepEqual([path.kind, path.target], ["path", "/srv/git/p"]);
  });

  it("rewrites the longest matching mirror prefix, GIT_BASE style, and keeps the requested URL for display", () => {
    const lab = access({
      mirrors: [
        { prefix: "https://opendev.org/", replace: "http://mirror.lab/git/" },
        { prefix: "https://opendev.org/openstack/", replace: "/srv/mirror/" },
      ],
    });
    const openstack = resolveSource("p", "https://opendev.org/openstack/devstack-plugin-ceph", lab);
    assert.deepEqual([openstack.kind, openstack.target, openstack.display, openstack.mirrored], [
      "path",
      "/srv/mirror/devstack-plugin-ceph",
      "https://opendev.org/openstack/devstack-plugin-ceph",
      true,
    ]);
    const other = resolveSource("p", "https://opendev.org/x/y", lab);
    assert.equal(other.target, "http://mirror.lab/git/x/y");
    assert.equal(resolveSource("p", "https://github.com/x/y", lab).mirrored, false);
  });

  it("a mirror can turn an unsupported transport into a supported one", () => {
    const lab = access({ mirrors: [{ prefix: "git://git.openstack.org/", replace: "https://mirror.lab/" }] });
    assert.equal(resolveSource("p", "git://git.openstack.org/openstack/p", lab).target, "https://mirror.lab/openstack/p");
  });

  it("takes credentials from the URL or the longest matching credential prefix, and redacts them in what is shown", () => {
    const lab = access({
      credentials: [
        { prefix: "https://git.corp/", username: "bot", password: "wide" },
        { prefix: "https://git.corp/team/", username: "team-bot", password: "narrow" },
      ],
    });
    assert.deepEqual(resolveSource("p", "https://git.corp/team/p", lab).auth, { username: "team-bot", password: "narrow" });
    const embedded = resolveSource("p", "https://me:pa%40ss@git.corp/team/p", lab);
    assert.deepEqual(embedded.auth, { username: "me", password: "pa@ss" });
    assert.equal(embedded.display, "https://***@git.corp/team/p");
    assert.equal(embedded.origin, "https://git.corp/team/p");
    assert.equal(embedded.target, "https://git.corp/team/p");
    assert.ok(embedded.secrets.includes("pa@ss"));
  });

  it("a mirror whose replacement carries credentials uses them, and shows and logs it redacted", () => {
    const lab = access({ mirrors: [{ prefix: "https://opendev.org/", replace: "https://mirror-bot:m1rr0r@mirror.lab/git/" }] });
    const source = resolveSource("p", "https://opendev.org/openstack/p", lab);
    assert.deepEqual(source.auth, { username: "mirror-bot", password: "m1rr0r" });
    assert.equal(source.target, "https://mirror.lab/git/openstack/p");
    assert.equal(source.location, "https://***@mirror.lab/git/openstack/p");
    assert.ok(source.secrets.includes("m1rr0r"));
    assert.ok(!JSON.stringify({ ...source, auth: undefined, secrets: undefined }).includes("m1rr0r"));
  });

  it("one cache key per source and credentials: a clone made with credentials never serves a request without them", () => {
    const lab = access({ credentials: [{ prefix: "https://host/", username: "a", password: "b" }] });
    assert.equal(resolveSource("p", "https://a:b@host/p", access()).key, resolveSource("q", "https://host/p", lab).key);
    assert.notEqual(resolveSource("p", "https://a:b@host/p", access()).key, resolveSource("p", "https://host/p", access()).key);
    assert.notEqual(resolveSource("p", "https://host/p", access()).key, resolveSource("p", "https://host/q", access()).key);
  });

  for (const [url, pattern] of [
    ["git://git.openstack.org/openstack/p", /the git:\/\/ transport is not supported/],
    ["ssh://git@host/p", /the ssh:\/\/ transport is not supported/],
    ["git@github.com:org/p.git", /ssh-style addresses/],
    ["relative/dir", /must be absolute/],
    ["file://otherhost/srv/p", /must name a local path/],
    ["https://host/p ; rm -rf /", /spaces or control characters/],
    ["/srv/p\u0000/x", /spaces or control characters/],
    ["https://", /cannot parse|names no host/],
  ] as const) {
    it(`refuses ${JSON.stringify(url)} with PLUGIN_URL naming the plugin and URL`, () => {
      assert.throws(() => resolveSource("p", url, access()), (err: unknown) => {
        assert.ok(err instanceof PluginUrlError);
        assert.equal(err.code, ErrorCode.PluginUrl);
        assert.ok(err.message.startsWith(`plugin p (${redactUrl(url)}): `), err.message);
        assert.match(err.message, pattern);
        return true;
      });
    });
  }

  it("refuses a transport the lab does not allow, even after a mirror rewrite", () => {
    const lab = access({ allowSchemes: ["https"], mirrors: [{ prefix: "https://opendev.org/", replace: "/srv/mirror/" }] });
    assert.throws(() => resolveSource("p", "http://host/p", lab), /http:\/\/ sources are not allowed in this lab \(allowed: https\)/);
    assert.throws(() => resolveSource("p", "https://opendev.org/p", lab), /local path sources are not allowed.*mirrored to \/srv\/mirror\/p/);
  });
});

describe("stripCredentials / redact - credentials never shown", () => {
  it("removes user:password@ from URLs and every known secret from text", () => {
    assert.equal(stripCredentials("https://u:p@h/x"), "https://h/x");
    assert.equal(stripCredentials("/srv/a@b:c"), "/srv/a@b:c");
    assert.equal(redact("failed https://u:hunter2@h/x with hunter2 and hunter2", ["hunter2"]), "failed https://***@h/x with *** and ***");
    assert.equal(redact("see http://bot:x@h/a and https://u@h/b", []), "see http://***@h/a and https://***@h/b");
  });
});
