// cli-table3 with natlens's defaults: no colours when the output is not a terminal, words wrapped to the width.
import Table from 'cli-table3'

export function makeTable(head: string[], colWidths?: number[]): Table.Table {
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR
  return new Table({
    head,
    style: { head: color ? ['cyan'] : [], border: color ? ['grey'] : [], compact: false },
    wordWrap: true,
    wrapOnWordBoundary: false,
    ...(colWidths ? { colWidths } : {}),
  })
}
