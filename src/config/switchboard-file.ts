/**
 * The switchboard config file (YAML or JSON): offices, groups, DIDs, IVR menus, queues,
 * routing rules, outbound caller id, recording, retention, stats and CSAT.
 *
 * One TypeBox schema is the contract: every object rejects unknown fields
 * (`additionalProperties: false`), every optional field has a default, and
 * `validateSwitchboardFile` adds the referential checks a schema cannot express
 * (every queue/menu/office/group referenced exists). Errors name the field path,
 * e.g. `queues[1].strategy: must be one of longest-idle, round-robin, ring-all, sticky`.
 */
import { readFile, access } from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import { extname, isAbsolute, join } from 'node:path'
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { Value, type ValueError } from '@sinclair/typebox/value'
import { IANAZone } from 'luxon'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '../errors.ts'
import { allowListEntryProblem, webhookUrlProblem } from '../webhooks/targets.ts'

const strict = { additionalProperties: false } as const

// ---------------------------------------------------------------- primitives

const Id = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'identifier: letters, digits, _ . -' })
/** 'HH:mm-HH:mm', end may be 24:00 (round-the-clock office). */
export const HOURS_PATTERN = '^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$'
const Hours = Type.String({ pattern: HOURS_PATTERN, description: "'HH:mm-HH:mm'" })
const DayHours = Type.Union([Hours, Type.Literal('closed')])
const IsoDate = Type.String({ pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$', description: "'YYYY-MM-DD'" })
const E164 = Type.String({ pattern: '^\\+[1-9][0-9]{6,14}$', description: 'E.164 number, e.g. +74951234567' })
const Segment = Type.Union([Type.Literal('A'), Type.Literal('B'), Type.Literal('C')])
const PositiveInt = (def: number, extra: Record<string, unknown> = {}) => Type.Integer({ minimum: 1, default: def, ...extra })
const NonNegInt = (def: number, extra: Record<string, unknown> = {}) => Type.Integer({ minimum: 0, default: def, ...extra })

// ---------------------------------------------------------------- offices & calendar

const WeeklyHours = Type.Object({
  mon: DayHours, tue: DayHours, wed: DayHours, thu: DayHours, fri: DayHours,
  sat: Type.Optional(DayHours), sun: Type.Optional(DayHours),
}, strict)

const DatedHours = Type.Object({ date: IsoDate, hours: Hours }, strict)

/** Production calendar: public holidays, shortened pre-holiday days, and weekend days made working days. */
export const CalendarSchema = Type.Object({
  holidays: Type.Array(IsoDate, { default: [] }),
  shortDays: Type.Array(DatedHours, { default: [] }),
  workdays: Type.Array(DatedHours, { default: [], description: 'weekend days that are working days (transferred days)' }),
}, { ...strict, default: {} })

export const OfficeSchema = Type.Object({
  id: Id,
  name: Type.String({ minLength: 1 }),
  tz: Type.String({ minLength: 1, description: 'IANA time zone, e.g. Europe/Moscow' }),
  hours: WeeklyHours,
  calendar: CalendarSchema,
  fallbackQueue: Type.Optional(Id),
}, strict)

// ---------------------------------------------------------------- groups, DIDs

export const GroupSchema = Type.Object({
  id: Id,
  name: Type.String({ minLength: 1 }),
  supervisorId: Type.Optional(Type.String({ minLength: 1 })),
  secretaryId: Type.Optional(Type.String({ minLength: 1 })),
  officeId: Type.Optional(Id),
}, strict)

export const DidSchema = Type.Object({
  source: Type.String({ minLength: 1, description: 'call-tracking source tag' }),
  noIvr: Type.Boolean({ default: false }),
  ivrMenu: Type.Optional(Id),
  queue: Type.Optional(Id),
  officeId: Id,
}, strict)

/** DID keys: digits with an optional leading '+'; routing looks them up by digits. */
export const DID_KEY_PATTERN = '^\\+?[0-9]{3,15}$'

// ---------------------------------------------------------------- IVR

export const IvrActionSchema = Type.Union([
  Type.Literal('queue'), Type.Literal('menu'), Type.Literal('route'), Type.Literal('extension'), Type.Literal('hangup'),
])

const IvrTarget = Type.Object({
  action: IvrActionSchema,
  target: Type.Optional(Type.String({ minLength: 1 })),
}, strict)

export const IvrOptionSchema = Type.Object({
  label: Type.String({ minLength: 1, description: 'human label shown in screen pop and the console' }),
  action: IvrActionSchema,
  target: Type.Optional(Type.String({ minLength: 1 })),
}, strict)

export const IvrMenuSchema = Type.Object({
  id: Id,
  prompt: Type.String({ minLength: 1, description: "prompt file (relative to the prompts dir) or 'tone_stream://…'" }),
  options: Type.Record(Type.String({ pattern: '^[0-9*#]$' }), IvrOptionSchema, strict),
  timeoutMs: PositiveInt(5000, { maximum: 60000 }),
  maxRetries: NonNegInt(2, { maximum: 10 }),
  invalidPrompt: Type.Optional(Type.String({ minLength: 1 })),
  defaultAction: Type.Optional(IvrTarget),
}, strict)

// ---------------------------------------------------------------- queues

export const QueueStrategySchema = Type.Union([
  Type.Literal('longest-idle'), Type.Literal('round-robin'), Type.Literal('ring-all'), Type.Literal('sticky'),
])

export const QueueSchema = Type.Object({
  id: Id,
  name: Type.String({ minLength: 1 }),
  strategy: Type.Union([
    Type.Literal('longest-idle'), Type.Literal('round-robin'), Type.Literal('ring-all'), Type.Literal('sticky'),
  ], { default: 'longest-idle' }),
  groupIds: Type.Array(Id, { default: [], description: 'groups whose agents serve this queue' }),
  agentTimeoutSec: PositiveInt(20, { maximum: 600 }),
  maxWaitSec: PositiveInt(300, { maximum: 86400 }),
  maxLength: PositiveInt(50, { maximum: 100000 }),
  overflow: Type.Object({
    // callback: a task is created and the caller hears goodbye; callback-offer: "press 1 for a callback"
    action: Type.Union([Type.Literal('queue'), Type.Literal('voicemail'), Type.Literal('callback'), Type.Literal('callback-offer')], { default: 'callback' }),
    target: Type.Optional(Id),
  }, { ...strict, default: {} }),
  wrapUpSec: NonNegInt(10, { maximum: 3600 }),
  // A segment rule replaces the segment's priority (routing.segmentPriority) in this queue;
  // an attribute rule (client attribute equal to `equals`, or truthy) adds its priority.
  priorityRules: Type.Array(Type.Object({
    segment: Type.Optional(Type.Union([Segment, Type.Literal('unidentified')])),
    attribute: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    equals: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
    priority: Type.Integer({ minimum: -1000, maximum: 1000 }),
  }, strict), { default: [] }),
  vipPriority: Type.Integer({ minimum: 0, maximum: 1000, default: 100, description: 'added for clients whose acd.vipAttribute is truthy' }),
  callbackPriority: Type.Integer({ minimum: 0, maximum: 1000, default: 50, description: 'added for callback calls and callers with an open callback task' }),
  stickyFallback: Type.Union([Type.Literal('longest-idle'), Type.Literal('round-robin'), Type.Literal('ring-all')], { default: 'longest-idle' }),
  musicOnHold: Type.Optional(Type.String({ minLength: 1 })),
  announcePosition: Type.Boolean({ default: false }),
  announceExpectedWait: Type.Boolean({ default: false }),
  announceIntervalSec: PositiveInt(30, { maximum: 3600 }),
  positionPrompt: Type.String({ minLength: 1, default: 'ivr/ivr-you_are_number.wav' }),
  expectedWaitPrompt: Type.String({ minLength: 1, default: 'ivr/ivr-estimated_hold_time.wav' }),
}, strict)

// ---------------------------------------------------------------- ACD (all queues, all nodes)

export const AcdSchema = Type.Object({
  /** backup poll for offers/ready agents when a NOTIFY was missed (the LISTEN connection dropped) */
  pollIntervalMs: PositiveInt(1000, { minimum: 50, maximum: 60000 }),
  heartbeatSec: PositiveInt(5, { maximum: 300 }),
  /** a node silent this long is dead: its waiting callers are dropped, its offered agents released */
  nodeStaleSec: PositiveInt(30, { minimum: 3, maximum: 3600 }),
  /** an offer the owning node did not start ringing within this time is taken back */
  offerLeaseSec: PositiveInt(15, { maximum: 600 }),
  vipAttribute: Type.String({ minLength: 1, maxLength: 64, default: 'vip' }),
  stickyLookbackDays: PositiveInt(90, { maximum: 3650 }),
  maxOverflowHops: PositiveInt(3, { maximum: 10 }),
  voicemail: Type.Object({
    prompt: Type.String({ minLength: 1, default: 'voicemail/vm-record_message.wav' }),
    beep: Type.String({ minLength: 1, default: 'tone_stream://%(500,0,800)' }),
    maxSec: PositiveInt(120, { maximum: 1800 }),
    thanksPrompt: Type.Optional(Type.String({ minLength: 1 })),
  }, { ...strict, default: {} }),
  callbackOffer: Type.Object({
    prompt: Type.String({ minLength: 1, default: 'ivr/ivr-callback_offer.wav' }),
    digit: Type.String({ pattern: '^[0-9*#]$', default: '1' }),
    timeoutMs: PositiveInt(6000, { maximum: 60000 }),
    confirmPrompt: Type.Optional(Type.String({ minLength: 1 })),
    /** offers declined (no digit) before the caller is let go with a callback task anyway */
    maxOffers: PositiveInt(2, { maximum: 10 }),
  }, { ...strict, default: {} }),
}, { ...strict, default: {} })

// ---------------------------------------------------------------- routing

export const RoutingSchema = Type.Object({
  defaultOfficeId: Type.Optional(Id),
  managerRingSec: PositiveInt(30, { maximum: 300 }),
  colleagueRingSec: PositiveInt(20, { maximum: 300 }),
  supervisorRingSec: PositiveInt(20, { maximum: 300 }),
  maxColleagues: NonNegInt(3, { maximum: 50 }),
  kindRoutes: Type.Object({
    unknown: Type.String({ minLength: 1, default: 'sales' }),
    client: Type.Optional(Id),
    supplier: Type.String({ minLength: 1, default: 'production' }),
    partner: Type.Optional(Id),
    other: Type.String({ minLength: 1, default: 'finance' }),
  }, { ...strict, default: {} }),
  segmentQueues: Type.Object({
    A: Type.Optional(Id), B: Type.Optional(Id), C: Type.Optional(Id),
  }, { ...strict, default: {}, description: 'segments whose clients go to a queue instead of their manager' }),
  unidentifiedSegment: Type.Union([Segment, Type.Literal('none')], {
    default: 'C', description: 'segment used for the priority of callers the directory does not know',
  }),
  repeatCaller: Type.Object({
    enabled: Type.Boolean({ default: true }),
    sameDay: Type.Boolean({ default: true }),
    ringSec: PositiveInt(20, { maximum: 300 }),
  }, { ...strict, default: {} }),
  blacklist: Type.Object({
    enabled: Type.Boolean({ default: false }),
    maxCallsPerDay: PositiveInt(5, { maximum: 10000 }),
    treatment: Type.Union([Type.Literal('reject'), Type.Literal('queue')], { default: 'reject' }),
    queue: Type.Optional(Id),
    numbers: Type.Array(E164, { default: [], description: 'permanently blacklisted numbers' }),
  }, { ...strict, default: {} }),
  segmentPriority: Type.Object({
    A: Type.Integer({ default: 10 }), B: Type.Integer({ default: 5 }), C: Type.Integer({ default: 0 }),
  }, { ...strict, default: {} }),
  afterHours: Type.Object({
    prompt: Type.String({ minLength: 1, default: 'after-hours.wav' }),
    createCallback: Type.Boolean({ default: true }),
    openOfficeFallback: Type.Boolean({ default: false }),
    holidayQueue: Type.Optional(Id),
  }, { ...strict, default: {} }),
  decisionWebhook: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^https?://', description: 'http(s) URL' }),
    timeoutMs: PositiveInt(800, { maximum: 10000 }),
  }, strict)),
}, { ...strict, default: {} })

