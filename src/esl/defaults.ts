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

/**
 * Event types asked for on every outbound socket beyond `myevents`, whose fixed list
 * (CHANNEL_* and DTMF) lacks them: CHANNEL_HOLD/UNHOLD (hold time), BACKGROUND_JOB (results
 * of the socket's own bgapi; FreeSWITCH passes only those, by Job-Owner-UUID) and CUSTOM
 * conference::maintenance (the conference step). Words after CUSTOM are its subclasses.
 */
export const DEFAULT_EXTRA_EVENTS: readonly string[] = Object.freeze(['CHANNEL_HOLD', 'CHANNEL_UNHOLD', 'BACKGROUND_JOB', 'CUSTOM', 'conference::maintenance'])

/**
 * Event types of the `myevents` list that nothing in Switchboard reads, dropped with
 * `nixevent` so FreeSWITCH neither formats nor sends them: 8 of a routed call's 19 events
 * (each 2–4 KiB of headers). CHANNEL_EXECUTE is among them; a step that needs it asks for
 * it on its own call (CallChannel.subscribe).
 */
export const DEFAULT_DROPPED_EVENTS: readonly string[] = Object.freeze([
  'CHANNEL_EXECUTE', 'CHANNEL_STATE', 'CHANNEL_PARK', 'CHANNEL_UNPARK', 'CHANNEL_CREATE', 'CHANNEL_DESTROY',
  'CHANNEL_ORIGINATE', 'CHANNEL_OUTGOING', 'CHANNEL_UUID', 'CHANNEL_APPLICATION', 'CHANNEL_PROGRESS',
  'CHANNEL_PROGRESS_MEDIA', 'DETECTED_SPEECH', 'TALK', 'NOTALK',
])
