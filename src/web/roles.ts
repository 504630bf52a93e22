/** What each role may see and do in the console — mirrors the API's route roles (the API decides; this only hides what would be refused). */
export type Role = 'agent' | 'qa' | 'supervisor' | 'legal' | 'admin'

export interface Principal { userId: string; name: string; role: Role; employeeId: string | null }

const CAPABILITIES = {
  /** GET /api/recordings, /audio, /context */
  recordings: ['qa', 'supervisor', 'legal', 'admin'],
  /** GET/PUT /api/recordings/:id/qa */
  qaReview: ['qa', 'supervisor', 'admin'],
  /** POST /api/legal-holds, DELETE /api/legal-holds/:id */
  manageHolds: ['legal'],
  /** GET /api/legal-holds (the holds covering a recording) */
  viewHolds: ['legal', 'admin'],
  /** POST /api/exports */
  exportBundle: ['legal', 'admin'],
  /** GET /api/recordings/:id/audit */
  auditTrail: ['legal', 'admin'],
  /** POST /api/recordings/:id/verify */
  verify: ['qa', 'supervisor', 'legal', 'admin'],
  /** GET /api/stats/live, /api/stats/report */
  liveView: ['supervisor', 'admin'],
  dashboard: ['supervisor', 'admin'],
  /** GET /api/screen-pop/stream: an agent's own calls */
  screenPop: ['agent'],
  /** GET /api/clients/:id/card, /api/clients/by-phone/:phone */
  clientCard: ['agent', 'qa', 'supervisor', 'legal', 'admin'],
} as const satisfies Record<string, readonly Role[]>

export type Capability = keyof typeof CAPABILITIES

export function can(p: Pick<Principal, 'role'> | null | undefined, what: Capability): boolean {
  return !!p && (CAPABILITIES[what] as readonly Role[]).includes(p.role)
}

/** Where "/console/" takes each role. */
export function homeOf(p: Pick<Principal, 'role'>): string {
  if (can(p, 'liveView')) return '/console/live'
  if (can(p, 'recordings')) return '/console/recordings'
  return '/console/screen-pop'
}