// ---------------------------------------------------------------- outbound caller id

export const CallerIdRuleSchema = Type.Object({
  name: Type.Optional(Type.String()),
  calleePrefix: Type.Optional(Type.String({ pattern: '^\\+[0-9]{1,14}$', description: 'E.164 prefix of the callee, e.g. +7383' })),
  dialledPrefix: Type.Optional(Type.String({ pattern: '^[0-9*#]{1,6}$', description: 'legacy prefix the agent dials, stripped before dialling' })),
  clientRegion: Type.Optional(Type.String({ minLength: 1 })),
  callerId: E164,
}, strict)

export const CallerIdSchema = Type.Object({
  default: E164,
  rules: Type.Array(CallerIdRuleSchema, { default: [] }),
}, strict)

// ---------------------------------------------------------------- gateways, FMC (issues 7, 13)

const GATEWAY_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'
const fmcSources = () => [Type.Literal('request-uri'), Type.Literal('diversion'), Type.Literal('history-info'), Type.Literal('variable')]

/** Where calls to numbers outside the PBX go: `sofia/gateway/<name>/<number>`. */
export const GatewaysSchema = Type.Object({
  outbound: Type.String({ pattern: GATEWAY_PATTERN, default: 'trunk', description: 'carrier gateway for desk-phone outbound and FMC mobile-originated calls' }),
  fmc: Type.String({ pattern: GATEWAY_PATTERN, default: 'fmc', description: "mobile operator's FMC gateway: calls ringing a manager's mobile" }),
  numberFormat: Type.Union([Type.Literal('e164'), Type.Literal('digits')], { default: 'e164', description: "'+73832000000' or '73832000000' in the dial string" }),
  ringSec: PositiveInt(60, { maximum: 600, description: 'how long outbound, FMC and internal calls ring' }),
}, { ...strict, default: {} })

