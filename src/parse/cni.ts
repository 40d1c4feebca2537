// The VPC CNI's own artefacts (../shared/docs/vpc-cni.md §8): ipamd introspection (`/v1/enis`, `/v1/eni-configs`,
// `/v1/networkutils-env-settings`, `/v1/ipamd-env-settings`), `/etc/cni/net.d/10-aws.conflist`, the ipamd checkpoint
// `/var/run/aws-node/ipam.json`, the aws-node container environment (`KEY=VALUE`, `docker inspect`, `ctr container info`,
// the EKS log collector's cni-configuration-variables-*), and IMDS answers.
// Only CNI setting names are kept from an environment: an allowlist, and never anything that looks like a credential.
import type { SourceRef } from '../model/evidence.js'
import { parseCidr, parseIp } from '../model/ip.js'
import type { IpamAllocation, IpamdEni, Setting, SourceKind } from '../model/node-state.js'
import { lines, type ParseContext } from './context.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }
type J = unknown
const isObj = (v: J): v is Record<string, J> => typeof v === 'object' && v !== null && !Array.isArray(v)

function parseJson(text: string, ctx: ParseContext, code: string): J | undefined {
  try {
    return JSON.parse(text)
  } catch (e) {
    ctx.sink.error(code, `not valid JSON: ${(e as Error).message}`)
    return undefined
  }
}

/** The line where `"key"` first appears (1-based), so a JSON fact points at its line; 0 when not found. */
function lineOfKey(text: string, key: string, from = 0): number {
  const at = text.indexOf(JSON.stringify(key), from)
  if (at < 0) return 0
  let n = 1
  for (let i = 0; i < at; i++) if (text.charCodeAt(i) === 10) n++
  return n
}

function refFor(ctx: ParseContext, text: string, key: string, excerpt: string): SourceRef {
  return { artifact: ctx.artifact, line: lineOfKey(text, key), text: excerpt.length > 300 ? `${excerpt.slice(0, 297)}...` : excerpt }
}

