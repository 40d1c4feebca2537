// The collector's HTTP reads: ipamd introspection and kube-proxy's /proxyMode on the node's loopback, and IMDSv2.
// Node's own http client, short timeouts, GETs (and IMDSv2's token PUT, which only opens a session), no redirects,
// and only to the endpoints the plan names: loopback, or the IMDS link-local addresses.
import http from 'node:http'
import { readFileSync } from 'node:fs'
import type { ImdsItem } from './plan.js'

export interface HttpAnswer {
  readonly status?: number
  readonly body: Buffer
  /** Why there is no answer (connection refused, timeout), or why the answer is not used (HTTP 404). */
  readonly error?: string
  readonly durationMs: number
}

const MAX_BODY = 32 * 1024 * 1024

/** One request, bounded as a whole (connect, headers and body) by `timeoutMs`. */
export function httpRequest(method: 'GET' | 'PUT', url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const started = performance.now()
  return new Promise((resolve) => {
    let settled = false
    const done = (a: Omit<HttpAnswer, 'durationMs'>) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ ...a, durationMs: Math.round(performance.now() - started) })
    }
    let req: http.ClientRequest
    try {
      req = http.request(url, { method, headers: { ...headers, connection: 'close' }, agent: false })
    } catch (e) {
      resolve({ body: Buffer.alloc(0), error: (e as Error).message, durationMs: 0 })
      return
    }
    const timer = setTimeout(() => {
      done({ body: Buffer.alloc(0), error: `no answer within ${timeoutMs} ms` })
      req.destroy()
    }, timeoutMs)
    req.on('error', (e: NodeJS.ErrnoException) => done({ body: Buffer.alloc(0), error: e.code === 'ECONNREFUSED' ? `connection refused (${e.message.replace(/^connect ECONNREFUSED /, '')})` : e.message }))
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      let have = 0
      res.on('data', (c: Buffer) => {
        have += c.length
        if (have > MAX_BODY) { done({ status: res.statusCode, body: Buffer.alloc(0), error: `answer larger than ${MAX_BODY} bytes` }); req.destroy(); return }
        chunks.push(c)
      })
      res.on('end', () => {
        const status = res.statusCode ?? 0
        done({ status, body: Buffer.concat(chunks), ...(status < 200 || status > 299 ? { error: `HTTP ${status}` } : {}) })
      })
      res.on('error', (e) => done({ status: res.statusCode, body: Buffer.alloc(0), error: e.message }))
    })
    req.end()
  })
}

/** What IMDS answered: `path: value` lines (multi-line values continue on the next lines), as parseImds reads them. */
export interface ImdsAnswer {
  readonly text?: string
  readonly error?: string
  readonly requests: number
  readonly durationMs: number
}

export type Requester = typeof httpRequest

/**
 * IMDSv2: a session token first (a short TTL; the token is used for these requests only and written nowhere), then
 * the top-level paths and, for every MAC under network/interfaces/macs/, the interface's paths. A path IMDS does not
 * have (404: no IPv6 on this ENI) is left out.
 */
export async function readImds(base: string, item: Pick<ImdsItem, 'paths' | 'perInterface' | 'timeoutMs'>, request: Requester = httpRequest): Promise<ImdsAnswer> {
  const started = performance.now()
  const token = await request('PUT', `${base}/latest/api/token`, item.timeoutMs, { 'X-aws-ec2-metadata-token-ttl-seconds': '60' })
  let requests = 1
  const elapsed = () => Math.round(performance.now() - started)
  if (token.error || token.body.length === 0) return { error: `no IMDSv2 token from ${base} (${token.error ?? 'empty answer'}): not on EC2, IMDS disabled, or the hop limit is 1 and this runs in a container`, requests, durationMs: elapsed() }
  const headers = { 'X-aws-ec2-metadata-token': token.body.toString('utf8').trim() }
  const get = async (path: string): Promise<string | undefined> => {
    requests++
    const a = await request('GET', `${base}/latest/meta-data/${path}`, item.timeoutMs, headers)
    return a.error ? undefined : a.body.toString('utf8').replace(/\n+$/, '')
  }
  const [top, macList] = await Promise.all([Promise.all(item.paths.map(get)), get('network/interfaces/macs/')])
  const lines: string[] = []
  item.paths.forEach((p, i) => { if (top[i] !== undefined) lines.push(`${p}: ${top[i]}`) })
  const macs = (macList ?? '').split('\n').map((l) => l.trim().replace(/\/$/, '')).filter((m) => /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(m))
  const perMac = await Promise.all(macs.map((mac) => Promise.all(item.perInterface.map((p) => get(`network/interfaces/macs/${mac}/${p}`)))))
  macs.forEach((mac, m) => item.perInterface.forEach((p, i) => {
    const v = perMac[m]![i]
    if (v !== undefined) lines.push(`network/interfaces/macs/${mac}/${p}: ${v}`)
  }))
  if (lines.length === 0) return { error: 'IMDS gave a token but no metadata', requests, durationMs: elapsed() }
  return { text: lines.join('\n') + '\n', requests, durationMs: elapsed() }
}

