import { PluginOrderError, type MissingRequirement } from "./errors.js";

/** A plugin as ordering sees it: its enable_plugin name and the names it requires. */
export interface OrderablePlugin {
  name: string;
  requires: readonly string[];
}

/**
 * How a lab orders its plugins. `registration` is DevStack's behaviour: the order of the
 * enable_plugin lines, requirements ignored. `requires` puts every plugin after the
 * plugins it requires.
 */
export type PluginOrderMode = "registration" | "requires";

/**
 * The order plugins run in, as their names.
 *
 * `registration` returns the input order. `requires` is a topological sort that is
 * stable on registration order: plugins are taken in registration order, and each is
 * preceded by the plugins it requires (transitively, in the order its requirements are
 * listed) that have not been placed yet, so a plugin moves only when a requirement
 * forces it. A chain a -> b -> c registered as a, b, c runs c, b, a.
 *
 * @throws PluginOrderError for a name enabled twice (either mode), and in `requires`
 *   mode for a requirement that is not enabled or a cycle, naming the plugins.
 */
export function orderPlugins(plugins: ReadonlyArray<OrderablePlugin>, mode: PluginOrderMode): string[] {
  const byName = indexByName(plugins);
  if (mode === "registration") return plugins.map((p) => p.name);

  const missing = missingRequirements(plugins, byName);
  if (missing.length > 0) {
    const list = missing.map((m) => `${m.plugin} requires ${m.requires}`).join("; ");
    throw new PluginOrderError(`cannot order plugins: ${list}, which ${missing.length === 1 ? "is" : "are"} not enabled`, {
      missing,
    });
  }

  const done = new Set<string>();
  const path: string[] = [];
  const out: string[] = [];
  const visit = (name: string): void => {
    path.push(name);
    for (const dep of byName.get(name)?.requires ?? []) {
      if (done.has(dep)) continue;
      const at = path.indexOf(dep);
      if (at >= 0) {
        const cycle = [...path.slice(at), dep];
        throw new PluginOrderError(`cannot order plugins: their requirements form a cycle: ${cycle.join(" -> ")}`, { cycle });
      }
      visit(dep);
    }
    path.pop();
    done.add(name);
    out.push(name);
  };
  for (const plugin of plugins) if (!done.has(plugin.name)) visit(plugin.name);
  return out;
}

/**
 * What is wrong with the lab's requirements when plugins run in registration order,
 * which DevStack does silently: a requirement that is not enabled, or one enabled after
 * the plugin that needs it. One sentence per problem, naming both plugins; empty when
 * registration order already satisfies every requirement.
 */
export function requirementWarnings(plugins: ReadonlyArray<OrderablePlugin>): string[] {
  const position = new Map(plugins.map((p, i) => [p.name, i] as const));
  const warnings: string[] = [];
  plugins.forEach((plugin, i) => {
    for (const dep of plugin.requires) {
      const at = position.get(dep);
      if (at === undefined) warnings.push(`plugin ${plugin.name} requires ${dep}, which is not enabled`);
      else if (at >= i && dep !== plugin.name)
        warnings.push(`plugin ${plugin.name} requires ${dep}, which is enabled after it and so runs after it in registration order`);
    }
  });
  return warnings;
}

function indexByName(plugins: ReadonlyArray<OrderablePlugin>): Map<string, OrderablePlugin> {
  const byName = new Map<string, OrderablePlugin>();
  const duplicates: string[] = [];
  for (const plugin of plugins) {
    if (byName.has(plugin.name)) {
      if (!duplicates.includes(plugin.name)) duplicates.push(plugin.name);
    } else byName.set(plugin.name, plugin);
  }
  if (duplicates.length > 0) {
    throw new PluginOrderError(`plugin ${duplicates.join(", ")} enabled twice`, { duplicates });
  }
  return byName;
}

function missingRequirements(
  plugins: ReadonlyArray<OrderablePlugin>,
  byName: ReadonlyMap<string, OrderablePlugin>,
): MissingRequirement[] {
  const missing: MissingRequirement[] = [];
  for (const plugin of plugins) {
    for (const dep of plugin.requires) if (!byName.has(dep)) missing.push({ plugin: plugin.name, requires: dep });
  }
  return missing;
}