export const FmcDestinationSourceSchema = Type.Union(fmcSources())

export const FmcSchema = Type.Object({
  destinationFrom: Type.Union(fmcSources(), { default: 'request-uri', description: 'where the FMC trunk puts the number the manager dialled' }),
  variable: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'channel variable holding the destination (destinationFrom: variable)' })),
  rejectCause: Type.String({ pattern: '^[A-Z_]{3,40}$', default: 'CALL_REJECTED', description: 'hangup cause for calls from mobiles that are not in the directory' }),
  mobileFirst: Type.Array(Type.String({ minLength: 1 }), { default: [], description: "employee ids whose calls ring their mobile through the FMC gateway" }),
}, { ...strict, default: {} })

// ---------------------------------------------------------------- recording, retention, stats, csat

export const RecordingSchema = Type.Object({
  format: Type.Union([Type.Literal('opus'), Type.Literal('mp3'), Type.Literal('wav')], { default: 'opus' }),
  bitrateKbps: PositiveInt(24, { maximum: 320 }),
  stereo: Type.Boolean({ default: true }),
  recordInternal: Type.Boolean({ default: true }),
  /**
   * Output format per policy (issue 8): the first policy whose conditions all match a
   * recording decides its format (and bitrate); none matches → `format`/`bitrateKbps`.
   * Ordered, first match wins (unlike retention, where the longest wins): a format is a
   * choice, not a minimum. Conditions are the recording's call facts.
   */
  formatPolicies: Type.Array(Type.Object({
    name: Type.Optional(Type.String({ maxLength: 100 })),
    callKind: Type.Optional(Type.Union([Type.Literal('inbound'), Type.Literal('outbound'), Type.Literal('internal'), Type.Literal('fmc')])),
    queue: Type.Optional(Id),
    segment: Type.Optional(Segment),
    format: Type.Union([Type.Literal('opus'), Type.Literal('mp3'), Type.Literal('wav')]),
    bitrateKbps: Type.Optional(Type.Integer({ minimum: 6, maximum: 320, description: 'opus/mp3 only; default: recording.bitrateKbps' })),
  }, strict), { default: [], maxItems: 100 }),
  /** The spool → object store pipeline (issue 8). */
  pipeline: Type.Object({
    concurrency: PositiveInt(2, { maximum: 64, description: 'recordings transcoded at once on this node' }),
    quietSec: PositiveInt(120, { maximum: 86400, description: 'a spooled WAV unchanged this long is treated as finished (crash recovery)' }),
    scanIntervalSec: PositiveInt(30, { maximum: 3600 }),
    maxRetryDelaySec: PositiveInt(60, { maximum: 3600, description: 'cap of the exponential retry delay while the store or Postgres is down' }),
    spoolWarnFreePercent: Type.Number({ minimum: 0, maximum: 100, default: 15 }),
    spoolCriticalFreePercent: Type.Number({ minimum: 0, maximum: 100, default: 5, description: 'below this, optional recordings are not started and /ready reports it' }),
  }, { ...strict, default: {} }),
}, { ...strict, default: {} })

/** Attended transfer (consultation) and three-way conference (issues 6, 8). */
export const TransfersSchema = Type.Object({
  holdMusic: Type.String({ minLength: 1, maxLength: 512, pattern: '^\\S+$', default: 'local_stream://moh', description: 'what a caller on hold hears (endless_playback): a file or a stream, no spaces' }),
  consultRingSec: PositiveInt(20, { maximum: 300, description: 'how long the colleague rings for a consultation or a conference before it is given up' }),
  conferenceProfile: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', default: 'default', description: 'mod_conference profile of three-way conferences' }),
  legPollMs: PositiveInt(1000, { minimum: 20, maximum: 60000, description: 'how often the legs of a consultation or conference are checked (their events do not reach the call socket)' }),
}, { ...strict, default: {} })

export const RetentionPolicySchema = Type.Object({
  name: Type.Optional(Type.String()),
  callKind: Type.Optional(Type.Union([Type.Literal('inbound'), Type.Literal('outbound'), Type.Literal('internal'), Type.Literal('fmc')])),
  queue: Type.Optional(Id),
  segment: Type.Optional(Segment),
  fmc: Type.Optional(Type.Boolean()),
  days: Type.Integer({ minimum: 1 }),
}, strict)