function settingValue(v: J): string {
  if (v === null || v === undefined) return ''
  if (Array.isArray(v)) return v.map((x) => settingValue(x)).join(',')
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

// ---------------------------------------------------------------------------------------------------------------
// ipamd /v1/enis

/** `/v1/enis`: v1.20+ a map keyed by network card (`{"0": {TotalIPs, AssignedIPs, ENIs}}`), before that one ENIInfos. */
export function parseIpamdEnis(text: string, ctx: ParseContext): IpamdEni[] {
  const doc = parseJson(text, ctx, 'cni.bad-json')
  if (!isObj(doc)) {
    if (doc !== undefined) ctx.sink.error('cni.bad-enis', '/v1/enis answers with a JSON object')
    return []
  }
  const infos: Record<string, J>[] = []
  if (isObj(doc['ENIs'])) infos.push(doc)
  else for (const [k, v] of Object.entries(doc)) if (/^\d+$/.test(k) && isObj(v) && isObj(v['ENIs'])) infos.push(v)
  if (infos.length === 0) { ctx.sink.error('cni.bad-enis', 'no "ENIs" object: not an ipamd /v1/enis answer'); return [] }
  const out: IpamdEni[] = []
  for (const info of infos) {
    for (const [id, raw] of Object.entries(info['ENIs'] as Record<string, J>)) {
      if (!isObj(raw)) continue
      const addresses: Mutable<IpamdEni>['addresses'] = []
      const seen = new Set<string>()
      const addAddress = (a: J): void => {
        if (!isObj(a) || typeof a['Address'] !== 'string') return
        const ip = parseIp(a['Address'])
        if (!ip || seen.has(a['Address'])) return
        seen.add(a['Address'])
        const meta = isObj(a['IPAMMetadata']) ? a['IPAMMetadata'] : {}
        const pod = typeof meta['k8sPodName'] === 'string' && meta['k8sPodName'] !== '' ? meta['k8sPodName'] : undefined
        const namespace = typeof meta['k8sPodNamespace'] === 'string' && meta['k8sPodNamespace'] !== '' ? meta['k8sPodNamespace'] : undefined
        ;(addresses as { address: typeof ip; pod?: string; namespace?: string }[]).push({ address: ip, ...(pod ? { pod } : {}), ...(namespace ? { namespace } : {}) })
      }
      for (const field of ['AvailableIPv4Cidrs', 'IPv6Cidrs']) {
        const cidrs = raw[field]
        if (!isObj(cidrs)) continue
        for (const c of Object.values(cidrs)) if (isObj(c) && isObj(c['IPAddresses'])) for (const a of Object.values(c['IPAddresses'])) addAddress(a)
      }
      // Releases before prefix delegation (≤ v1.8) listed `IPv4Addresses` directly.
      if (isObj(raw['IPv4Addresses'])) for (const a of Object.values(raw['IPv4Addresses'])) addAddress(a)
      const eni: Mutable<IpamdEni> = {
        id: typeof raw['ID'] === 'string' ? raw['ID'] : id,
        primary: raw['IsPrimary'] === true,
        trunk: raw['IsTrunk'] === true,
        addresses,
        ref: refFor(ctx, text, id, JSON.stringify({ ID: raw['ID'] ?? id, IsPrimary: raw['IsPrimary'], IsTrunk: raw['IsTrunk'], DeviceNumber: raw['DeviceNumber'], RouteTableID: raw['RouteTableID'] })),
      }
      if (typeof raw['DeviceNumber'] === 'number') eni.deviceNumber = raw['DeviceNumber']
      if (typeof raw['RouteTableID'] === 'number') eni.routeTableId = raw['RouteTableID']
      out.push(eni)
    }
  }
  return out
}

/** `/v1/eni-configs` (custom networking): `eni-config.<name>.subnet`, `.securityGroups`, and `eni-config.MyENI`. */
export function parseEniConfigs(text: string, ctx: ParseContext): Setting[] {
  const doc = parseJson(text, ctx, 'cni.bad-json')
  if (!isObj(doc)) return []
  const out: Setting[] = []
  if (typeof doc['MyENI'] === 'string') out.push({ name: 'eni-config.MyENI', value: doc['MyENI'], ref: refFor(ctx, text, 'MyENI', `"MyENI":${JSON.stringify(doc['MyENI'])}`) })
  if (isObj(doc['ENI'])) {
    for (const [name, spec] of Object.entries(doc['ENI'])) {
      if (!isObj(spec)) continue
      for (const [k, v] of Object.entries(spec)) out.push({ name: `eni-config.${name}.${k}`, value: settingValue(v), ref: refFor(ctx, text, name, `${name}: ${JSON.stringify({ [k]: v })}`) })
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Settings

/** ipamd prints RANDOMIZESNAT as the Go enum it parsed (networkutils: 0 none, 1 hashrandom, 2 prng). */
const RANDOMIZE_SNAT = ['none', 'hashrandom', 'prng']

/** `/v1/networkutils-env-settings` and `/v1/ipamd-env-settings`: a flat JSON object of setting → value. */
export function parseEnvSettings(text: string, ctx: ParseContext): Setting[] {
  const doc = parseJson(text, ctx, 'cni.bad-json')
  if (!isObj(doc)) {
    if (doc !== undefined) ctx.sink.error('cni.bad-settings', 'the env-settings answer is a JSON object')
    return []
  }
  const out: Setting[] = []
  for (const [name, v] of Object.entries(doc)) {
    if (!isCniSettingName(name)) { ctx.sink.info('cni.ignored-setting', `${name} is not a CNI setting natlens keeps`); continue }
    const raw = `${JSON.stringify(name)}:${JSON.stringify(v)}`
    let value = settingValue(v)
    if (name === 'AWS_VPC_K8S_CNI_RANDOMIZESNAT' && typeof v === 'number') {
      const named = RANDOMIZE_SNAT[v]
      if (named) value = named
      else ctx.sink.warn('cni.bad-setting', `AWS_VPC_K8S_CNI_RANDOMIZESNAT=${v} is not 0, 1 or 2`, lineOfKey(text, name), raw)
    }
    out.push({ name, value, ref: refFor(ctx, text, name, raw) })
  }
  return out
}

const SETTING_PREFIXES = ['AWS_VPC_', 'ENABLE_', 'DISABLE_', 'WARM_']
const SETTING_NAMES: ReadonlySet<string> = new Set([
  'MINIMUM_IP_TARGET', 'MAX_ENI', 'POD_SECURITY_GROUP_ENFORCING_MODE', 'AWS_EXTERNAL_SERVICE_CIDRS', 'INTROSPECTION_BIND_ADDRESS', 'POD_MTU',
  'IP_COOLDOWN_PERIOD', 'NETWORK_POLICY_ENFORCING_MODE', 'ANNOTATE_POD_IP', 'VPC_CNI_VERSION', 'AWS_MANAGE_ENIS_NON_SCHEDULABLE', 'CLUSTER_NAME',
  'AWS_VPC_K8S_CNI_LOGLEVEL', 'AWS_VPC_K8S_PLUGIN_LOG_LEVEL',
])
/** Whatever the allowlist says, a name that reads like a credential is never kept. */
const CREDENTIAL = /SECRET|TOKEN|PASSW|CREDENTIAL|ACCESS_KEY|PRIVATE|SESSION|AUTH|CERT|_KEY$/i

export function isCniSettingName(name: string): boolean {
  if (!/^[A-Z][A-Za-z0-9_]*$/.test(name) || CREDENTIAL.test(name)) return false
  return SETTING_NAMES.has(name) || SETTING_PREFIXES.some((p) => name.startsWith(p))
}

/**
 * The aws-node container environment: `KEY=VALUE` lines (also `export KEY="VALUE"`, YAML `- name:`/`value:` pairs),
 * or JSON from `docker inspect` (`Config.Env`), `ctr container info` (`Spec.process.env`) or a pod spec (`env: [{name, value}]`).
 */
export function parseAwsNodeEnv(text: string, ctx: ParseContext): Setting[] {
  const out: Setting[] = []
  let skipped = 0
  const add = (name: string, value: string, line: number, raw: string): void => {
    if (!isCniSettingName(name)) { skipped++; return }
    // The raw line may carry more than the setting (a JSON array line); the evidence shows only the setting.
    out.push({ name, value, ref: { artifact: ctx.artifact, line, text: raw.includes('=') ? `${name}=${value}` : raw } })
  }
  const trimmed = text.trimStart()
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const doc = parseJson(text, ctx, 'cni.bad-json')
    if (doc === undefined) return out
    const walk = (v: J): void => {
      if (Array.isArray(v)) {
        for (const x of v) {
          if (typeof x === 'string') {
            const m = /^([A-Za-z_][A-Za-z0-9_]*)=([\s\S]*)$/.exec(x)
            if (m) add(m[1]!, m[2]!, lineOfKey(text, x), x)
          } else walk(x)
        }
      } else if (isObj(v)) {
        if (typeof v['name'] === 'string' && (typeof v['value'] === 'string' || v['value'] === undefined) && Object.keys(v).every((k) => ['name', 'value', 'valueFrom'].includes(k))) {
          if (typeof v['value'] === 'string') add(v['name'], v['value'], lineOfKey(text, v['name']), `${v['name']}=${v['value']}`)
          return
        }
        for (const x of Object.values(v)) walk(x)
      }
    }
    walk(doc)
  } else {
    let pendingName: { name: string; line: number } | undefined
    for (const { line, text: raw } of lines(text)) {
      const t = raw.trim().replace(/^export\s+/, '').replace(/,$/, '')
      const kv = /^"?([A-Za-z_][A-Za-z0-9_]*)=(.*?)"?$/.exec(t)
      if (kv) { add(kv[1]!, kv[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'), line, raw.trim()); pendingName = undefined; continue }
      const yName = /^-?\s*name:\s*"?([A-Za-z_][A-Za-z0-9_]*)"?$/.exec(t)
      if (yName) { pendingName = { name: yName[1]!, line }; continue }
      const yValue = /^value:\s*(.*)$/.exec(t)
      if (yValue && pendingName) {
        add(pendingName.name, yValue[1]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1'), line, `${pendingName.name}=${yValue[1]!}`)
        pendingName = undefined
      }
    }
  }
  if (skipped > 0) ctx.sink.info('cni.ignored-env', `${skipped} environment variables that are not CNI settings were not kept`)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// 10-aws.conflist

export function parseConflist(text: string, ctx: ParseContext): Setting[] {
  const doc = parseJson(text, ctx, 'cni.bad-json')
  if (!isObj(doc) || !Array.isArray(doc['plugins'])) {
    if (doc !== undefined) ctx.sink.error('cni.bad-conflist', 'a CNI conflist has a "plugins" array')
    return []
  }
  const out: Setting[] = []
  const push = (name: string, value: J, key: string, excerpt: string): void => {
    out.push({ name, value: settingValue(value), ref: refFor(ctx, text, key, excerpt) })
  }
  const types: string[] = []
  for (const p of doc['plugins']) {
    if (!isObj(p)) continue
    const type = typeof p['type'] === 'string' ? p['type'] : ''
    types.push(type)
    if (type === 'aws-cni') {
      // The init container writes these from AWS_VPC_K8S_CNI_VETHPREFIX, POD_SECURITY_GROUP_ENFORCING_MODE and POD_MTU.
      if (p['vethPrefix'] !== undefined) push('AWS_VPC_K8S_CNI_VETHPREFIX', p['vethPrefix'], 'vethPrefix', `"vethPrefix": ${JSON.stringify(p['vethPrefix'])}`)
      if (p['podSGEnforcingMode'] !== undefined) push('POD_SECURITY_GROUP_ENFORCING_MODE', p['podSGEnforcingMode'], 'podSGEnforcingMode', `"podSGEnforcingMode": ${JSON.stringify(p['podSGEnforcingMode'])}`)
      if (p['mtu'] !== undefined) push('POD_MTU', p['mtu'], 'mtu', `aws-cni "mtu": ${JSON.stringify(p['mtu'])}`)
    } else if (type === 'egress-cni') {
      const ipam = isObj(p['ipam']) ? p['ipam'] : {}
      const ranges = Array.isArray(ipam['ranges']) ? ipam['ranges'].flat() : []
      const subnet = ranges.map((r) => (isObj(r) && typeof r['subnet'] === 'string' ? r['subnet'] : undefined)).find((s) => s !== undefined)
      const enabled = settingValue(p['enabled'])
      push('cni.egress.enabled', enabled, 'enabled', `egress-cni "enabled": ${JSON.stringify(p['enabled'])}`)
      if (p['nodeIP'] !== undefined) push('cni.egress.nodeIP', p['nodeIP'], 'nodeIP', `egress-cni "nodeIP": ${JSON.stringify(p['nodeIP'])}`)
      if (p['randomizeSNAT'] !== undefined) push('cni.egress.randomizeSNAT', p['randomizeSNAT'], 'randomizeSNAT', `egress-cni "randomizeSNAT": ${JSON.stringify(p['randomizeSNAT'])}`)
      if (subnet !== undefined) {
        push('cni.egress.subnet', subnet, 'subnet', `egress-cni "subnet": ${JSON.stringify(subnet)}`)
        // An IPv6 egress subnet (fd00::ac:00/118) is ENABLE_V6_EGRESS of an IPv4 cluster; an IPv4 one
        // (169.254.172.0/22) is ENABLE_V4_EGRESS of an IPv6 cluster (cmd/aws-vpc-cni writes one or the other).
        const c = parseCidr(subnet)
        if (c) push(c.family === 6 ? 'ENABLE_V6_EGRESS' : 'ENABLE_V4_EGRESS', enabled, 'enabled', `egress-cni "enabled": ${JSON.stringify(p['enabled'])}, "subnet": ${JSON.stringify(subnet)}`)
      }
    } else if (type === 'portmap') {
      push('cni.portmap.snat', p['snat'] ?? false, 'snat', `portmap "snat": ${JSON.stringify(p['snat'] ?? null)}`)
    }
  }
  push('cni.plugins', types.join(','), 'plugins', `"plugins": [${types.map((t) => JSON.stringify(t)).join(', ')}]`)
  if (typeof doc['cniVersion'] === 'string') push('cni.cniVersion', doc['cniVersion'], 'cniVersion', `"cniVersion": ${JSON.stringify(doc['cniVersion'])}`)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// ipam.json checkpoint

export function parseIpamCheckpoint(text: string, ctx: ParseContext): IpamAllocation[] {
  const doc = parseJson(text, ctx, 'cni.bad-json')
  if (!isObj(doc) || !Array.isArray(doc['allocations'])) {
    if (doc !== undefined) ctx.sink.error('cni.bad-checkpoint', 'an ipamd checkpoint has an "allocations" array')
    return []
  }
  if (typeof doc['version'] === 'string' && doc['version'] !== 'vpc-cni-ipam/1') ctx.sink.warn('cni.checkpoint-version', `checkpoint version ${doc['version']} (natlens knows vpc-cni-ipam/1)`)
  const out: IpamAllocation[] = []
  let from = 0
  for (const a of doc['allocations']) {
    if (!isObj(a)) continue
    // v1.10+ writes `ipv4`/`ipv6`; v1.7–1.9 wrote `ip`.
    for (const field of ['ipv4', 'ipv6', 'ip']) {
      const v = a[field]
      if (typeof v !== 'string' || v === '') continue
      const address = parseIp(v)
      const excerpt = JSON.stringify(a)
      const at = text.indexOf(JSON.stringify(v), from)
      if (at >= 0) from = at
      const ref: SourceRef = { artifact: ctx.artifact, line: at >= 0 ? text.slice(0, at).split('\n').length : 0, text: excerpt.length > 300 ? `${excerpt.slice(0, 297)}...` : excerpt }
      if (!address) { ctx.sink.warn('cni.bad-value', `bad address ${v}`, ref.line, ref.text); continue }
      const meta = isObj(a['metadata']) ? a['metadata'] : {}
      const alloc: Mutable<IpamAllocation> = { address, ref }
      if (typeof a['containerID'] === 'string' && a['containerID'] !== '') alloc.containerId = a['containerID']
      if (typeof a['ifName'] === 'string' && a['ifName'] !== '') alloc.ifName = a['ifName']
      if (typeof a['networkName'] === 'string' && a['networkName'] !== '') alloc.networkName = a['networkName']
      if (typeof meta['k8sPodName'] === 'string' && meta['k8sPodName'] !== '') alloc.pod = meta['k8sPodName']
      if (typeof meta['k8sPodNamespace'] === 'string' && meta['k8sPodNamespace'] !== '') alloc.namespace = meta['k8sPodNamespace']
      out.push(alloc)
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// IMDS

// The last ones are per-interface keys written at the top level (a hand-made file, the lab's imds.txt).
const IMDS_TOP = /^(?:mac|local-ipv4|local-hostname|instance-id|instance-type|ami-id|public-ipv4|ipv6|placement\/|network\/interfaces\/macs\/|hostname|reservation-id|security-groups|services\/|vpc-ipv[46]-cidr-blocks|subnet-ipv[46]-cidr-blocks?|device-number|interface-id|local-ipv4s|vpc-id|subnet-id)/

function imdsKey(path: string): string {
  return path.replace(/^https?:\/\/[^/]+/, '').replace(/^\/?latest\//, '').replace(/^\/?meta-data\//, '').replace(/^\//, '').replace(/\/$/, '')
}

/**
 * IMDS answers as `path: value` or `path=value` lines (a value may continue on following lines, as
 * `vpc-ipv4-cidr-blocks` lists one CIDR per line), or as a JSON object (nested objects are paths).
 * Keys are the paths below `meta-data/`; multi-line values are kept with `\n` between items.
 */
export function parseImds(text: string, ctx: ParseContext): Setting[] {
  const out: Setting[] = []
  if (/^\s*\{/.test(text)) {
    const doc = parseJson(text, ctx, 'cni.bad-json')
    if (!isObj(doc)) return out
    const walk = (prefix: string, v: J): void => {
      if (isObj(v)) { for (const [k, x] of Object.entries(v)) walk(prefix === '' ? imdsKey(k) : `${prefix}/${k.replace(/\/$/, '')}`, x); return }
      const value = Array.isArray(v) ? v.map((x) => settingValue(x)).join('\n') : settingValue(v)
      out.push({ name: prefix, value, ref: refFor(ctx, text, prefix.split('/').pop() ?? prefix, `${prefix}: ${value.replace(/\n/g, ' ')}`) })
    }
    walk('', doc)
    return out
  }
  let cur: { name: string; values: string[]; ref: SourceRef } | undefined
  const flush = (): void => {
    if (cur) out.push({ name: cur.name, value: cur.values.join('\n'), ref: cur.ref })
    cur = undefined
  }
  for (const { line, text: raw } of lines(text)) {
    const t = raw.trim()
    if (t === '' || t.startsWith('#')) continue
    // A MAC inside the path has colons without a space after them; the separator is `: `, `:` at the end, or `=`.
    const m = /^((?:https?:\/\/[^/\s]+)?\/?[A-Za-z0-9][A-Za-z0-9/._:-]*?)(?::\s+|:$|\s*=\s*)(.*)$/.exec(t)
    const key = m ? imdsKey(m[1]!) : undefined
    if (m && key !== undefined && (IMDS_TOP.test(key) || key.includes('/')) && !parseCidr(t)) {
      flush()
      cur = { name: key, values: m[2]!.trim() === '' ? [] : [m[2]!.trim()], ref: { artifact: ctx.artifact, line, text: t } }
      continue
    }
    if (cur) { cur.values.push(t); continue }
    ctx.sink.warn('imds.unknown-line', 'not an IMDS `path: value` line', line, t)
  }
  flush()
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Sniffing

/** Which VPC CNI artefact a file is, from its content (JSON or text); undefined when it is none of them. */
export function sniffCniJson(text: string): Extract<SourceKind, 'ipamd-enis' | 'ipamd-eni-configs' | 'networkutils-env' | 'ipamd-env' | 'cni-conflist' | 'ipam-checkpoint' | 'aws-node-env' | 'imds'> | undefined {
  const head = text.slice(0, 16384)
  const trimmed = head.trimStart()
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    if (/^\{\s*"nftables"\s*:/.test(trimmed)) return undefined
    if (/"ENIs"\s*:\s*\{/.test(head) && /"(?:TotalIPs|AssignedIPs)"\s*:/.test(head)) return 'ipamd-enis'
    if (/^\{\s*"plugins"\s*:|"cniVersion"\s*:/.test(trimmed) && /"plugins"\s*:\s*\[/.test(head)) return 'cni-conflist'
    if (/"allocations"\s*:\s*\[/.test(head) && (/"vpc-cni-ipam\//.test(head) || /"containerID"\s*:/.test(head) || /"allocations"\s*:\s*\[\s*\]/.test(head))) return 'ipam-checkpoint'
    if (/"(?:AWS_VPC_K8S_CNI_CONNMARK|AWS_VPC_K8S_CNI_EXTERNALSNAT|AWS_VPC_K8S_CNI_VETHPREFIX|AWS_VPC_K8S_CNI_RANDOMIZESNAT)"\s*:/.test(head)) return 'networkutils-env'
    if (/^\{[^[]*"(?:WARM_ENI_TARGET|WARM_IP_TARGET|MINIMUM_IP_TARGET|AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG|WARM_PREFIX_TARGET)"\s*:/.test(trimmed)) return 'ipamd-env'
    // A partial ipamd settings object (only the ENABLE_* switches), as a hand-made file or the lab writes it.
    if (/^\{\s*"ENABLE_[A-Za-z0-9_]+"\s*:\s*(?:true|false|"[^"]*")/.test(trimmed) && !/"ENABLE_[A-Za-z0-9_]+=/.test(head)) return 'ipamd-env'
    if (/"MyENI"\s*:|^\{\s*"ENI"\s*:/.test(trimmed)) return 'ipamd-eni-configs'
    if (/"(?:AWS_VPC_[A-Z0-9_]+|ENABLE_[A-Z0-9_]+)=/.test(head) || /"name"\s*:\s*"AWS_VPC_[A-Z0-9_]+"/.test(head)) return 'aws-node-env'
    if (/^\{\s*"(?:mac|local-ipv4|instance-id|network|meta-data|local-hostname)"\s*:/.test(trimmed) || /"network\/interfaces\/macs\//.test(head)) return 'imds'
    return undefined
  }
  const ls = head.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).slice(0, 40)
  if (ls.length === 0) return undefined
  const env = ls.filter((l) => /^(?:export\s+)?"?(?:AWS_VPC_|ENABLE_|DISABLE_|WARM_|MINIMUM_IP_TARGET|POD_SECURITY_GROUP_ENFORCING_MODE)[A-Za-z0-9_]*=/.test(l)).length
  if (env > 0 && env >= Math.ceil(ls.length * 0.3)) return 'aws-node-env'
  const imds = ls.filter((l) => /^(?:\/?latest\/)?(?:\/?meta-data\/)?(?:mac|local-ipv4|local-hostname|instance-id|instance-type|vpc-ipv[46]-cidr-blocks|network\/interfaces\/macs\/\S+)(?::\s|:$|\s*=)/.test(l)).length
  if (imds > 0 && imds >= Math.ceil(ls.length * 0.3)) return 'imds'
  return undefined
}
