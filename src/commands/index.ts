// oclif's explicit command discovery: one import per command, so a bundler sees every command (single executable).
// Static imports only: the single executable is one CommonJS script, which cannot hold a top-level await.
import Explain from './explain.js'
import Inspect from './inspect.js'
import Analyze from './analyze.js'
import Flows from './flows.js'
import Collect from './collect.js'
import CollectorScript from './collector-script.js'
import Report from './report.js'
import Graph from './graph.js'
import Doctor from './doctor.js'
import Whatif from './whatif.js'

export const COMMANDS = {
  explain: Explain,
  inspect: Inspect,
  analyze: Analyze,
  flows: Flows,
  collect: Collect,
  'collector-script': CollectorScript,
  report: Report,
  graph: Graph,
  doctor: Doctor,
  whatif: Whatif,
}