export const RetentionSchema = Type.Object({
  defaultDays: PositiveInt(365),
  minimumDays: PositiveInt(30),
  policies: Type.Array(RetentionPolicySchema, { default: [] }),
}, { ...strict, default: {} })

export const StatsSchema = Type.Object({
  serviceLevelSec: PositiveInt(20, { maximum: 3600 }),
  minCountedTalkSec: NonNegInt(15, { maximum: 3600 }),
  countInternal: Type.Boolean({ default: false }),
  /** Reports and the live "today" figures (issue 11). */
  timeZone: Type.Optional(Type.String({ minLength: 1, description: 'IANA zone of report days/hours; default: the routing.defaultOfficeId office (else the first office)' })),
  repeatWindowHours: PositiveInt(24, { maximum: 720, description: 'an inbound call is a repeat when the same number called within this many hours before' }),
  abandonBucketsSec: Type.Array(Type.Integer({ minimum: 1, maximum: 86400 }), { default: [10, 30, 60, 120], minItems: 1, maxItems: 12, description: 'ascending bucket edges of the abandon-time distribution' }),
  maxReportDays: PositiveInt(400, { maximum: 3660 }),
  maxHourlyReportDays: PositiveInt(62, { maximum: 400, description: 'longest range a groupBy=hour report may cover' }),
  liveIntervalSec: PositiveInt(2, { maximum: 60, description: 'the supervisor live snapshot is pushed this often (and on changes)' }),
}, { ...strict, default: {} })

/** Agents' screen pop (issue 11): what the card carries and how long the pop may wait for it. */
export const ScreenPopSchema = Type.Object({
  recentCalls: NonNegInt(10, { maximum: 100 }),
  recordings: NonNegInt(10, { maximum: 100 }),
  callbacks: NonNegInt(10, { maximum: 100 }),
  cardTimeoutMs: PositiveInt(500, { maximum: 10000, description: 'the offer goes out without the card when Postgres is slower than this' }),
  maxStreamsPerEmployee: PositiveInt(4, { maximum: 100 }),
}, { ...strict, default: {} })

export const CsatSchema = Type.Object({
  enabled: Type.Boolean({ default: false }),
  prompt: Type.String({ minLength: 1, default: 'csat.wav' }),
  scale: Type.Integer({ minimum: 2, maximum: 10, default: 10 }),
  timeoutMs: PositiveInt(8000, { maximum: 60000 }),
}, { ...strict, default: {} })

// ---------------------------------------------------------------- the file

/** Seed 000: only numbers the nightly import does not know go to the slow ERP, with a strict timeout. */
export const CrmSchema = Type.Object({
  liveLookup: Type.Optional(Type.Object({
    url: Type.String({ pattern: '^https?://', description: 'http(s) URL; GET <url>?phone=<E.164>' }),
    method: Type.Union([Type.Literal('GET'), Type.Literal('POST')], { default: 'GET' }),
    timeoutMs: PositiveInt(300, { maximum: 5000, description: 'the call never waits longer than this' }),
    concurrency: PositiveInt(8, { maximum: 256 }),
    cacheTtlSec: PositiveInt(300, { maximum: 86400 }),
    failureThreshold: PositiveInt(5, { maximum: 1000, description: 'consecutive failures that open the circuit breaker' }),
    coolDownSec: PositiveInt(30, { maximum: 3600 }),
  }, strict)),
}, { ...strict, default: {} })

// ---------------------------------------------------------------- webhooks, links, ERP export (issues 14, 7)

export const WEBHOOK_EVENTS = ['call.started', 'call.answered', 'call.ended', 'recording.stored', 'recording.failed'] as const

export const WebhookEndpointSchema = Type.Object({
  id: Id,
  url: Type.String({ minLength: 1, maxLength: 2048, description: 'http(s) URL the events are POSTed to' }),
  events: Type.Array(Type.Union(WEBHOOK_EVENTS.map((e) => Type.Literal(e))), { minItems: 1, uniqueItems: true }),
  secret: Type.Optional(Type.String({ minLength: 16, maxLength: 512, description: 'HMAC-SHA256 signing secret (at least 16 characters)' })),
  secretEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$', description: 'name of the environment variable holding the signing secret' })),
  enabled: Type.Boolean({ default: true }),
  format: Type.Union([Type.Literal('switchboard'), Type.Literal('erp')], { default: 'switchboard', description: "'erp': one flat per-call record (issue 7) instead of the event envelope" }),
  countedOnly: Type.Boolean({ default: false, description: 'call.ended only for calls that count in statistics (ERP)' }),
}, strict)

export const WebhooksSchema = Type.Object({
  maxAttempts: PositiveInt(8, { maximum: 100, description: 'attempts before a delivery becomes a dead letter' }),
  backoff: Type.Object({
    baseMs: PositiveInt(5_000, { maximum: 3_600_000, description: 'delay after the first failure; doubles per attempt' }),
    maxMs: PositiveInt(3_600_000, { maximum: 86_400_000 }),
  }, { ...strict, default: {} }),
  timeoutMs: PositiveInt(5_000, { maximum: 60_000, description: 'whole request: connect, send, answer' }),
  pollMs: PositiveInt(1_000, { maximum: 60_000, description: 'how often each node looks for due deliveries' }),
  concurrency: PositiveInt(4, { maximum: 64, description: 'deliveries in flight per node' }),
  keepDays: PositiveInt(30, { maximum: 3650, description: 'delivered events are removed from the outbox after this many days (dead letters stay until redelivered)' }),
  allowPrivateTargets: Type.Boolean({ default: false, description: 'allow loopback/private/link-local targets (otherwise only via allowList)' }),
  allowList: Type.Array(Type.String({ minLength: 1, maxLength: 255 }), { default: [], maxItems: 100, description: 'CIDRs or host names allowed although private' }),
  endpoints: Type.Array(WebhookEndpointSchema, { default: [], maxItems: 50 }),
}, { ...strict, default: {} })

export const LinksSchema = Type.Object({
  publicBaseUrl: Type.String({ pattern: '^https?://[^\\s]+$', default: 'http://127.0.0.1:8080', description: 'http(s) base URL of this Switchboard as the CRM reaches it' }),
  downloadTtlSec: PositiveInt(900, { maximum: 86_400, description: 'lifetime of signed download links' }),
  signingSecretEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$', description: 'environment variable holding the link signing key (default: a key generated once and kept in Postgres)' })),
}, { ...strict, default: {} })

