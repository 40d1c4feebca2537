// Reads a bundle in any form (natlens directory or .tar.gz, the EKS log collector's tarball, loose files) into NodeState.
import type { NodeState, SourceKind } from '../model/node-state.js'

export interface LoadOptions {
  /** `--file KIND=PATH`: which artifact to use when two give the same source. */
  readonly prefer?: ReadonlyMap<SourceKind, string>
}

export async function loadNodeState(inputs: readonly string[], options: LoadOptions = {}): Promise<NodeState> {
  void inputs; void options
  throw new Error('loadNodeState: not implemented yet')
}
