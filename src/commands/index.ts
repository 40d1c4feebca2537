// oclif's explicit command discovery: one import per command, so a bundler sees every command (single executable).
export const COMMANDS = {}
