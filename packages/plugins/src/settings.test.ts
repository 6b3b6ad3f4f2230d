import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePluginSettings, requirementsOf } from "./settings.js";

describe("parsePluginSettings - define_plugin and plugin_requires as DevStack's tools read them", () => {
  it("reads define_plugin and every plugin_requires line in file order", () => {
    const text = [
      "# settings for ceph",
      "define_plugin ceph",
      "plugin_requires ceph container",
      "CEPH_X=${CEPH_X:-1}",
      "plugin_requires ceph\tkafka",
      "enable_service ceph",
    ].join("\n");
    assert.deepEqual(parsePluginSettings(text), {
      defines: "ceph",
      requires: [
        { plugin: "ceph", requires: "container" },
        { plugin: "ceph", requires: "kafka" },
      ],
    });
  });

  it("counts only lines starting in column 0: indented, commented or conditional lines are ignored", () => {
    const text = [
      "  define_plugin indented",
      "#define_plugin commented",
      "if true; then plugin_requires a b; fi",
      "\tplugin_requires a c",
      "plugin_requires a",
    ].join("\n");
    assert.deepEqual(parsePluginSettings(text), { defines: null, requires: [] });
  });

  it("the last define_plugin wins, and CRLF line ends do not leak into names", () => {
    const text = "define_plugin first\r\ndefine_plugin second\r\nplugin_requires second other\r\n";
    assert.deepEqual(parsePluginSettings(text), {
      defines: "second",
      requires: [{ plugin: "second", requires: "other" }],
    });
  });

  it("a plugin_requires line does not continue onto the next line", () => {
    assert.deepEqual(parsePluginSettings("plugin_requires a\nb\n").requires, []);
  });
});

describe("requirementsOf - which plugin_requires lines are about the plugin itself", () => {
  it("keeps lines naming the defined name or the enabled name, once each, and drops lines about other plugins", () => {
    const settings = parsePluginSettings(
      ["define_plugin ceph", "plugin_requires ceph a", "plugin_requires other b", "plugin_requires devstack-plugin-ceph c", "plugin_requires ceph a"].join("\n"),
    );
    assert.deepEqual(requirementsOf(settings, "devstack-plugin-ceph"), ["a", "c"]);
  });
});
