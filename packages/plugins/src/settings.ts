/** One `plugin_requires <plugin> <requires>` line of a plugin's devstack/settings. */
export interface PluginRequirement {
  plugin: string;
  requires: string;
}

/** What a devstack/settings text declares about its plugin. */
export interface PluginSettingsDeclarations {
  /** The name of the last `define_plugin` line, or null when there is none. */
  defines: string | null;
  /** Every `plugin_requires` line, in file order. */
  requires: PluginRequirement[];
}

// The column-0 patterns DevStack's local.conf generator matches, applied line by line
// (devstack-semantics.md §1.9): indented or commented lines do not count.
const DEFINE = /^define_plugin\s+(\S+)/;
const REQUIRES = /^plugin_requires\s+(\S+)\s+(\S+)/;

/**
 * Reads the `define_plugin` and `plugin_requires` lines of a devstack/settings text the
 * way DevStack's tools read them: textually, column 0 only, nothing sourced. DevStack
 * itself makes both functions no-ops, so this data is advisory unless a lab opts into
 * dependency order. The last `define_plugin` wins.
 */
export function parsePluginSettings(text: string): PluginSettingsDeclarations {
  let defines: string | null = null;
  const requires: PluginRequirement[] = [];
  for (const line of text.split("\n")) {
    const define = DEFINE.exec(line);
    if (define) {
      defines = define[1] as string;
      continue;
    }
    const require = REQUIRES.exec(line);
    if (require) requires.push({ plugin: require[1] as string, requires: require[2] as string });
  }
  return { defines, requires };
}

/**
 * The plugins `name` requires, in file order and without repeats: the `plugin_requires`
 * lines whose first word is the plugin's `define_plugin` name or the name it was
 * enabled under. Lines about other plugins are ignored, as DevStack's generator does.
 */
export function requirementsOf(settings: PluginSettingsDeclarations, name: string): string[] {
  const self = new Set([name, ...(settings.defines === null ? [] : [settings.defines])]);
  const out: string[] = [];
  for (const line of settings.requires) {
    if (self.has(line.plugin) && !out.includes(line.requires)) out.push(line.requires);
  }
  return out;
}
