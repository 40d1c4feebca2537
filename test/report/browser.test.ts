// The HTML report in a real browser: Debian's Chromium, headless, started with the flags that keep it off the network,
// opens the page from a file:// URL. The page must render (title, summary, verdict table, a flow's steps on click),
// the packet graph must be visible, and the page must request nothing but itself. A full-page screenshot is kept in
// test/report/out/ for a person to look at. Skipped, with the reason, where /usr/bin/chromium is not installed
// (CI installs it: `apt-get install -y chromium`).
import { describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadNodeState } from '../../src/sources/load.js'
import { representativeFlows } from '../../src/engine/representative.js'
import { analyze } from '../../src/analyze/analyze.js'
import { makeReport } from '../../src/render/report/index.js'
import { EXAMPLES, REPO } from '../helpers.js'
import { readFixtures } from '../lab/lab-run.js'

// Debian's package; NATLENS_TEST_CHROMIUM names another build of Chromium.
const CHROMIUM = process.env.NATLENS_TEST_CHROMIUM ?? '/usr/bin/chromium'
const OUT = join(REPO, 'test', 'report', 'out')
const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install -y chromium)`
if (missing) console.log(`browser test skipped: ${missing}`)

/** Chromium's own traffic off: no QUIC, no component updates, no sync, no background requests, no first-run pages. */
const OFFLINE_FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
]

interface PageCheck { requests: string[]; consoleErrors: string[]; screenshot: string }

async function openInChromium(htmlPath: string, name: string, check: (page: import('playwright-core').Page) => Promise<void>): Promise<PageCheck> {
  const { chromium } = await import('playwright-core')
  const profile = mkdtempSync(join(tmpdir(), 'natlens-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: OFFLINE_FLAGS, viewport: { width: 1400, height: 1000 }, offline: true,
  })
  const requests: string[] = []
  const consoleErrors: string[] = []
  context.on('request', (r) => requests.push(r.url()))
  try {
    const page = await context.newPage()
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()) })
    page.on('pageerror', (e) => consoleErrors.push(e.message))
    await page.goto(pathToFileURL(htmlPath).href, { waitUntil: 'load' })
    await check(page)
    mkdirSync(OUT, { recursive: true })
    const screenshot = join(OUT, `${name}.png`)
    await page.screenshot({ path: screenshot, fullPage: true })
    return { requests, consoleErrors, screenshot }
  } finally {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  }
}

function expectOnlyItself(r: PageCheck, htmlPath: string): void {
  const self = pathToFileURL(htmlPath).href
  expect(r.requests.length).toBeGreaterThan(0)
  expect(r.requests.filter((u) => u !== self && !u.startsWith('data:'))).toEqual([])
  // A CSP violation (something tried to load) or a script error shows up as a console error.
  expect(r.consoleErrors).toEqual([])
  const png = readFileSync(r.screenshot)
  expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a')
  expect(statSync(r.screenshot).size).toBeGreaterThan(20_000)
}

describe.skipIf(missing !== undefined)('the HTML report in headless Chromium (Debian package)', () => {
  it('example node default-ipv4: renders, the graph is visible, a flow opens on click, nothing is requested from outside', async () => {
    const dir = join(EXAMPLES, 'default-ipv4')
    const state = await loadNodeState([dir])
    const { report, text } = await makeReport(state, { format: 'html', flows: representativeFlows(state), inputs: [dir] })
    mkdirSync(OUT, { recursive: true })
    const html = join(OUT, 'default-ipv4.html')
    writeFileSync(html, text)
    const r = await openInChromium(html, 'default-ipv4', async (page) => {
      expect(await page.title()).toBe('natlens report: node 10.0.3.45')
      expect(await page.locator('header h1').innerText()).toContain('node 10.0.3.45 on eth0')
      expect(await page.locator('.policy p').first().innerText()).toContain(`SNAT policy: ${state.derived.snatPolicy}`)
      // The verdict table: one row per flow.
      expect(await page.locator('#verdicts tbody tr').count()).toBe(report.flows.length)
      // The graph: an inline SVG with a real size, on screen once scrolled to, with the path drawn.
      const svg = page.locator('#graph figure svg')
      await svg.scrollIntoViewIfNeeded()
      expect(await svg.isVisible()).toBe(true)
      const box = (await svg.boundingBox())!
      expect(box.width).toBeGreaterThan(400)
      expect(box.height).toBeGreaterThan(400)
      expect(await page.locator('#graph svg [stroke="#c2185b"]').count()).toBeGreaterThan(10)
      // The highlighted flow's details are open; another opens on click and shows its steps with evidence.
      const hl = report.graph.highlightedFlow!
      expect(await page.locator(`#flow-${hl + 1}`).getAttribute('open')).toBe('')
      const other = report.flows.find((f) => f.index !== hl && f.verdict.decidedBy)!
      const steps = page.locator(`#flow-${other.index + 1} table.steps`)
      expect(await steps.isVisible()).toBe(false)
      await page.locator(`#flow-${other.index + 1} > summary`).click()
      expect(await steps.isVisible()).toBe(true)
      expect(await page.locator(`#flow-${other.index + 1} pre`).innerText()).toBe(other.verdict.decidedBy!.rule)
      // Fonts: only the system's (no @font-face, nothing loaded).
      expect(await page.evaluate('document.fonts.size')).toBe(0)
    })
    expectOnlyItself(r, html)
  })

  it('the checks catch a page that would fetch: a remote image is a recorded request, and under the report\'s CSP a console error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'natlens-fetch-'))
    const bare = join(dir, 'bare.html')
    writeFileSync(bare, '<!doctype html><title>x</title><p>x</p><img src="http://192.0.2.1/pixel.png">')
    const r1 = await openInChromium(bare, 'control-bare', async () => {})
    expect(r1.requests).toContain('http://192.0.2.1/pixel.png')
    const csp = join(dir, 'csp.html')
    const head = /<head>[\s\S]*?<style>/.exec((await makeReport(await loadNodeState([join(REPO, 'fixtures', 'example-node')]), { format: 'html', flows: [], inputs: [] })).text)![0]
    writeFileSync(csp, `<!doctype html><html lang="en">${head}</style></head><body><p>x</p><img src="http://192.0.2.1/pixel.png"></body></html>`)
    const r2 = await openInChromium(csp, 'control-csp', async () => {})
    // Chromium's wording changed over the years: "Refused to load the image …" / "Loading the image … violates …".
    expect(r2.consoleErrors.join('\n')).toMatch(/(Refused to load|Loading) the image 'http:\/\/192\.0\.2\.1\/pixel\.png'.*Content Security Policy/)
    // The blocked load is still reported as a request: either check alone catches it.
    expect(r2.requests).toContain('http://192.0.2.1/pixel.png')
    for (const f of ['control-bare.png', 'control-csp.png']) rmSync(join(OUT, f), { force: true })
    rmSync(dir, { recursive: true, force: true })
  })

  it('lab scenario v4kp with its capture: the observed-vs-predicted table and the DNAT branches render, nothing is requested', async () => {
    const run = readFixtures().find((x) => x.scenario === 'v4kp')!
    const state = await loadNodeState([run.bundleDir])
    const analysis = await analyze(state, [run.pcap])
    const flowsFile = JSON.parse(readFileSync(join(run.bundleDir, '..', 'observations.json'), 'utf8')) as { flows: { name: string }[] }
    expect(flowsFile.flows.length).toBeGreaterThan(0)
    const { report, text } = await makeReport(state, { format: 'html', flows: representativeFlows(state), inputs: [run.bundleDir], captures: [run.pcap], analysis })
    const html = join(OUT, 'v4kp.html')
    writeFileSync(html, text)
    const r = await openInChromium(html, 'v4kp', async (page) => {
      expect(await page.locator('#observed tbody tr').count()).toBe(analysis.flows.length)
      expect(await page.locator('#observed').innerText()).toContain(`${analysis.agreeing} connection`)
      const svg = page.locator('#graph figure svg')
      await svg.scrollIntoViewIfNeeded()
      expect(await svg.isVisible()).toBe(true)
      expect(report.summary.disagreements).toBe(analysis.disagreeing)
    })
    expectOnlyItself(r, html)
  })
})