/**
 * Whether this machine is an EC2 instance, from what the firmware tells the kernel (as cloud-init's ds-identify
 * does), so that IMDS is not asked at all elsewhere. `undefined` when the firmware says nothing readable.
 */
export function ec2Evidence(read: (path: string) => string | undefined = readSmall): { ec2: boolean | undefined; why: string } {
  const vendor = read('/sys/devices/virtual/dmi/id/sys_vendor')?.trim()
  const tag = read('/sys/devices/virtual/dmi/id/board_asset_tag')?.trim()
  const xen = read('/sys/hypervisor/uuid')?.trim()
  const uuid = read('/sys/devices/virtual/dmi/id/product_uuid')?.trim()
  if (vendor && /amazon/i.test(vendor)) return { ec2: true, why: `DMI sys_vendor is ${JSON.stringify(vendor)}` }
  if (tag && /^i-[0-9a-f]{8,17}$/.test(tag)) return { ec2: true, why: `DMI board_asset_tag is an instance id` }
  if (xen && /^ec2/i.test(xen)) return { ec2: true, why: '/sys/hypervisor/uuid starts with ec2 (Xen instance)' }
  if (uuid && /^ec2/i.test(uuid)) return { ec2: true, why: 'DMI product_uuid starts with ec2' }
  if (vendor) return { ec2: false, why: `DMI sys_vendor is ${JSON.stringify(vendor)}, not Amazon EC2` }
  return { ec2: undefined, why: 'the firmware does not say (no readable DMI)' }
}

function readSmall(path: string): string | undefined {
  try { return readFileSync(path, 'utf8').slice(0, 256) } catch { return undefined }
}

/** Endpoints may point only at the node itself or at IMDS: the collector sends nothing anywhere else. */
export function endpointProblem(url: string): string | undefined {
  let u: URL
  try { u = new URL(url) } catch { return `${url} is not a URL` }
  if (u.protocol !== 'http:') return `${url}: only http:// endpoints are read`
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) return `${url}: give only scheme, host and port`
  const host = u.hostname.replace(/^\[|\]$/g, '')
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost' || host === '169.254.169.254' || host === 'fd00:ec2::254') return undefined
  return `${url}: endpoints may only be on this node (127.0.0.0/8, ::1) or IMDS (169.254.169.254, fd00:ec2::254)`
}

/** One HTTP read of the plan, in the form the namespace child takes on stdin and gives back on stdout. */
export type HttpJob =
  | { readonly id: string; readonly kind: 'http'; readonly url: string; readonly timeoutMs: number }
  | { readonly id: string; readonly kind: 'imds'; readonly base: string; readonly paths: readonly string[]; readonly perInterface: readonly string[]; readonly timeoutMs: number }

export interface HttpJobResult {
  readonly id: string
  readonly status?: number
  /** base64 */
  readonly body?: string
  readonly error?: string
  readonly durationMs: number
  readonly requests: number
}

export async function runHttpJobs(jobs: readonly HttpJob[], request: Requester = httpRequest): Promise<HttpJobResult[]> {
  return Promise.all(jobs.map(async (j): Promise<HttpJobResult> => {
    if (j.kind === 'imds') {
      const a = await readImds(j.base, j, request)
      return { id: j.id, requests: a.requests, durationMs: a.durationMs, ...(a.text !== undefined ? { body: Buffer.from(a.text).toString('base64') } : {}), ...(a.error ? { error: a.error } : {}) }
    }
    const a = await request('GET', j.url, j.timeoutMs)
    return { id: j.id, requests: 1, durationMs: a.durationMs, ...(a.status !== undefined ? { status: a.status } : {}), ...(a.error ? { error: a.error } : { body: a.body.toString('base64') }) }
  }))
}
