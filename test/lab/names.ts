// Names the VPC CNI, the egress plugin and kube-proxy compute, computed the same way so the lab's node looks real.
import { createHash } from 'node:crypto'

/** Host veth of a pod: `<prefix>` + first 11 hex of sha1("<namespace>.<podname>") (VPC CNI pkg/networkutils/names.go). */
export function hostVethName(prefix: string, namespace: string, pod: string): string {
  return prefix + createHash('sha1').update(`${namespace}.${pod}`).digest('hex').slice(0, 11)
}

/**
 * The egress plugin's per-pod nat chain: `CNI-` + prefix + sha512("aws-cni" + containerID) in hex, cut to 28 characters
 * (containernetworking/plugins utils.MustFormatChainNameWithPrefix, called by cmd/egress-cni-plugin main.go with
 * prefix `E4-` for IPv4 egress of IPv6 pods and `E6-` for IPv6 egress of IPv4 pods): 21 hex characters either way.
 */
function egressChain(prefix: 'E4-' | 'E6-', containerId: string): string {
  return ('CNI-' + prefix + createHash('sha512').update('aws-cni' + containerId).digest('hex')).slice(0, 28)
}

/** `CNI-E4-` + first 21 hex of sha512("aws-cni" + containerID) (vpc-cni.md §6.2). */
export function egressV4Chain(containerId: string): string {
  return egressChain('E4-', containerId)
}

/** `CNI-E6-` + first 21 hex of sha512("aws-cni" + containerID) (vpc-cni.md §6.3). */
export function egressV6Chain(containerId: string): string {
  return egressChain('E6-', containerId)
}

/**
 * The link-local address the kernel gives an interface with this MAC (addr_gen_mode eui64, a new namespace's
 * default): fe80:: + the MAC with the universal/local bit flipped and ff:fe in the middle (RFC 4291 appendix A).
 */
export function eui64LinkLocal(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16))
  const words = [((b[0]! ^ 0x02) << 8) | b[1]!, (b[2]! << 8) | 0xff, 0xfe00 | b[3]!, (b[4]! << 8) | b[5]!]
  return 'fe80::' + words.map((w) => w.toString(16)).join(':')
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

function base32(bytes: Buffer): string {
  let out = ''
  let bits = 0
  let value = 0
  for (const byte of bytes) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    value &= (1 << bits) - 1
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31]
  return out
}

/** kube-proxy `portProtoHash`: base32(sha256(servicePortName + protocol))[:16], shared by KUBE-SVC/SVL/EXT/FW. */
export function serviceChainHash(servicePortName: string, protocol: string): string {
  return base32(createHash('sha256').update(servicePortName + protocol).digest()).slice(0, 16)
}

/** kube-proxy `servicePortEndpointChainName`: KUBE-SEP- + base32(sha256(spn + proto + "ip:port"))[:16]. */
export function endpointChainName(servicePortName: string, protocol: string, endpoint: string): string {
  return 'KUBE-SEP-' + base32(createHash('sha256').update(servicePortName + protocol + endpoint).digest()).slice(0, 16)
}

/**
 * kube-proxy nftables mode's chain names (pkg/proxy/nftables/proxier.go `servicePortChainNameBase`,
 * `servicePortEndpointChainNameBase`): `<prefix>` + base32(sha256(name))[:8] + `-` + name, where name is
 * `ns/svc/proto/portName` (endpoint chains add `__<ip>/<port>`), truncated with `...` only past 240 characters.
 */
export function nftChainName(prefix: string, name: string): string {
  return `${prefix}${base32(createHash('sha256').update(name).digest()).slice(0, 8)}-${name}`
}

/** A stable, locally administered unicast MAC for a lab interface, so fixtures do not change from run to run. */
export function labMac(seed: string): string {
  const h = createHash('sha1').update(seed).digest()
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':')
}

/** An 8-hex random-looking name like the egress plugin's `veth<8 hex>` (ip.SetupVeth), stable per seed. */
export function egressVethName(seed: string): string {
  return 'veth' + createHash('sha1').update(seed).digest('hex').slice(0, 8)
}
