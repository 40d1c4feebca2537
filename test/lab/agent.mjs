#!/usr/bin/env node
// Traffic agent of the kernel lab. It runs inside a lab network namespace (`ip netns exec nl-… node agent.mjs …`)
// and never anywhere else: every address it binds or sends to is one the lab created in that namespace's topology.
//
//   serve --tcp 8080,443 --udp 8081 [--bind A,B] --log FILE --lifetime MS   TCP and UDP echo servers (IPv4 and IPv6)
//   tcp --src A --sport P --dst B --dport Q --tag T --timeout MS  one TCP connection from A:P, sends the tag, reads the echo
//   udp --src A --sport P --dst B --dport Q --tag T --timeout MS  one datagram from A:P carrying the tag, waits for the echo
//
// Clients print one JSON line ({ok, error?, local?, remote?, echo?}) and always exit within --timeout (+ a small margin).
import net from 'node:net'
import dgram from 'node:dgram'
import fs from 'node:fs'

const [command, ...rest] = process.argv.slice(2)
const opts = {}
for (let i = 0; i + 1 < rest.length; i += 2) opts[rest[i].replace(/^--/, '')] = rest[i + 1]

const plain = (a) => (typeof a === 'string' && a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a)

function serve() {
  const lifetime = Number(opts.lifetime ?? 120000)
  const log = (entry) => { if (opts.log) fs.appendFileSync(opts.log, JSON.stringify({ t: Date.now(), ...entry }) + '\n') }
  const ports = (s) => (s ? s.split(',').filter(Boolean).map(Number) : [])
  for (const port of ports(opts.tcp)) {
    const server = net.createServer((socket) => {
      socket.setTimeout(5000, () => socket.destroy())
      socket.on('error', () => {})
      socket.on('data', (chunk) => {
        log({ proto: 'tcp', local: plain(socket.localAddress), localPort: socket.localPort, remote: plain(socket.remoteAddress), remotePort: socket.remotePort, tag: chunk.toString().trim() })
        socket.end(chunk)
      })
    })
    server.on('error', (e) => log({ proto: 'tcp', port, error: String(e) }))
    // '::' with ipv6Only false accepts IPv4 too (as ::ffff:a.b.c.d), so one listener serves both families.
    server.listen({ host: '::', port, ipv6Only: false })
  }
  // A UDP socket bound to the wildcard answers from whatever source the route picks, not from the address the
  // datagram was sent to; with --bind, one socket per address makes every echo come back from the right host.
  const addresses = opts.bind ? opts.bind.split(',').filter(Boolean) : ['::']
  for (const port of ports(opts.udp)) {
    for (const address of addresses) {
      const socket = address === '::' ? dgram.createSocket({ type: 'udp6', ipv6Only: false }) : dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4')
      socket.on('error', (e) => log({ proto: 'udp', port, address, error: String(e) }))
      socket.on('message', (msg, rinfo) => {
        log({ proto: 'udp', local: address, localPort: port, remote: plain(rinfo.address), remotePort: rinfo.port, tag: msg.toString().trim() })
        socket.send(msg, rinfo.port, rinfo.address)
      })
      socket.bind({ address, port })
    }
  }
  process.stdout.write('ready\n')
  // Bounded: the server ends by itself even if the harness dies without killing it.
  setTimeout(() => process.exit(0), lifetime)
}

function finish(result) {
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}

function tcpClient() {
  const timeout = Number(opts.timeout ?? 1500)
  setTimeout(() => finish({ ok: false, error: 'timeout' }), timeout)
  const socket = net.connect({ host: opts.dst, port: Number(opts.dport), localAddress: opts.src, localPort: Number(opts.sport) })
  socket.on('connect', () => {
    const local = plain(socket.localAddress); const remote = plain(socket.remoteAddress)
    socket.write(`${opts.tag}\n`)
    socket.on('data', (d) => { finish({ ok: true, local, remote, echo: d.toString().trim() }); socket.destroy() })
    setTimeout(() => finish({ ok: true, local, remote, echo: null }), Math.min(500, timeout / 2))
  })
  socket.on('error', (e) => finish({ ok: false, error: e.code ?? String(e) }))
}

function udpClient() {
  const timeout = Number(opts.timeout ?? 1500)
  const socket = dgram.createSocket(net.isIPv6(opts.dst) ? 'udp6' : 'udp4')
  setTimeout(() => finish({ ok: false, error: 'no echo' }), Math.min(timeout, 800))
  socket.on('error', (e) => finish({ ok: false, error: e.code ?? String(e) }))
  socket.on('message', (msg) => finish({ ok: true, echo: msg.toString().trim() }))
  socket.bind({ address: opts.src, port: Number(opts.sport) }, () => {
    socket.send(`${opts.tag}\n`, Number(opts.dport), opts.dst)
  })
}

if (command === 'serve') serve()
else if (command === 'tcp') tcpClient()
else if (command === 'udp') udpClient()
else { process.stderr.write(`agent: unknown command ${command}\n`); process.exit(2) }
