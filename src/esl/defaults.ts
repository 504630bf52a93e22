/**
 * Defaults shared by the ESL layer, the FreeSWITCH config (freeswitch/) and its test.
 * The dialplan's `socket` target must point at DEFAULT_ESL_PORT; a test checks it.
 */
export const DEFAULT_ESL_PORT = 8084
export const DEFAULT_ESL_HOST = '127.0.0.1'
/** FreeSWITCH's inbound event socket (mod_event_socket listen-port). */
export const DEFAULT_FS_ESL_PORT = 8021

export interface EslLimits {
  /** Largest header block we buffer before giving up on a peer (connect reply of a SIP call is ~6 KiB). */
  maxHeaderBytes: number
  /** Largest Content-Length we accept (CHANNEL_HANGUP_COMPLETE of a busy call is ~10 KiB). */
  maxBodyBytes: number
  /** How long FreeSWITCH may take to answer one command before we give up on the socket. */
  commandTimeoutMs: number
}

export const DEFAULT_ESL_LIMITS: Readonly<EslLimits> = Object.freeze({
  maxHeaderBytes: 256 * 1024,
  maxBodyBytes: 4 * 1024 * 1024,
  commandTimeoutMs: 10_000,
})
