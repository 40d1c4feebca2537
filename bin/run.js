#!/usr/bin/env node
// Starts natlens from a checkout or an npm install, with the commands built into dist/ (`npm run build`).
// dist/sea/start.js adds to oclif's own start: the version reported with its git commit (this checkout's HEAD, or
// the commit `npm pack` recorded), and the nearest command or flag when one is mistyped (exit 2).
// The single executable starts from src/sea/main.ts instead.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Config } from '@oclif/core'
import { commitOf, start, versionWithCommit } from '../dist/sea/start.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
await start({ version: versionWithCommit(version, commitOf(root)), loadConfig: (v) => Config.load({ root, version: v }) })
