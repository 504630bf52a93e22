import { SwitchboardError } from '../errors.ts'

/** A command was issued on (or was still pending for) a channel that has hung up. */
export class ChannelHungupError extends SwitchboardError {
  constructor(uuid: string, what: string, hangupCause: string | undefined) {
    super('channel_hungup', `${what} on channel ${uuid}: channel has hung up (${hangupCause ?? 'unknown cause'})`, 409, {
      uuid,
      what,
      hangupCause,
    })
  }
}

/** FreeSWITCH answered a command with -ERR. */
export class EslCommandError extends SwitchboardError {
  constructor(command: string, reply: string) {
    super('esl_command_failed', `ESL command ${JSON.stringify(command)} failed: ${reply}`, 502, { command, reply })
  }
}

/** The ESL socket closed (or was closed by us) while a command was waiting. */
export class EslClosedError extends SwitchboardError {
  constructor(reason: string) {
    super('esl_closed', `ESL connection closed: ${reason}`, 503, { reason })
  }
}

/** The peer sent bytes that are not a valid ESL frame; the socket is closed. */
export class EslProtocolError extends SwitchboardError {
  constructor(reason: string) {
    super('esl_protocol', `ESL protocol error: ${reason}`, 502, { reason })
  }
}
