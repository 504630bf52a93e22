export { OutboundServer, type OutboundServerOptions } from './outbound-server.ts'
export {
  CallChannel,
  type ActiveRecording,
  type ApiOptions,
  type BridgeOptions,
  type BridgeResult,
  type CallChannelEvents,
  type ExecuteResult,
  type HangupCompleteInfo,
  type PlayAndGetDigitsOptions,
  type RecordLegOptions,
} from './call-channel.ts'
export type { ChannelData } from './channel-data.ts'
export { InboundClient, type InboundClientOptions } from './inbound-client.ts'
export { ChannelHungupError, EslClosedError, EslCommandError, EslProtocolError } from './errors.ts'
export { DEFAULT_ESL_PORT, DEFAULT_FS_ESL_PORT } from './defaults.ts'
