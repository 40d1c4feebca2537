// oclif's explicit command discovery: one import per command, so a bundler sees every command (single executable).
import Explain from './explain.js'
import Inspect from './inspect.js'
import Analyze from './analyze.js'
import Doctor from './doctor.js'
import Whatif from './whatif.js'

export const COMMANDS = {
  explain: Explain,
  inspect: Inspect,
  analyze: Analyze,
  flows: (await import('./flows.js')).default,
  collect: (await import('./collect.js')).default,
  'collector-script': (await import('./collector-script.js')).default,
  doctor: Doctor,
  whatif: Whatif,
}
