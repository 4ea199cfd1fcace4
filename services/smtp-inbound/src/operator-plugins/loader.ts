/**
 * Loads operators' SMTP plugins (API version 1, ./api.ts) from a directory: every `*.js`/`*.mjs`
 * file, in file-name order (prefix names with numbers to order them). A plugin that does not load
 * or does not match the contract stops the service at start, with the reason: running without a
 * policy the operator installed would be worse than not running.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HOOK_NAMES, PLUGIN_API_VERSION, type PostmeshSmtpPlugin } from './api.js';

export class PluginLoadError extends Error {
  override readonly name = 'PluginLoadError';
}

/** Checks a module's export against the contract; returns the plugin or throws why not. */
export function validatePlugin(candidate: unknown, file: string): PostmeshSmtpPlugin {
  const fail = (why: string): never => {
    throw new PluginLoadError(`SMTP plugin ${file}: ${why}`);
  };
  if (typeof candidate !== 'object' || candidate === null) return fail('exports no plugin object');
  const o = candidate as Record<string, unknown>;
  if (o.apiVersion !== PLUGIN_API_VERSION) {
    return fail(
      `apiVersion must be ${PLUGIN_API_VERSION} (this server speaks version ${PLUGIN_API_VERSION})`,
    );
  }
  if (typeof o.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(o.name)) {
    return fail('name must be 1-64 letters, digits, "-" or "_"');
  }
  if (typeof o.hooks !== 'object' || o.hooks === null) return fail('hooks must be an object');
  const hooks = o.hooks as Record<string, unknown>;
  for (const [key, value] of Object.entries(hooks)) {
    if (!(HOOK_NAMES as readonly string[]).includes(key)) {
      return fail(`unknown hook "${key}" (known: ${HOOK_NAMES.join(', ')})`);
    }
    if (typeof value !== 'function') return fail(`hook "${key}" is not a function`);
  }
  return candidate as PostmeshSmtpPlugin;
}

export async function loadPlugins(dir: string): Promise<PostmeshSmtpPlugin[]> {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.(m?js)$/.test(f))
      .sort();
  } catch (error) {
    throw new PluginLoadError(`SMTP plugin directory ${dir} cannot be read: ${(error as Error).message}`);
  }
  const plugins: PostmeshSmtpPlugin[] = [];
  const names = new Set<string>();
  for (const file of files) {
    const path = join(dir, file);
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    } catch (error) {
      throw new PluginLoadError(`SMTP plugin ${path} failed to load: ${(error as Error).message}`);
    }
    const plugin = validatePlugin(module.default ?? module, path);
    if (names.has(plugin.name)) throw new PluginLoadError(`SMTP plugin name "${plugin.name}" is used twice`);
    names.add(plugin.name);
    plugins.push(plugin);
  }
  return plugins;
}
