/** Public surface of routing/: pure decisions (+ the one I/O module, decision-webhook). */
export { decideRoute, queuePriority, didSourceTag } from './decide.ts'
export { officeOpenAt, officeStatusAt, mergeCalendars, type OfficeStatus, type DayType } from './office-hours.ts'
export { chooseCallerId, type CallerIdChoice } from './caller-id.ts'
export { decideWithWebhook, WebhookAnswerSchema, type WebhookAnswer, type WebhookDecision, type WebhookFallback, type DecisionWebhookOptions } from './decision-webhook.ts'
export * from './types.ts'
