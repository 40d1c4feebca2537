// Shared by the report tests: the report's JSON Schema (with the explain and inspect schemas it refers to), and the
// check that an HTML page references nothing it would have to fetch.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect } from 'vitest'
import AjvModule from 'ajv'
import { REPO } from '../helpers.js'

export async function reportSchema(): Promise<((d: unknown) => boolean) & { errors?: unknown }> {
  const Ajv = (AjvModule as unknown as { default: typeof AjvModule }).default ?? AjvModule
  const ajv = new (Ajv as unknown as new (o: object) => { addSchema: (s: object) => void; compile: (s: object) => ((d: unknown) => boolean) & { errors?: unknown } })({ allErrors: true, strict: false })
  for (const f of ['explain.schema.json', 'inspect.schema.json']) ajv.addSchema(JSON.parse(readFileSync(join(REPO, 'schemas', f), 'utf8')))
  return ajv.compile(JSON.parse(readFileSync(join(REPO, 'schemas', 'report.schema.json'), 'utf8')))
}

/** No element that would load something: scripts, links, images, frames, CSS urls, and no http(s) URL but SVG's namespaces. */
export function noExternalReferences(html: string): void {
  expect(html).not.toMatch(/<script|<link|<img|<iframe|<object|<embed|@import|url\(/i)
  const urls = html.match(/https?:\/\/[^\s"'<>)]+/g) ?? []
  expect(urls.filter((u) => !/^http:\/\/www\.w3\.org\/(2000\/svg|1999\/xlink)$/.test(u))).toEqual([])
  expect(html).toContain('Content-Security-Policy" content="default-src \'none\'')
}

