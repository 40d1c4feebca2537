// Types of fake-endpoints.mjs (plain JavaScript so it runs with `node` inside a namespace).
export interface FakeRequest { method?: string; url?: string; headers: Record<string, string | string[] | undefined> }
export interface FakeConfig { imds?: Record<string, string>; ipamd?: Record<string, unknown>; proxyMode?: string; blackhole?: boolean; port?: number }
export interface FakeEndpoints { port: number; url: string; requests: FakeRequest[]; close(): Promise<void> }
export const FAKE_TOKEN: string
export function startFakeEndpoints(config: FakeConfig): Promise<FakeEndpoints>
export function imdsFor(o: { mac: string; localIpv4: string; vpcCidrs: string[]; instanceId?: string; deviceNumber?: string; extraMacs?: { mac: string; ip: string; deviceNumber: string }[] }): Record<string, string>
