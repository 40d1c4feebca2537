// Runs the collector's HTTP reads inside a network namespace: `ip netns exec NAME node …/collect/http-child.js`
// with the jobs as JSON on stdin, the answers as JSON on stdout. A process cannot enter a namespace by itself in
// Node, and loopback endpoints (ipamd on 127.0.0.1:61679) are per namespace, so the reads must happen in a child.
import { runHttpJobs, type HttpJob } from './http.js'

const chunks: Buffer[] = []
for await (const c of process.stdin) chunks.push(c as Buffer)
const jobs = JSON.parse(Buffer.concat(chunks).toString('utf8')) as HttpJob[]
process.stdout.write(JSON.stringify(await runHttpJobs(jobs)))
