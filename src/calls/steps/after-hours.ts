import type { CallContext } from '../context.ts'

/** Seed 002: after-hours message, the missed call written, a callback task created. */
export async function afterHours(ctx: CallContext, prompt: string, createCallback: boolean): Promise<void> {
  const { channel, state } = ctx
  state.outcome = 'after_hours'
  if (createCallback) await createCallbackTask(ctx, 'after_hours')
  await channel.playback(prompt)
  await channel.hangup('NORMAL_CLEARING')
}

/** A task to call the client back; closed only when the client is actually reached. */
export async function createCallbackTask(ctx: CallContext, reason: string): Promise<void> {
  const { deps, state } = ctx
  if (!state.caller) {
    ctx.log.info('no caller number: no callback possible')
    return
  }
  try {
    await deps.pool.query(
      `INSERT INTO callbacks (call_uuid, client_id, phone, reason, queue_id)
       VALUES ((SELECT uuid FROM calls WHERE uuid = $1), (SELECT id FROM clients WHERE id = $2), $3, $4, $5)`,
      [state.uuid, state.clientId, state.caller, reason, state.queueId])
    ctx.log.info({ reason }, 'callback task created')
  } catch (err) {
    ctx.log.error({ err, reason }, 'could not create callback task')
  }
}
