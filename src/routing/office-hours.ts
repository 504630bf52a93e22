/**
 * Is an office open at an instant? Weekly hours in the office's IANA zone, overridden by
 * the production calendar: holidays close the day, shortened days and transferred working
 * days (a Saturday made a workday) bring their own hours. Pure; luxon does the zones.
 */
import { DateTime } from 'luxon'
import type { CalendarConfig, OfficeConfig, Weekday } from '../config/switchboard-file.ts'

const WEEKDAYS: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']

export type DayType = 'regular' | 'holiday' | 'short' | 'transferred-workday'

export interface OfficeStatus {
  open: boolean
  /** Local wall-clock time in the office, e.g. '2025-03-07 17:30 Fri'. */
  local: string
  localDate: string
  dayType: DayType
  /** Hours that applied that day, or 'closed'. */
  hours: string
}

interface CompiledCalendar {
  holidays: Set<string>
  shortDays: Map<string, string>
  workdays: Map<string, string>
}

const compiled = new WeakMap<CalendarConfig, CompiledCalendar>()
function compile(cal: CalendarConfig): CompiledCalendar {
  let c = compiled.get(cal)
  if (!c) {
    c = {
      holidays: new Set(cal.holidays),
      shortDays: new Map(cal.shortDays.map(d => [d.date, d.hours])),
      workdays: new Map(cal.workdays.map(d => [d.date, d.hours])),
    }
    compiled.set(cal, c)
  }
  return c
}

/** The national calendar plus the office's own days (office entries win on conflicts). */
export function mergeCalendars(base: CalendarConfig, extra: CalendarConfig | undefined): CalendarConfig {
  if (!extra) return base
  const byDate = <T extends { date: string }>(a: T[], b: T[]) => [...new Map([...a, ...b].map(d => [d.date, d])).values()]
  return {
    holidays: [...new Set([...base.holidays, ...extra.holidays])],
    shortDays: byDate(base.shortDays, extra.shortDays),
    workdays: byDate(base.workdays, extra.workdays),
  }
}

function minutes(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5))
}

function within(hours: string, minuteOfDay: number): boolean {
  if (hours === 'closed') return false
  const dash = hours.indexOf('-')
  return minuteOfDay >= minutes(hours.slice(0, dash)) && minuteOfDay < minutes(hours.slice(dash + 1))
}

/**
 * The last answer per office: the status depends only on the office, the calendar and the
 * minute (zone offsets are whole minutes), and luxon's zone conversion costs ~25 µs — more
 * than the rest of a routing decision. Calls of the same minute share it.
 */
const lastStatus = new WeakMap<object, { calendar: CalendarConfig; minute: number; key: string; status: OfficeStatus }>()

export function officeStatusAt(office: Pick<OfficeConfig, 'tz' | 'hours'>, calendar: CalendarConfig, instant: Date): OfficeStatus {
  const minute = Math.floor(instant.getTime() / 60_000)
  // The zone and hours as they are now (an office edited in place must not get a stale answer).
  let key = office.tz
  for (const d of WEEKDAYS) key += `|${office.hours[d] ?? ''}`
  const last = lastStatus.get(office)
  if (last && last.minute === minute && last.calendar === calendar && last.key === key) return { ...last.status }
  const status = computeOfficeStatus(office, calendar, instant)
  lastStatus.set(office, { calendar, minute, key, status: { ...status } })
  return status
}

function computeOfficeStatus(office: Pick<OfficeConfig, 'tz' | 'hours'>, calendar: CalendarConfig, instant: Date): OfficeStatus {
  const local = DateTime.fromJSDate(instant, { zone: office.tz })
  if (!local.isValid) throw new RangeError(`invalid zone ${office.tz}`)
  const date = local.toISODate()!
  const weekday = WEEKDAYS[local.weekday - 1]
  const cal = compile(calendar)
  let dayType: DayType = 'regular'
  let hours: string
  if (cal.holidays.has(date)) {
    dayType = 'holiday'
    hours = 'closed'
  } else if (cal.shortDays.has(date)) {
    dayType = 'short'
    hours = cal.shortDays.get(date)!
  } else if (cal.workdays.has(date)) {
    dayType = 'transferred-workday'
    hours = cal.workdays.get(date)!
  } else {
    hours = office.hours[weekday] ?? 'closed'
  }
  const m = local.hour * 60 + local.minute
  return {
    open: within(hours, m),
    local: `${date} ${local.toFormat('HH:mm')} ${weekday}`,
    localDate: date,
    dayType,
    hours,
  }
}

/** True when the office takes calls at `instant`. */
export function officeOpenAt(office: Pick<OfficeConfig, 'tz' | 'hours'>, calendar: CalendarConfig, instant: Date): boolean {
  return officeStatusAt(office, calendar, instant).open
}
