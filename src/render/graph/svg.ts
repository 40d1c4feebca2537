// SVG from dot with Graphviz compiled to WebAssembly (@hpcc-js/wasm-graphviz): the WASM is inside the package's
// JavaScript, so nothing is downloaded when natlens runs, and no `dot` binary is needed on the machine.
import type { Graphviz } from '@hpcc-js/wasm-graphviz'

// Loaded on first use: the package embeds its WASM (about 1 MB of JavaScript), which other commands need not parse.
let graphviz: Promise<Graphviz> | undefined

/** Lays out and draws a dot graph; the result is a standalone `<svg>` element (no XML prolog, no DOCTYPE). */
export async function dotToSvg(dot: string): Promise<string> {
  graphviz ??= import('@hpcc-js/wasm-graphviz').then((m) => m.Graphviz.load())
  const svg = (await graphviz).dot(dot, 'svg')
  // The prolog and the DOCTYPE (which names a DTD by URL) have no place inside an HTML page.
  return svg.slice(svg.indexOf('<svg'))
}
