// A stand-in for what a worker node answers on HTTP, so the collector's reads are tested without contacting IMDS:
// IMDSv2 (a token from PUT /latest/api/token, required on every GET), ipamd introspection (/v1/...) and kube-proxy's
// /proxyMode, all on one 127.0.0.1 port. Imported by tests, or run inside a lab namespace:
//   node fake-endpoints.mjs CONFIG.json READY_FILE LIFETIME_MS
// CONFIG: { imds?: { "<path below meta-data/>": "value" }, ipamd?: { "<name>": <json> }, proxyMode?: "iptables",
//           blackhole?: true (accept connections, never answer) }
import http from 'node:http'
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const FAKE_TOKEN = 'AQAEAFakeTokenForNatlensTests0000000000000000000000000000000000=='

export function startFakeEndpoints(config) {
  const requests = []
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: { ...req.headers } })
    if (config.blackhole) return // never answers
    const send = (status, body, type = 'text/plain') => { res.writeHead(status, { 'content-type': type }); res.end(body) }
    const url = req.url ?? '/'
    if (url === '/latest/api/token') {
      if (req.method !== 'PUT' || !req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return send(400, 'bad token request')
      return config.imds ? send(200, FAKE_TOKEN) : send(404, '')
    }
    if (url.startsWith('/latest/meta-data/')) {
      if (!config.imds) return send(404, '')
      if (req.headers['x-aws-ec2-metadata-token'] !== FAKE_TOKEN) return send(401, 'Unauthorized')
      const path = url.slice('/latest/meta-data/'.length)
      const value = config.imds[path]
      return value === undefined ? send(404, 'Not Found') : send(200, value)
    }
    if (url.startsWith('/v1/')) {
      const name = url.slice(4)
      const value = config.ipamd?.[name]
      return value === undefined ? send(404, '404 page not found') : send(200, JSON.stringify(value), 'application/json')
    }
    if (url === '/proxyMode' && config.proxyMode) return send(200, config.proxyMode)
    send(404, 'not found')
  })
  return new Promise((resolve) => {
    server.listen(config.port ?? 0, '127.0.0.1', () => {
      resolve({ port: server.address().port, url: `http://127.0.0.1:${server.address().port}`, requests, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()) }) })
    })
  })
}

/** IMDS answers for a node: primary MAC and address, and per-interface VPC CIDRs (one per line, as IMDS lists them). */
export function imdsFor({ mac, localIpv4, vpcCidrs, instanceId = 'i-0123456789abcdef0', deviceNumber = '0', extraMacs = [] }) {
  const macs = [mac, ...extraMacs.map((m) => m.mac)]
  const out = {
    mac, 'local-ipv4': localIpv4, 'instance-id': instanceId, 'instance-type': 'm5.large', 'local-hostname': `ip-${localIpv4.replace(/\./g, '-')}.us-west-2.compute.internal`,
    'placement/availability-zone': 'us-west-2a', 'network/interfaces/macs/': macs.map((m) => `${m}/`).join('\n'),
  }
  const per = (m, ip, dev) => {
    out[`network/interfaces/macs/${m}/device-number`] = dev
    out[`network/interfaces/macs/${m}/local-ipv4s`] = ip
    out[`network/interfaces/macs/${m}/vpc-ipv4-cidr-blocks`] = vpcCidrs.join('\n')
    out[`network/interfaces/macs/${m}/subnet-id`] = 'subnet-0a1b2c3d4e5f60789'
    out[`network/interfaces/macs/${m}/vpc-id`] = 'vpc-0fedcba9876543210'
  }
  per(mac, localIpv4, deviceNumber)
  for (const e of extraMacs) per(e.mac, e.ip, e.deviceNumber)
  return out
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8'))
  const f = await startFakeEndpoints(config)
  writeFileSync(process.argv[3], String(f.port))
  setTimeout(() => process.exit(0), Number(process.argv[4] ?? 60_000)).unref?.()
  // Kept alive by the server; the timer above bounds its life even if the test dies.
  setTimeout(() => process.exit(0), Number(process.argv[4] ?? 60_000))
}
