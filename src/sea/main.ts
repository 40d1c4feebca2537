// The single executable's entry. scripts/package.mjs bundles this file with esbuild into one CommonJS script (the
// only kind Node 20's single executable applications run) and injects it into a Node binary. Inside, there is no
// package.json and no dist/: oclif gets the package description and the command classes from the bundle itself.
// (tsc also compiles this file into dist/sea/main.js; nothing runs that copy.)
import { dirname, join } from 'node:path'
import { Config, Plugin, type Command, type Interfaces } from '@oclif/core'
import { COMMANDS } from '../commands/index.js'
// The autocomplete plugin's commands, by file: the package exports only its (empty) index.
import AutocompleteIndex from '../../node_modules/@oclif/plugin-autocomplete/lib/commands/autocomplete/index.js'
import AutocompleteCreate from '../../node_modules/@oclif/plugin-autocomplete/lib/commands/autocomplete/create.js'
import AutocompleteScript from '../../node_modules/@oclif/plugin-autocomplete/lib/commands/autocomplete/script.js'
import { start, versionWithCommit } from './start.js'

// Replaced by scripts/package.mjs (esbuild `define`) with natlens's and the autocomplete plugin's package.json and
// the commit being packaged.
declare const NATLENS_PACKAGE: Interfaces.PJSON
declare const AUTOCOMPLETE_PACKAGE: Interfaces.PJSON
declare const NATLENS_COMMIT: string

type CommandTable = Readonly<Record<string, Command.Class>>

/**
 * An oclif plugin whose commands are already in memory. @oclif/core 4 loads an "explicit" command list by importing
 * its target file and keeping the export in the plugin's command cache (Plugin.loadCommandsFromTarget returns that
 * cache when it is set); there is no file here, so the cache is filled with the bundled classes before load().
 * The count check turns a future @oclif/core that loads commands differently into a clear failure of the smoke test.
 */
export async function embeddedPlugin(pjson: Interfaces.PJSON, root: string, commands: CommandTable): Promise<Plugin> {
  const oclif = { ...pjson.oclif, commands: { strategy: 'explicit' as const, target: '(bundled)', identifier: 'COMMANDS' }, hooks: {}, plugins: [] }
  const plugin = new Plugin({ root, pjson: { ...pjson, oclif }, isRoot: true, ignoreManifest: true, type: 'core' })
  Object.assign(plugin, { commandCache: commands })
  await plugin.load()
  if (plugin.commands.length !== Object.keys(commands).length) {
    throw new Error(`${pjson.name}: ${plugin.commands.length} of ${Object.keys(commands).length} bundled commands registered (has @oclif/core changed how it loads commands?)`)
  }
  return plugin
}

/** oclif's configuration from the bundle: natlens's commands and the autocomplete plugin's, no plugin search on disk. */
export async function bundledConfig(version: string): Promise<Config> {
  const root = dirname(process.execPath)
  const natlens = await embeddedPlugin(NATLENS_PACKAGE, root, COMMANDS as unknown as CommandTable)
  const autocomplete = await embeddedPlugin(AUTOCOMPLETE_PACKAGE, join(root, '(bundled)', AUTOCOMPLETE_PACKAGE.name), {
    autocomplete: AutocompleteIndex,
    'autocomplete:create': AutocompleteCreate,
    'autocomplete:script': AutocompleteScript,
  } as unknown as CommandTable)
  const plugins = new Map<string, Plugin>([[natlens.name, natlens], [autocomplete.name, autocomplete]])
  return Config.load({ root, pjson: natlens.pjson, plugins, version, userPlugins: false, devPlugins: false, jitPlugins: false })
}

void start({ version: versionWithCommit(NATLENS_PACKAGE.version, NATLENS_COMMIT), loadConfig: bundledConfig })