export const ErpSchema = Type.Object({
  dailyCsv: Type.Object({
    enabled: Type.Boolean({ default: false }),
    directory: Type.String({ minLength: 1, default: './data/erp', description: 'where calls-YYYY-MM-DD.csv files are written' }),
    atLocalTime: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', default: '00:30', description: "'HH:mm' local time the previous day is exported" }),
    timeZone: Type.String({ minLength: 1, default: 'Europe/Moscow', description: 'IANA time zone of the export day' }),
  }, { ...strict, default: {} }),
}, { ...strict, default: {} })

// ---------------------------------------------------------------- click-to-call, callbacks (issues 13, 6)

/** Calls Switchboard originates: the employee's phone first (inbound ESL originate), then the client. */
export const ClickToCallSchema = Type.Object({
  employeeRingSec: PositiveInt(30, { maximum: 300, description: "how long the employee's phone rings before the attempt fails" }),
}, { ...strict, default: {} })

/** The callback worker: callback tasks (after hours, abandoned) are dialled once the office is open and an agent is ready. */
export const CallbacksSchema = Type.Object({
  enabled: Type.Boolean({ default: true }),
  maxAttempts: PositiveInt(3, { maximum: 50, description: 'dial attempts before a task is closed as failed' }),
  retryDelayMin: PositiveInt(30, { maximum: 10080, description: 'minutes between attempts when the client did not answer' }),
  pollIntervalSec: PositiveInt(15, { maximum: 3600, description: 'how often each node looks for due callbacks' }),
  reachedTalkSec: NonNegInt(10, { maximum: 3600, description: 'a task is done only when the client talked at least this long' }),
  defaultQueue: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'queue whose groups work callbacks that name no queue and no manager' })),
  staleAfterMin: PositiveInt(240, { maximum: 10080, description: 'an attempt still in_progress after this long (node died) is reopened' }),
}, { ...strict, default: {} })

/** Outbound call plans (issue 11): uploaded lists dialled progressively, one call per ready agent. */
export const CallPlansSchema = Type.Object({
  enabled: Type.Boolean({ default: true, description: 'false: plans can be uploaded and read, but no node dials them' }),
  pollIntervalSec: PositiveInt(5, { maximum: 3600, description: 'how often each node looks for rows to dial (an agent becoming ready also wakes it)' }),
  defaultMaxAttempts: PositiveInt(3, { maximum: 50, description: 'dial attempts per row when the plan does not say' }),
  defaultRetryDelayMin: NonNegInt(30, { maximum: 10080, description: 'minutes before a busy / unanswered row is tried again, when the plan does not say' }),
  maxConcurrentPerPlan: PositiveInt(10, { maximum: 1000, description: 'calls of one plan in progress at once, all nodes together' }),
  yieldToInbound: Type.Boolean({ default: true, description: 'an agent serving a queue with waiting inbound callers is left to the ACD' }),
  maxUploadBytes: PositiveInt(10 * 1024 * 1024, { maximum: 512 * 1024 * 1024, description: 'largest upload (CSV / JSON) in bytes' }),
  maxRows: PositiveInt(50_000, { maximum: 1_000_000, description: 'most rows in one plan' }),
  timeZone: Type.Optional(Type.String({ minLength: 1, description: "IANA zone of window times given without an offset ('2026-11-23 10:00'); default: the routing.defaultOfficeId office" })),
}, { ...strict, default: {} })

export const SwitchboardFileSchema = Type.Object({
  version: Type.Optional(Type.Integer({ minimum: 1 })),
  defaultRegion: Type.String({ pattern: '^[A-Z]{2}$', default: 'RU', description: 'ISO 3166 region for phone normalisation' }),
  calendar: CalendarSchema,
  offices: Type.Array(OfficeSchema, { minItems: 1 }),
  groups: Type.Array(GroupSchema, { default: [] }),
  dids: Type.Record(Type.String({ pattern: DID_KEY_PATTERN }), DidSchema, { ...strict, default: {} }),
  ivr: Type.Array(IvrMenuSchema, { default: [] }),
  queues: Type.Array(QueueSchema, { default: [] }),
  routing: RoutingSchema,
  callerId: Type.Optional(CallerIdSchema),
  gateways: GatewaysSchema,
  fmc: FmcSchema,
  recording: RecordingSchema,
  transfers: TransfersSchema,
  retention: RetentionSchema,
  stats: StatsSchema,
  screenPop: ScreenPopSchema,
  csat: CsatSchema,
  crm: CrmSchema,
  acd: AcdSchema,
  webhooks: WebhooksSchema,
  links: LinksSchema,
  erp: ErpSchema,
  clickToCall: ClickToCallSchema,
  callbacks: CallbacksSchema,
  callPlans: CallPlansSchema,
}, strict)

export type SwitchboardFile = Static<typeof SwitchboardFileSchema>
export type OfficeConfig = Static<typeof OfficeSchema>
export type CalendarConfig = Static<typeof CalendarSchema>
export type GroupConfig = Static<typeof GroupSchema>
export type DidConfig = Static<typeof DidSchema>
export type IvrMenuConfig = Static<typeof IvrMenuSchema>
export type IvrOptionConfig = Static<typeof IvrOptionSchema>
export type IvrAction = Static<typeof IvrActionSchema>
export type QueueConfig = Static<typeof QueueSchema>
export type QueueStrategy = Static<typeof QueueStrategySchema>
export type AcdConfig = Static<typeof AcdSchema>
export type CallPlansConfig = Static<typeof CallPlansSchema>
export type RoutingConfig = Static<typeof RoutingSchema>
export type CallerIdConfig = Static<typeof CallerIdSchema>
export type CallerIdRule = Static<typeof CallerIdRuleSchema>
export type RecordingConfig = Static<typeof RecordingSchema>
export type GatewaysConfig = Static<typeof GatewaysSchema>
export type FmcConfig = Static<typeof FmcSchema>
export type FmcDestinationSource = Static<typeof FmcDestinationSourceSchema>
export type RetentionConfig = Static<typeof RetentionSchema>
export type RetentionPolicyConfig = Static<typeof RetentionPolicySchema>
export type StatsConfig = Static<typeof StatsSchema>
export type ScreenPopConfig = Static<typeof ScreenPopSchema>
export type CsatConfig = Static<typeof CsatSchema>
export type WebhooksConfig = Static<typeof WebhooksSchema>
export type WebhookEndpointConfig = Static<typeof WebhookEndpointSchema>
export type WebhookEventName = typeof WEBHOOK_EVENTS[number]
export type LinksConfig = Static<typeof LinksSchema>
export type ErpConfig = Static<typeof ErpSchema>
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun'

