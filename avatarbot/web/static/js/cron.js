// Five-field cron (minute hour day-of-month month day-of-week): parse, describe, next runs.
// Next runs are computed as wall-clock times in the schedule's own time zone.

const MACROS = {
  "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
};
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: MONTHS, offset: 1 },
  { name: "weekday", min: 0, max: 7, names: DAYS, offset: 0 },
];

function parseValue(text, spec) {
  const lower = text.toLowerCase();
  if (spec.names && spec.names.includes(lower)) return spec.names.indexOf(lower) + spec.offset;
  if (!/^\d+$/.test(text)) throw new Error(`${spec.name}: "${text}"`);
  const n = Number(text);
  if (n < spec.min || n > spec.max) throw new Error(`${spec.name}: ${n} (${spec.min}-${spec.max})`);
  return n;
}

function parseField(text, spec) {
  const values = new Set();
  for (const part of text.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new Error(`${spec.name}: step "${stepText}"`);
    let lo, hi;
    if (range === "*") [lo, hi] = [spec.min, spec.max];
    else if (range.includes("-")) {
      const [a, b] = range.split("-");
      [lo, hi] = [parseValue(a, spec), parseValue(b, spec)];
      if (lo > hi) throw new Error(`${spec.name}: ${range}`);
    } else {
      lo = parseValue(range, spec);
      hi = stepText === undefined ? lo : spec.max;
    }
    for (let v = lo; v <= hi; v += step) values.add(spec.name === "weekday" && v === 7 ? 0 : v);
  }
  return values;
}

/** {fields: [Set...], any: {day, weekday}} or throws Error with a short reason. */
export function parseCron(expr) {
  const text = (MACROS[expr.trim().toLowerCase()] || expr).trim();
  const parts = text.split(/\s+/);
  if (parts.length !== 5) throw new Error("5 fields: minute hour day month weekday");
  const fields = parts.map((p, i) => parseField(p, FIELDS[i]));
  return { parts, fields, anyDay: parts[2] === "*", anyWeekday: parts[4] === "*" };
}

function matchesDay(cron, d) {
  const dom = cron.fields[2].has(d.getUTCDate());
  const dow = cron.fields[4].has(d.getUTCDay());
  // Classic cron: when both day fields are restricted, either one matching is enough.
  if (!cron.anyDay && !cron.anyWeekday) return dom || dow;
  return dom && dow;
}

/** The wall-clock time of `instant` in `timeZone`, as a Date whose UTC fields hold it. */
function wallClock(instant, timeZone) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit",
  }).formatToParts(instant);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return new Date(Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute")));
}

/** The next `count` run times, as "YYYY-MM-DD HH:MM" wall-clock strings in `timeZone`. */
export function nextRuns(expr, timeZone = "UTC", count = 5, now = new Date()) {
  const cron = parseCron(expr);
  const d = wallClock(now, timeZone);
  d.setUTCMinutes(d.getUTCMinutes() + 1);
  const out = [];
  const limit = Date.UTC(d.getUTCFullYear() + 5, 0, 1);
  while (out.length < count && d.getTime() < limit) {
    if (!cron.fields[3].has(d.getUTCMonth() + 1)) {
      d.setUTCMonth(d.getUTCMonth() + 1, 1);
      d.setUTCHours(0, 0);
    } else if (!matchesDay(cron, d)) {
      d.setUTCDate(d.getUTCDate() + 1);
      d.setUTCHours(0, 0);
    } else if (!cron.fields[1].has(d.getUTCHours())) {
      d.setUTCHours(d.getUTCHours() + 1, 0);
    } else if (!cron.fields[0].has(d.getUTCMinutes())) {
      d.setUTCMinutes(d.getUTCMinutes() + 1);
    } else {
      out.push(d.toISOString().slice(0, 16).replace("T", " "));
      d.setUTCMinutes(d.getUTCMinutes() + 1);
    }
  }
  return out;
}

const pad = (n) => String(n).padStart(2, "0");

/** A short human sentence for common shapes; falls back to the field-by-field reading. */
export function describeCron(expr, lang = "en") {
  const { parts } = parseCron(expr);
  const [mi, ho, dom, mo, dow] = parts;
  const zh = lang === "zh";
  const simple = (s) => /^\d+$/.test(s);
  const dayNames = zh ? ["周日", "周一", "周二", "周三", "周四", "周五", "周六", "周日"]
    : ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
  const dayName = (s) => (simple(s) ? dayNames[Number(s)] : dayNames[DAYS.indexOf(s.toLowerCase())] || s);
  let when;
  if (simple(mi) && simple(ho)) when = `${pad(ho)}:${pad(mi)}`;
  else if (simple(mi) && ho === "*") when = zh ? `每小时第 ${mi} 分` : `every hour at minute ${mi}`;
  else if (/^\*\/\d+$/.test(mi) && ho === "*") when = zh ? `每 ${mi.slice(2)} 分钟` : `every ${mi.slice(2)} minutes`;
  else if (mi === "*" && ho === "*") when = zh ? "每分钟" : "every minute";
  else when = zh ? `分 ${mi}，时 ${ho}` : `minute ${mi}, hour ${ho}`;
  let days = "";
  if (dom === "*" && mo === "*" && dow === "*") days = zh ? "每天" : "every day";
  else if (dom === "*" && mo === "*" && dow === "1-5") days = zh ? "工作日" : "on weekdays";
  else if (dom === "*" && mo === "*" && /^[\w]+$/.test(dow)) days = zh ? `每${dayName(dow)}` : `every ${dayName(dow)}`;
  else if (dom === "*" && mo === "*") days = zh ? `星期 ${dow}` : `on weekdays ${dow}`;
  else if (simple(dom) && mo === "*" && dow === "*") days = zh ? `每月 ${dom} 日` : `on day ${dom} of every month`;
  else days = zh ? `日 ${dom}，月 ${mo}，星期 ${dow}` : `day ${dom}, month ${mo}, weekday ${dow}`;
  if (zh) return `${days} ${when}`;
  return simple(mi) && simple(ho) ? `${days[0].toUpperCase()}${days.slice(1)} at ${when}` : `${when[0].toUpperCase()}${when.slice(1)}, ${days}`;
}
