// The live event feed (newest first, one <li> per event) and alert toasts.

import { h, fmtTime, fmtDateTime, isToday, STATUS_LABELS } from "./ui.js";
import { SEVERITY_LABELS, reasonLabel } from "./alarms.js";

const FEED_LIMIT = 300;
const FLUSH_MS = 40;
// At most this many alert toasts at once; the rest collapse into one line that leads to
// the alarm queue (which lists every alert anyway).
const TOAST_LIMIT = 3;
const TOAST_MS = 9000;
const ARMING_LABELS = { disarmed: "disarmed", home: "armed (home)", away: "armed (away)" };

const ALERT_EVENTS = new Set(["events.alerts"]);

/** Words for one event; `who(id)` and `place(id)` give display names. */
export function describe(name, e, ctx) {
  const place = ctx.place(e.propertyId);
  const who = ctx.who;
  switch (name) {
    case "events.alerts": {
      const level = SEVERITY_LABELS[e.severity] || "High";
      if (e.reason && e.reason in { "unauthorized-entry": 1, "outside-schedule": 1, "visitor-while-armed": 1 }) {
        return `${level}: ${reasonLabel(e.reason).toLowerCase()} at ${place} by ${who(e.user)}`;
      }
      return `${level} alert at ${place}${e.reason ? `: ${e.reason}` : ""} (raised by ${who(e.user)})`;
    }
    case "events.alert-acknowledged":
      return `${who(e.user)} acknowledged alert #${e.alertId} at ${place}`;
    case "events.alert-assigned":
      return `${who(e.user)} assigned alert #${e.alertId} at ${place} to ${who(e.assignee)}`;
    case "events.alert-resolved":
      return `${who(e.user)} resolved alert #${e.alertId} at ${place}: “${e.note}”`;
    case "events.alert-escalated":
      return `Alert #${e.alertId} at ${place} is still open: escalated to level ${e.level}`;
    case "events.arming-changed":
      return `${who(e.user)} set ${place} ${ARMING_LABELS[e.mode] || e.mode}`;
    case "events.visits":
      return `${who(e.clientId)} visited ${place}`;
    case "events.scanned":
      return `Camera #${e.cameraId} scanned ${who(e.clientId)} at ${place}`;
    case "events.crimes":
      return `Crime #${e.crimeId} reported at ${place}${e.clientId ? ` by ${who(e.clientId)}` : ""}`;
    case "events.auth-entries":
      return e.authorized
        ? `${who(e.clientId)} entered ${place} (authorized)`
        : `${who(e.clientId)} entered ${place} without authorization`;
    case "events.property-added":
      return `${who(e.owner ?? e.clientId)} added “${e.location}” (#${e.id}), ${(STATUS_LABELS[e.status] || e.status || "pending").toLowerCase()}`;
    case "events.property-removed":
      return `${capital(place)} was removed from the site`;
    case "events.property-status-change":
      return `${capital(place)} is now ${(STATUS_LABELS[e.status] || e.status).toLowerCase()}`;
    case "events.property-equipment-change":
      if (e.equipmentType !== undefined && e.equipmentType !== null) {
        const type = ctx.equipmentType(e.equipmentType);
        return `${type}${e.description ? ` “${e.description}”` : ""} installed at ${place}`;
      }
      return `Equipment #${e.equipmentId} removed from ${place}`;
    case "events.requested-remove-property":
      return `Removal requested for ${place}`;
    case "events.approved-remove-property":
      return `Removal of ${place} approved`;
    case "events.drone-dispatched":
      return `Drone #${e.droneId} dispatched to ${place}`;
    case "events.drone-recalled":
      return `Drone #${e.droneId} recalled from ${place}`;
    case "events.property-coordinates-changed":
      return `${capital(place)} moved to x ${e.x} m, y ${e.y} m`;
    case "events.property-size-changed":
      return `${capital(place)} resized to ${e.width} × ${e.height} m`;
    case "events.property-tier-changed":
      return `${capital(place)} is now on the ${ctx.tier(e.tier)} tier`;
    default:
      return `${name.replace(/^events\./, "").replace(/-/g, " ")}${e.propertyId !== undefined ? ` at ${place}` : ""}`;
  }
}

