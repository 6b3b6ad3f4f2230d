import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hasUrlCredentials, redactUrl } from "./redact.js";

describe("redactUrl - no URL credentials in anything shown or stored", () => {
  it("replaces user:password@ and a lone user@ by ***@, in every URL of a text", () => {
    assert.equal(redactUrl("https://bot:Pw@git.corp/team/p.git"), "https://***@git.corp/team/p.git");
    assert.equal(redactUrl("http://ghp_token@github.example/x"), "http://***@github.example/x");
    assert.equal(
      redactUrl("fetching http://u:p%40ss@h:8080/a then https://v:w@k/b failed"),
      "fetching http://***@h:8080/a then https://***@k/b failed",
    );
  });

  it("leaves URLs without userinfo, local paths and an @ after the host alone", () => {
    for (const text of ["https://opendev.org/openstack/heat", "/srv/git/a@b:c", "file:///srv/p.git", "https://h/x?mail=a@b", "no url here"]) {
      assert.equal(redactUrl(text), text);
      assert.equal(hasUrlCredentials(text), false, text);
    }
    assert.equal(hasUrlCredentials("x https://u:p@h/y"), true);
    assert.equal(redactUrl(redactUrl("https://u:p@h/y")), "https://***@h/y");
  });
});
