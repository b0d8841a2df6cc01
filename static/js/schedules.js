// Allowed users' hours (contract section 14): a readable summary of a person's
// weekly windows and end date, and the small editor in the allowed-users list.
// Times are the site's wall clock (PROPSEC_TIMEZONE), shown and entered as such.

import { h, runAction, msgLine } from "./ui.js";

const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]; // ISO weekday 1..7
const NEW_WINDOW = { days: [1, 2, 3, 4, 5], from: "08:00", to: "18:00" };

function dayList(days) {
  const sorted = [...days].sort((a, b) => a - b);
  if (sorted.length === 7) return "Every day";
  if (sorted.join() === "1,2,3,4,5") return "Mon–Fri";
  if (sorted.join() === "6,7") return "Weekends";
  return sorted.map((d) => DAY_NAMES[d - 1]).join(", ");
}

export function describeWindow(w) {
  const overnight = w.to <= w.from;
  return `${dayList(w.days)} ${w.from}–${w.to}${overnight ? " (next day)" : ""}`;
}

/** The parts of an instant on the site's clock: {date: "YYYY-MM-DD", time: "HH:MM"}. */
function siteClock(iso, zone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

/** "Any time", or the windows and the end, in words. */
export function describeLimits({ schedule, validUntil }, zone) {
  const parts = [];
  if (schedule && schedule.length) parts.push(schedule.map(describeWindow).join("; "));
  if (validUntil) {
    const { date, time } = siteClock(validUntil, zone);
    const past = new Date(validUntil) <= new Date();
    parts.push(`${past ? "expired" : "until"} ${date} ${time}`);
  }
  return parts.length ? parts.join(" · ") : "Any time";
}

/** The editor of one person's hours; onSave({schedule, validUntil}) returns a promise. */
export class ScheduleEditor {
  constructor(person, zone, { onSave, onCancel }) {
    this.zone = zone;
    this.rows = h("div", { class: "schedule-windows" });
    for (const w of person.schedule || []) this._addRow(w);
    const addWindow = h("button", { type: "button", class: "btn btn-small btn-light", dataset: { action: "add-window" } }, "+ Add hours");
    addWindow.addEventListener("click", () => this._addRow(NEW_WINDOW).querySelector("input").focus());
    const until = siteClock(person.validUntil || new Date().toISOString(), zone);
    this.until = h("input", { type: "datetime-local", name: "validUntil", "aria-label": "Allowed until (site time)", value: person.validUntil ? `${until.date}T${until.time}` : "" });
    const save = h("button", { type: "submit", class: "btn btn-small btn-primary", dataset: { action: "save-schedule" } }, "Save hours");
    const cancel = h("button", { type: "button", class: "btn btn-small btn-light" }, "Cancel");
    const msg = msgLine();
    this.el = h("form", { class: "schedule-editor", "aria-label": "Allowed hours" },
      h("p", { class: "muted small" }, `Site time (${zone}). No hours: any time. A window that ends before it starts runs past midnight.`),
      this.rows,
      h("div", { class: "row" }, addWindow),
      h("label", { class: "field schedule-until" }, h("span", {}, "Allowed until (empty: no end)"), this.until),
      h("div", { class: "row" }, save, cancel), msg);
    cancel.addEventListener("click", () => onCancel());
    this.el.addEventListener("submit", (ev) => {
      ev.preventDefault();
      runAction(save, msg, () => onSave(this.value()));
    });
  }

  focus() {
    (this.el.querySelector("input") || this.el).focus();
  }

  _addRow(w) {
    const days = h("div", { class: "schedule-days", role: "group", "aria-label": "Days" },
      DAY_NAMES.map((name, i) => h("label", { class: "day-toggle" },
        h("input", { type: "checkbox", name: "day", value: String(i + 1), checked: w.days.includes(i + 1) }), name)));
    const from = h("input", { type: "time", name: "from", value: w.from, "aria-label": "From", required: true });
    const to = h("input", { type: "time", name: "to", value: w.to, "aria-label": "To", required: true });
    const remove = h("button", { type: "button", class: "btn btn-small btn-light", "aria-label": "Remove these hours" }, "×");
    const row = h("fieldset", { class: "schedule-window" }, days, h("div", { class: "row" }, from, "–", to, remove));
    remove.addEventListener("click", () => row.remove());
    this.rows.append(row);
    return row;
  }

  /** What add-allowed-user gets: the windows (null for none) and the end on the site clock. */
  value() {
    const schedule = [...this.rows.querySelectorAll(".schedule-window")].map((row) => ({
      days: [...row.querySelectorAll("input[name=day]:checked")].map((c) => Number(c.value)),
      from: row.querySelector("input[name=from]").value.slice(0, 5),
      to: row.querySelector("input[name=to]").value.slice(0, 5),
    }));
    return { schedule: schedule.length ? schedule : null, validUntil: this.until.value || null };
  }
}