function capital(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function toneOf(name, e) {
  if (name === "events.alerts" || name === "events.crimes") return "alert";
  if (name === "events.auth-entries" && !e.authorized) return "alert";
  if (name === "events.alert-escalated") return "alert";
  if (name === "events.alert-acknowledged" || name === "events.alert-resolved" || name === "events.drone-recalled") return "ok";
  if (name.includes("remove")) return "warn";
  if (name === "events.drone-dispatched") return "drone";
  return "info";
}

export class Feed {
  constructor({ list, summary, alertsOnly, toasts, ctx, onFocus, onMore }) {
    this.onMore = onMore;
    this.list = list;
    this.summary = summary;
    this.toasts = toasts;
    this.ctx = ctx;
    this.onFocus = onFocus;
    this.count = 0;
    this.pending = [];
    alertsOnly?.addEventListener("change", () => list.classList.toggle("alerts-only", alertsOnly.checked));
    // Escape on a toast (its buttons are in the tab order) dismisses it
    toasts?.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape") return;
      ev.target.closest(".toast")?.remove();
    });
    list.addEventListener("click", (ev) => {
      const item = ev.target.closest("li[data-property-id]");
      if (item) this.onFocus(Number(item.dataset.propertyId));
    });
    list.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      const item = ev.target.closest("li[data-property-id]");
      if (item) {
        ev.preventDefault();
        this.onFocus(Number(item.dataset.propertyId));
      }
    });
  }

  _propertyIdOf(name, e) {
    if (e.propertyId !== undefined && e.propertyId !== null) return Number(e.propertyId);
    if (name === "events.property-added" && e.id !== undefined) return Number(e.id);
    return null;
  }

  /** Add one event line. `history` lines come from get-events (no toast). */
  add(name, e, { history = false, replay = false } = {}) {
    const id = Number(e.eventId);
    const pid = this._propertyIdOf(name, e);
    const timeText = isToday(e.timestamp) ? fmtTime(e.timestamp) : fmtDateTime(e.timestamp);
    const text = h("span", { class: "feed-text" }, describe(name, e, this.ctx));
    const item = h(
      "li",
      {
        class: `feed-item tone-${toneOf(name, e)}${history ? " is-history" : ""}${replay ? " is-replay" : ""}`,
        dataset: { event: name, eventId: Number.isFinite(id) ? id : "" },
        tabindex: pid !== null ? "0" : null,
        title: pid !== null ? "Show on the map" : null,
      },
      h("time", { datetime: e.timestamp || "" }, timeText),
      text,
    );
    if (pid !== null) item.dataset.propertyId = pid;
    if (ALERT_EVENTS.has(name) || (name === "events.auth-entries" && !e.authorized)) item.dataset.alert = "1";
    this._queue(item, id, e);

    // names of people may arrive later: re-word the line once known
    const ids = [e.user, e.clientId, e.owner].filter((v) => v !== undefined && v !== null);
    const unknown = ids.filter((uid) => this.ctx.names.label(uid) === String(uid));
    let toastText = null;
    if (!history && !replay && name === "events.alerts") toastText = this.toast(e, describe(name, e, this.ctx), pid);
    if (unknown.length) {
      Promise.all(unknown.map((uid) => this.ctx.names.resolve(uid))).then(() => {
        text.textContent = describe(name, e, this.ctx);
        if (toastText) toastText.textContent = text.textContent;
      });
    }
    return item;
  }

  /** Lines are put into the list in batches (every FLUSH_MS): one layout per batch, not per event. */
  _queue(item, id, e) {
    this.pending.push([id, item]);
    this.count += 1;
    this._latest = e;
    if (!this._flushTimer) this._flushTimer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush() {
    clearTimeout(this._flushTimer);
    this._flushTimer = null;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    batch.sort((a, b) => b[0] - a[0]); // newest first
    const top = Number(this.list.firstElementChild?.dataset.eventId ?? -Infinity);
    const frag = document.createDocumentFragment();
    for (const [id, item] of batch) {
      if (!Number.isFinite(id) || id > top) frag.append(item);
      else this._insert(item, id); // older than what is shown (history): find its place
    }
    this.list.prepend(frag);
    this._trim();
    this._updateSummary(this._latest);
  }

  _insert(item, id) {
    if (!Number.isFinite(id)) {
      this.list.prepend(item);
      return;
    }
    let before = this.list.firstElementChild;
    while (before && Number(before.dataset.eventId) > id) before = before.nextElementSibling;
    this.list.insertBefore(item, before);
  }

  _trim() {
    while (this.list.childElementCount > FEED_LIMIT) this.list.lastElementChild.remove();
  }

  _updateSummary(e) {
    if (!this.summary) return;
    this.summary.textContent = `${this.count} event${this.count === 1 ? "" : "s"} · latest ${fmtTime(e.timestamp)}`;
  }

  toast(e, text, pid) {
    if (!this.toasts) return null;
    if (this.toasts.querySelectorAll(".toast-alert").length >= TOAST_LIMIT) {
      // a burst: count the rest in one line instead of flooding the screen
      this._more = (this._more || 0) + 1;
      if (!this._moreNode || !this._moreNode.isConnected) {
        this._moreNode = h("button", { type: "button", class: "toast toast-more" });
        this._moreNode.addEventListener("click", () => {
          this._moreNode.remove();
          this._more = 0;
          this.onMore?.();
        });
        this.toasts.append(this._moreNode);
      }
      this._moreNode.textContent = `+ ${this._more} more alert${this._more === 1 ? "" : "s"} in the alarm queue`;
      clearTimeout(this._moreTimer);
      this._moreTimer = setTimeout(() => {
        this._moreNode?.remove();
        this._more = 0;
      }, TOAST_MS);
      return null;
    }
    const body = h("span", {}, text);
    const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
    const show = pid !== null ? h("button", { type: "button", class: "btn btn-small btn-light" }, "Show") : null;
    const node = h(
      "div",
      { class: "toast toast-alert", role: "alert", dataset: { eventId: e.eventId ?? "", severity: e.severity || "high" } },
      h("div", { class: "toast-body" }, h("strong", {}, `${SEVERITY_LABELS[e.severity] || "High"} alert`), body),
      show,
      close,
    );
    const remove = () => node.remove();
    close.addEventListener("click", remove);
    show?.addEventListener("click", () => {
      this.onFocus(pid);
      remove();
    });
    this.toasts.append(node);
    setTimeout(remove, TOAST_MS);
    return body;
  }
}