// ---------------------------------------------------------------- validation

/**
 * '/queues/1/strategy' → 'queues[1].strategy'. Given the document, numeric keys of
 * objects (IVR digits) are quoted so they are not mistaken for array indexes.
 */
export function jsonPointerToPath(pointer: string, doc?: unknown): string {
  if (pointer === '' || pointer === '/') return '(root)'
  let out = ''
  let node: unknown = doc
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    const inArray = doc === undefined ? /^[0-9]+$/.test(seg) : Array.isArray(node)
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined
    if (inArray) out += `[${seg}]`
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`
    else out += `[${JSON.stringify(seg)}]`
  }
  return out
}

function literalChoices(schema: TSchema): string[] | null {
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf
  if (!Array.isArray(anyOf)) return null
  const out: string[] = []
  for (const member of anyOf) {
    const s = member as { const?: unknown; description?: unknown }
    if (typeof s.const === 'string') out.push(s.const)
    else if (typeof s.description === 'string') out.push(s.description)
    else return null
  }
  return out
}

function describeError(e: ValueError): string {
  const choices = literalChoices(e.schema)
  if (choices) return `must be one of ${choices.join(', ')} (got ${JSON.stringify(e.value)})`
  if (e.message === 'Unexpected property') return 'unknown field'
  const d = (e.schema as { description?: string }).description
  if ((e.schema as { pattern?: string }).pattern && d) return `must be ${d} (got ${JSON.stringify(e.value)})`
  return e.message.charAt(0).toLowerCase() + e.message.slice(1)
}

/** Stable order: unknown fields first would hide the real problem less often than the reverse; keep TypeBox order but drop union-member noise. */
function firstErrors(schema: TSchema, value: unknown, max = 5): ValueError[] {
  const out: ValueError[] = []
  for (const e of Value.Errors(schema, value)) {
    // Errors *inside* a union's members repeat the union's own error with a deeper path; keep the first per path.
    if (out.some(o => o.path === e.path)) continue
    out.push(e)
    if (out.length >= max) break
  }
  return out
}

/**
 * Validate a parsed config document: schema + defaults + semantic and referential checks.
 * Returns a new object (the input is not mutated) or throws ConfigError naming the field.
 */
export function validateSwitchboardFile(input: unknown): SwitchboardFile {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError('switchboard config: (root): must be an object', { path: '(root)' })
  }
  const doc = Value.Clone(input) as Record<string, unknown>
  Value.Default(SwitchboardFileSchema, doc)
  applyRecordDefaults(doc)
  const errors = firstErrors(SwitchboardFileSchema, doc)
  if (errors.length > 0) {
    const problems = errors.map(e => ({ path: jsonPointerToPath(e.path, doc), message: describeError(e) }))
    const first = problems[0]
    throw new ConfigError(`${first.path}: ${first.message}`, { problems })
  }
  const cfg = doc as unknown as SwitchboardFile
  const problems = semanticProblems(cfg)
  if (problems.length > 0) {
    throw new ConfigError(`${problems[0].path}: ${problems[0].message}`, { problems })
  }
  return cfg
}

/** Value.Default does not descend into Record (patternProperties) values: fill DIDs and IVR options here. */
function applyRecordDefaults(doc: Record<string, unknown>): void {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
  if (isObj(doc.dids)) for (const v of Object.values(doc.dids)) if (isObj(v)) Value.Default(DidSchema, v)
  if (Array.isArray(doc.ivr)) {
    for (const m of doc.ivr) {
      if (isObj(m) && isObj(m.options)) for (const v of Object.values(m.options)) if (isObj(v)) Value.Default(IvrOptionSchema, v)
    }
  }
}

export interface ConfigProblem { path: string; message: string }
type Problem = ConfigProblem

function parseHours(h: string): [number, number] {
  const [a, b] = h.split('-')
  const m = (s: string) => Number(s.slice(0, 2)) * 60 + Number(s.slice(3, 5))
  return [m(a), m(b)]
}

function isRealDate(iso: string): boolean {
  const d = new Date(`${iso}T00:00:00Z`)
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === iso
}

function checkCalendar(cal: CalendarConfig, path: string, p: Problem[]): void {
  cal.holidays.forEach((d, i) => { if (!isRealDate(d)) p.push({ path: `${path}.holidays[${i}]`, message: `${d} is not a calendar date` }) })
  cal.shortDays.forEach((d, i) => {
    if (!isRealDate(d.date)) p.push({ path: `${path}.shortDays[${i}].date`, message: `${d.date} is not a calendar date` })
    checkHours(d.hours, `${path}.shortDays[${i}].hours`, p)
  })
  cal.workdays.forEach((d, i) => {
    if (!isRealDate(d.date)) p.push({ path: `${path}.workdays[${i}].date`, message: `${d.date} is not a calendar date` })
    checkHours(d.hours, `${path}.workdays[${i}].hours`, p)
  })
}

function checkHours(h: string, path: string, p: Problem[]): void {
  if (h === 'closed') return
  const [a, b] = parseHours(h)
  if (b <= a) p.push({ path, message: `${h}: end must be after start (use 00:00-24:00 for round the clock)` })
}

function duplicates(ids: string[], path: string, p: Problem[]): void {
  const seen = new Set<string>()
  ids.forEach((id, i) => {
    if (seen.has(id)) p.push({ path: `${path}[${i}].id`, message: `duplicate id ${JSON.stringify(id)}` })
    seen.add(id)
  })
}

function semanticProblems(cfg: SwitchboardFile): Problem[] {
  const p: Problem[] = []
  const offices = new Set(cfg.offices.map(o => o.id))
  const queues = new Set(cfg.queues.map(q => q.id))
  const menus = new Set(cfg.ivr.map(m => m.id))
  const groups = new Set(cfg.groups.map(g => g.id))
  duplicates(cfg.offices.map(o => o.id), 'offices', p)
  duplicates(cfg.queues.map(q => q.id), 'queues', p)
  duplicates(cfg.ivr.map(m => m.id), 'ivr', p)
  duplicates(cfg.groups.map(g => g.id), 'groups', p)
  if (cfg.stats.timeZone !== undefined && !IANAZone.isValidZone(cfg.stats.timeZone)) p.push({ path: 'stats.timeZone', message: `${JSON.stringify(cfg.stats.timeZone)} is not a valid IANA time zone` })
  cfg.stats.abandonBucketsSec.forEach((v, i, a) => { if (i > 0 && v <= a[i - 1]) p.push({ path: `stats.abandonBucketsSec[${i}]`, message: 'must be greater than the previous edge' }) })

  const needQueue = (id: string | undefined, path: string) => {
    if (id !== undefined && !queues.has(id)) p.push({ path, message: `unknown queue ${JSON.stringify(id)}` })
  }
  const needMenu = (id: string | undefined, path: string) => {
    if (id !== undefined && !menus.has(id)) p.push({ path, message: `unknown IVR menu ${JSON.stringify(id)}` })
  }
  const needOffice = (id: string | undefined, path: string) => {
    if (id !== undefined && !offices.has(id)) p.push({ path, message: `unknown office ${JSON.stringify(id)}` })
  }

  checkCalendar(cfg.calendar, 'calendar', p)
  cfg.offices.forEach((o, i) => {
    if (!IANAZone.isValidZone(o.tz)) p.push({ path: `offices[${i}].tz`, message: `${JSON.stringify(o.tz)} is not a valid IANA time zone` })
    for (const [day, h] of Object.entries(o.hours)) if (h !== undefined) checkHours(h, `offices[${i}].hours.${day}`, p)
    checkCalendar(o.calendar, `offices[${i}].calendar`, p)
    needQueue(o.fallbackQueue, `offices[${i}].fallbackQueue`)
  })
  cfg.groups.forEach((g, i) => needOffice(g.officeId, `groups[${i}].officeId`))

  for (const [num, did] of Object.entries(cfg.dids)) {
    const path = `dids[${JSON.stringify(num)}]`
    needOffice(did.officeId, `${path}.officeId`)
    needMenu(did.ivrMenu, `${path}.ivrMenu`)
    needQueue(did.queue, `${path}.queue`)
  }
  const didDigits = new Map<string, string>()
  for (const num of Object.keys(cfg.dids)) {
    const digits = num.replace(/^\+/, '')
    if (didDigits.has(digits)) p.push({ path: `dids[${JSON.stringify(num)}]`, message: `same number as dids[${JSON.stringify(didDigits.get(digits))}]` })
    didDigits.set(digits, num)
  }

  const checkTarget = (action: IvrAction, target: string | undefined, path: string) => {
    if (action === 'queue' || action === 'menu' || action === 'extension') {
      if (target === undefined) { p.push({ path: `${path}.target`, message: `required for action ${action}` }); return }
    }
    if (action === 'queue') needQueue(target, `${path}.target`)
    if (action === 'menu') needMenu(target, `${path}.target`)
    if (action === 'extension' && target !== undefined && !/^[0-9]{2,8}$/.test(target)) {
      p.push({ path: `${path}.target`, message: `extension must be 2-8 digits (got ${JSON.stringify(target)})` })
    }
  }
  cfg.ivr.forEach((m, i) => {
    if (Object.keys(m.options).length === 0) p.push({ path: `ivr[${i}].options`, message: 'a menu needs at least one option' })
    for (const [digit, opt] of Object.entries(m.options)) checkTarget(opt.action, opt.target, `ivr[${i}].options[${JSON.stringify(digit)}]`)
    if (m.defaultAction) checkTarget(m.defaultAction.action, m.defaultAction.target, `ivr[${i}].defaultAction`)
  })

  cfg.queues.forEach((q, i) => {
    q.groupIds.forEach((g, j) => { if (!groups.has(g)) p.push({ path: `queues[${i}].groupIds[${j}]`, message: `unknown group ${JSON.stringify(g)}` }) })
    if (q.overflow.action === 'queue') {
      if (q.overflow.target === undefined) p.push({ path: `queues[${i}].overflow.target`, message: 'required for action queue' })
      else if (q.overflow.target === q.id) p.push({ path: `queues[${i}].overflow.target`, message: 'a queue cannot overflow into itself' })
      else needQueue(q.overflow.target, `queues[${i}].overflow.target`)
    }
    q.priorityRules.forEach((r, j) => {
      if ((r.segment === undefined) === (r.attribute === undefined)) p.push({ path: `queues[${i}].priorityRules[${j}]`, message: 'a rule names exactly one of segment, attribute' })
      if (r.equals !== undefined && r.attribute === undefined) p.push({ path: `queues[${i}].priorityRules[${j}].equals`, message: 'only for attribute rules' })
    })
  })

  const r = cfg.routing
  needOffice(r.defaultOfficeId, 'routing.defaultOfficeId')
  for (const [kind, q] of Object.entries(r.kindRoutes)) needQueue(q, `routing.kindRoutes.${kind}`)
  for (const [seg, q] of Object.entries(r.segmentQueues)) needQueue(q, `routing.segmentQueues.${seg}`)
  needQueue(r.blacklist.queue, 'routing.blacklist.queue')
  if (r.blacklist.enabled && r.blacklist.treatment === 'queue' && r.blacklist.queue === undefined) {
    p.push({ path: 'routing.blacklist.queue', message: 'required when treatment is queue' })
  }
  needQueue(r.afterHours.holidayQueue, 'routing.afterHours.holidayQueue')
  needQueue(cfg.callbacks.defaultQueue, 'callbacks.defaultQueue')
  if (cfg.fmc.destinationFrom === 'variable' && cfg.fmc.variable === undefined) {
    p.push({ path: 'fmc.variable', message: 'required when destinationFrom is variable' })
  }

  webhookProblems(cfg, p)

  const ret = cfg.retention
  if (ret.defaultDays < ret.minimumDays) p.push({ path: 'retention.defaultDays', message: `${ret.defaultDays} is below retention.minimumDays (${ret.minimumDays})` })
  ret.policies.forEach((pol, i) => {
    if (pol.days < ret.minimumDays) p.push({ path: `retention.policies[${i}].days`, message: `${pol.days} is below retention.minimumDays (${ret.minimumDays})` })
    needQueue(pol.queue, `retention.policies[${i}].queue`)
  })
  cfg.recording.formatPolicies.forEach((pol, i) => needQueue(pol.queue, `recording.formatPolicies[${i}].queue`))
  return p
}

function webhookProblems(cfg: SwitchboardFile, p: Problem[]): void {
  const w = cfg.webhooks
  w.allowList.forEach((entry, i) => {
    const problem = allowListEntryProblem(entry)
    if (problem) p.push({ path: `webhooks.allowList[${i}]`, message: problem })
  })
  if (w.backoff.maxMs < w.backoff.baseMs) p.push({ path: 'webhooks.backoff.maxMs', message: `must not be below webhooks.backoff.baseMs (${w.backoff.baseMs})` })
  duplicates(w.endpoints.map((e) => e.id), 'webhooks.endpoints', p)
  w.endpoints.forEach((e, i) => {
    const path = `webhooks.endpoints[${i}]`
    const problem = webhookUrlProblem(e.url, w)
    if (problem) p.push({ path: `${path}.url`, message: problem })
    if ((e.secret === undefined) === (e.secretEnv === undefined)) p.push({ path: `${path}.secret`, message: 'give exactly one of secret or secretEnv' })
    if (e.format === 'erp' && (e.events.length !== 1 || e.events[0] !== 'call.ended')) p.push({ path: `${path}.events`, message: "format erp sends per-call records: events must be [call.ended]" })
  })
  if (cfg.callPlans.timeZone !== undefined && !IANAZone.isValidZone(cfg.callPlans.timeZone)) p.push({ path: 'callPlans.timeZone', message: `${JSON.stringify(cfg.callPlans.timeZone)} is not a valid IANA time zone` })
  if (!IANAZone.isValidZone(cfg.erp.dailyCsv.timeZone)) p.push({ path: 'erp.dailyCsv.timeZone', message: `${JSON.stringify(cfg.erp.dailyCsv.timeZone)} is not a valid IANA time zone` })
  try { new URL(cfg.links.publicBaseUrl) } catch { p.push({ path: 'links.publicBaseUrl', message: 'is not a URL' }) }
}

/**
 * Check that every prompt file the config names exists under `promptsDir`
 * (tone_stream://, say: and other URL-like prompts are skipped). Returns the missing
 * ones as problems; throws nothing so the caller decides (warn at boot, fail in CI).
 */
export async function missingPromptFiles(cfg: SwitchboardFile, promptsDir: string): Promise<Problem[]> {
  const wanted: Array<{ path: string; file: string }> = []
  const add = (file: string | undefined, path: string) => {
    if (file === undefined || /^[a-z_]+:/.test(file)) return
    wanted.push({ path, file })
  }
  cfg.ivr.forEach((m, i) => { add(m.prompt, `ivr[${i}].prompt`); add(m.invalidPrompt, `ivr[${i}].invalidPrompt`) })
  add(cfg.routing.afterHours.prompt, 'routing.afterHours.prompt')
  if (cfg.csat.enabled) add(cfg.csat.prompt, 'csat.prompt')
  cfg.queues.forEach((q, i) => add(q.musicOnHold, `queues[${i}].musicOnHold`))
  // ACD prompts in use; their defaults are FreeSWITCH sound names (resolved by its
  // sound_prefix), so only prompts set to something else are looked for here.
  const custom = (file: string | undefined, stock: string) => (file === stock ? undefined : file)
  cfg.queues.forEach((q, i) => {
    if (q.announcePosition) add(custom(q.positionPrompt, 'ivr/ivr-you_are_number.wav'), `queues[${i}].positionPrompt`)
    if (q.announceExpectedWait) add(custom(q.expectedWaitPrompt, 'ivr/ivr-estimated_hold_time.wav'), `queues[${i}].expectedWaitPrompt`)
  })
  if (cfg.queues.some((q) => q.overflow.action === 'voicemail')) { add(custom(cfg.acd.voicemail.prompt, 'voicemail/vm-record_message.wav'), 'acd.voicemail.prompt'); add(cfg.acd.voicemail.thanksPrompt, 'acd.voicemail.thanksPrompt') }
  if (cfg.queues.some((q) => q.overflow.action === 'callback-offer')) { add(custom(cfg.acd.callbackOffer.prompt, 'ivr/ivr-callback_offer.wav'), 'acd.callbackOffer.prompt'); add(cfg.acd.callbackOffer.confirmPrompt, 'acd.callbackOffer.confirmPrompt') }
  const out: Problem[] = []
  for (const w of wanted) {
    const full = isAbsolute(w.file) ? w.file : join(promptsDir, w.file)
    try { await access(full, fsConstants.R_OK) } catch { out.push({ path: w.path, message: `prompt file not found: ${full}` }) }
  }
  return out
}

/** Read and validate a config file; `.yaml`/`.yml` are parsed as YAML, `.json` as JSON. */
export async function loadSwitchboardFile(path: string): Promise<SwitchboardFile> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read switchboard config ${path}: ${(err as Error).message}`, { file: path })
  }
  const ext = extname(path).toLowerCase()
  let doc: unknown
  try {
    if (ext === '.json') doc = JSON.parse(text)
    else if (ext === '.yaml' || ext === '.yml') doc = parseYaml(text)
    else throw new Error(`unsupported extension ${JSON.stringify(ext)} (use .yaml, .yml or .json)`)
  } catch (err) {
    throw new ConfigError(`cannot parse switchboard config ${path}: ${(err as Error).message}`, { file: path })
  }
  try {
    return validateSwitchboardFile(doc)
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${path}: ${err.message}`, { file: path, ...err.details })
    throw err
  }
}
