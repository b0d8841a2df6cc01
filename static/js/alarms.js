// The alarm console: #alert-queue (every unresolved alert the user may see, most
// severe first, then oldest), the controls on an alert (acknowledge, assign,
// resolve with a note) shared with the property panel, and the alarm sound.
//
// The queue reads the store's alerts, which get-open-alerts loads and events keep
// current; an action only sends its query: what it changes comes back as an event,
// so every open dashboard (this one included) shows the same thing.

import { h, clear, runAction, msgLine, fmtTime, fmtDateTime, isToday } from "./ui.js";
import { SEVERITIES, severityRank } from "./store.js";

const RENDER_LIMIT = 1000; // list items drawn; the count says how many there are
const SOUND_SEVERITIES = new Set(["high", "critical"]);
const MUTE_KEY = "propsec.alarms.muted";

export const SEVERITY_LABELS = { low: "Low", medium: "Medium", high: "High", critical: "Critical" };
export const REASON_LABELS = {
  "unauthorized-entry": "Unauthorized entry",
  "outside-schedule": "Entry outside allowed hours",
  "visitor-while-armed": "Visitor while armed away",
};

export function reasonLabel(reason) {
  return REASON_LABELS[reason] || reason || "Alert raised by hand";
}

export function severityBadge(severity) {
  return h("span", { class: "sev-badge", dataset: { severity } }, SEVERITY_LABELS[severity] || severity);
}

// Forms a user has open on an alert, and what they typed, by alert id: the controls are
// drawn again whenever an event about the property arrives, and that must not close a
// half-written resolution note (or lose it) under the user's hands.
const DRAFTS = new Map(); // alertId -> { form: "resolve" | "assign", text }

/**
 * The action row of one unresolved alert: acknowledge (while open; owners see it
 * disabled, only security staff may), and for staff and admins assign and resolve,
 * each opening a small form in place. ctx: {conn, role, userId, names}.
 */
export function alertControls(alert, ctx) {
  const staff = ctx.role === "staff" || ctx.role === "admin";
  const msg = msgLine();
  const row = h("div", { class: "row alarm-actions" });
  const forms = h("div", { class: "alarm-forms" });
  const wrap = h("div", { class: "alarm-controls" }, row, forms, msg);
  const send = (btn, query, data, done) => runAction(btn, msg, () => ctx.conn.query(query, { alertId: alert.id, ...data }).then(done));

  if (alert.state === "open") {
    const ack = h("button", {
      type: "button", class: "btn btn-small", dataset: { action: "acknowledge" }, disabled: !staff,
      title: staff ? "Acknowledge: someone is on it" : "Security staff acknowledge alerts",
    }, "Acknowledge");
    if (staff) ack.addEventListener("click", () => send(ack, "acknowledge-alert", {}));
    row.append(ack);
  }
  if (!staff) return wrap;

  const assign = h("button", { type: "button", class: "btn btn-small btn-light", dataset: { action: "assign" }, "aria-expanded": "false" }, "Assign");
  const resolve = h("button", { type: "button", class: "btn btn-small btn-ok", dataset: { action: "resolve" }, "aria-expanded": "false" }, "Resolve…");
  row.append(assign, resolve);

  const open = (btn, form, focus) => {
    const opening = form.hidden;
    for (const f of forms.children) f.hidden = true;
    for (const b of row.querySelectorAll("[aria-expanded]")) b.setAttribute("aria-expanded", "false");
    form.hidden = !opening;
    btn.setAttribute("aria-expanded", String(opening));
    if (opening) {
      DRAFTS.set(alert.id, { form: form.dataset.form, text: focus.value ?? "" });
      focus.focus();
    } else {
      DRAFTS.delete(alert.id);
    }
  };
  const keep = (field) => field.addEventListener("input", () => {
    const draft = DRAFTS.get(alert.id);
    if (draft) draft.text = field.value;
  });

  // resolve with a note (required: what happened is the record)
  const note = h("textarea", { name: "note", rows: "2", maxlength: "2000", required: true, placeholder: "What happened? (required)", "aria-label": "Resolution note" });
  const confirm = h("button", { type: "submit", class: "btn btn-small btn-ok", dataset: { action: "confirm-resolve" } }, "Resolve");
  const cancel = h("button", { type: "button", class: "btn btn-small btn-light" }, "Cancel");
  const resolveForm = h("form", { class: "alarm-form resolve-form", hidden: true, dataset: { form: "resolve" } }, note, h("div", { class: "row" }, confirm, cancel));
  keep(note);
  resolveForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = note.value.trim();
    if (!text) {
      note.focus();
      return;
    }
    send(confirm, "resolve-alert", { note: text }, () => DRAFTS.delete(alert.id));
  });
  cancel.addEventListener("click", () => open(resolve, resolveForm, resolve));
  resolve.addEventListener("click", () => open(resolve, resolveForm, note));

  // assign to a staff member: to me, or anyone by id (the server checks the role)
  const who = h("input", { type: "text", name: "assignee", placeholder: "User id", "aria-label": "Assign to (user id)", autocomplete: "off", value: alert.assignee || "" });
  const toMe = h("button", { type: "button", class: "btn btn-small", dataset: { action: "assign-me" } }, "To me");
  const assignBtn = h("button", { type: "submit", class: "btn btn-small btn-light", dataset: { action: "confirm-assign" } }, "Assign");
  const assignForm = h("form", { class: "alarm-form assign-form", hidden: true, dataset: { form: "assign" } }, h("div", { class: "row" }, who, assignBtn, toMe));
  keep(who);
  assignForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (who.value.trim()) send(assignBtn, "assign-alert", { userId: who.value.trim() }, () => open(assign, assignForm, assign));
  });
  toMe.addEventListener("click", () => send(toMe, "assign-alert", { userId: ctx.userId }, () => open(assign, assignForm, assign)));
  assign.addEventListener("click", () => open(assign, assignForm, who));
  forms.append(resolveForm, assignForm);

  // drawn again while a form was open: open it again, with what was typed
  const draft = DRAFTS.get(alert.id);
  if (draft) {
    const [btn, form, field] = draft.form === "assign" ? [assign, assignForm, who] : [resolve, resolveForm, note];
    form.hidden = false;
    btn.setAttribute("aria-expanded", "true");
    field.value = draft.text;
    // the old field was focused and is about to leave the page: keep typing in this one
    const typing = document.activeElement && document.activeElement.closest?.(`.alarm-form[data-form="${draft.form}"]`);
    if (typing) setTimeout(() => { if (!document.activeElement || document.activeElement === document.body) field.focus(); }, 0);
  }
  return wrap;
}

/** A short beep per new high or critical alert (Web Audio), with a mute that is remembered. */
export class Siren {
  constructor(button) {
    this.button = button;
    this.ctx = null;
    this.played = 0;
    this.muted = localStorage.getItem(MUTE_KEY) === "1";
    this._show();
    button?.addEventListener("click", () => {
      this.muted = !this.muted;
      localStorage.setItem(MUTE_KEY, this.muted ? "1" : "0");
      this._show();
      this._unlock();
    });
    // browsers start audio only after a gesture: the first click or key unlocks it
    const unlock = () => this._unlock();
    window.addEventListener("pointerdown", unlock, { once: true });
    window.addEventListener("keydown", unlock, { once: true });
  }

  _show() {
    if (!this.button) return;
    this.button.setAttribute("aria-pressed", String(this.muted));
    this.button.textContent = this.muted ? "♪ Muted" : "♪ Sound on";
    this.button.title = this.muted ? "Alarm sound is off: click to turn it on" : "A sound plays on new high and critical alerts: click to mute";
  }

  _unlock() {
    try {
      if (!this.ctx) this.ctx = new AudioContext();
      if (this.ctx.state === "suspended") this.ctx.resume();
    } catch {
      this.ctx = null; // no audio here: the queue and the toasts still show everything
    }
  }

  play(severity) {
    if (this.muted || !SOUND_SEVERITIES.has(severity)) return false;
    this.played += 1;
    document.body.dataset.alarmSounds = String(this.played);
    const ctx = this.ctx;
    if (!ctx || ctx.state !== "running") return true;
    const critical = severity === "critical";
    const t = ctx.currentTime;
    const gain = ctx.createGain();
    gain.connect(ctx.destination);
    gain.gain.setValueAtTime(0.0001, t);
    for (let i = 0; i < (critical ? 3 : 2); i += 1) {
      const osc = ctx.createOscillator();
      osc.type = "square";
      osc.frequency.value = critical ? 988 : 784;
      osc.connect(gain);
      const start = t + i * 0.22;
      gain.gain.exponentialRampToValueAtTime(0.12, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.16);
      osc.start(start);
      osc.stop(start + 0.18);
    }
    return true;
  }
}

export class AlarmConsole {
  constructor({ root, store, conn, names, role, userId, place, onFocus }) {
    this.root = root;
    this.list = root.querySelector("#alert-queue");
    this.empty = root.querySelector("[data-role=empty]");
    this.countEl = root.querySelector("[data-role=count]");
    this.more = root.querySelector("[data-role=more]");
    this.severityFilter = root.querySelector("[name=min-severity]");
    this.stateFilter = root.querySelector("[name=state]");
    this.store = store;
    this.ctx = { conn, role, userId, names };
    this.place = place;
    this.onFocus = onFocus;
    this.items = new Map(); // alertId -> <li>
    this.siren = new Siren(root.querySelector("[data-action=mute]"));
    this._frame = null;
    store.on("alert", (alertId, how) => this._changed(alertId, how));
    store.on("reset", () => this._changed(null, "reset"));
    for (const f of [this.severityFilter, this.stateFilter]) f?.addEventListener("change", () => this.render());
  }

  /** A live alert (not a replayed or historical one) arrived: sound it. */
  announce(e) {
    this.siren.play(e.severity || "high");
  }

  _changed(alertId, how) {
    if (alertId !== null && how === "changed") this.items.get(Number(alertId))?._refresh();
    if (this._frame === null) this._frame = requestAnimationFrame(() => { this._frame = null; this.render(); });
  }

  _visible(a) {
    const min = this.severityFilter?.value || "low";
    const state = this.stateFilter?.value || "unresolved";
    if (severityRank(a.severity) < severityRank(min)) return false;
    if (state === "open" || state === "acknowledged") return a.state === state;
    if (state === "mine") return a.assignee === this.ctx.userId;
    return true;
  }

  render() {
    const all = this.store.openAlerts();
    const shown = all.filter((a) => this._visible(a));
    const drawn = shown.slice(0, RENDER_LIMIT);
    const keep = new Set(drawn.map((a) => a.id));
    for (const [id, li] of this.items) {
      if (!keep.has(id)) {
        li.remove();
        this.items.delete(id);
      }
    }
    // place each item where it belongs, moving only the ones out of place (a form being
    // typed into keeps its focus unless its own alert moves)
    let cursor = this.list.firstElementChild;
    for (const a of drawn) {
      let li = this.items.get(a.id);
      if (!li) {
        li = this._item(a);
        this.items.set(a.id, li);
      }
      if (li === cursor) cursor = cursor.nextElementSibling;
      else this.list.insertBefore(li, cursor);
    }
    const counts = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
    for (const a of all) counts[a.severity] = (counts[a.severity] || 0) + 1;
    this.countEl.textContent = String(all.length);
    this.countEl.hidden = all.length === 0;
    this.countEl.dataset.top = all[0]?.severity || "";
    this.root.dataset.open = String(all.length);
    this.empty.hidden = shown.length > 0;
    this.empty.textContent = all.length ? "No alert matches these filters." : "No unresolved alerts.";
    this.more.hidden = shown.length <= RENDER_LIMIT;
    this.more.textContent = `and ${shown.length - RENDER_LIMIT} more, less severe or newer`;
  }

  _item(a) {
    const li = h("li", { class: "alarm", tabindex: "-1" });
    const fill = () => {
      const alert = this.store.alerts.get(a.id) || a;
      li.dataset.alertId = alert.id;
      li.dataset.severity = alert.severity;
      li.dataset.state = alert.state;
      li.dataset.propertyId = alert.propertyId;
      li.className = `alarm sev-${alert.severity} state-${alert.state}`;
      const where = h("button", { type: "button", class: "link alarm-place", title: "Show on the map" }, this.place(alert.propertyId));
      where.addEventListener("click", () => this.onFocus(alert.propertyId));
      const who = alert.userId ? this.ctx.names.label(alert.userId) : "someone";
      const time = isToday(alert.timestamp) ? fmtTime(alert.timestamp) : fmtDateTime(alert.timestamp);
      const tags = [];
      if (alert.state === "acknowledged") tags.push(h("span", { class: "tag tag-ack" }, "Acknowledged"));
      if (alert.assignee) tags.push(h("span", { class: "tag" }, `→ ${this.ctx.names.label(alert.assignee)}`));
      if (alert.escalationLevel) tags.push(h("span", { class: "tag tag-esc", title: "Left open: escalated" }, `Escalated ${alert.escalationLevel}×`));
      const head = h("div", { class: "alarm-head" }, severityBadge(alert.severity), h("strong", { class: "alarm-reason" }, reasonLabel(alert.reason)), ...tags);
      const meta = h("div", { class: "alarm-meta muted" }, where, ` · ${time} · ${who}`);
      if (!li._info) li.append((li._info = h("div", { class: "alarm-info" })));
      clear(li._info).append(head, meta);
      // the controls are rebuilt only when the state changes: a form being filled in
      // survives every other update of its alert
      if (!li._controls || li._controlsFor !== alert.state) {
        const next = alertControls(alert, this.ctx);
        if (li._controls) li._controls.replaceWith(next);
        else li.append(next);
        li._controls = next;
        li._controlsFor = alert.state;
      }
      for (const uid of [alert.userId, alert.assignee]) {
        if (uid && this.ctx.names.label(uid) === String(uid) && !li._asked?.has(uid)) {
          (li._asked ||= new Set()).add(uid);
          this.ctx.names.resolve(uid).then(() => li.isConnected && fill());
        }
      }
    };
    li._refresh = () => fill();
    fill();
    return li;
  }

  /** Move keyboard focus to the queue (from a collapsed toast). */
  focus() {
    this.root.scrollIntoView({ block: "nearest" });
    (this.list.firstElementChild || this.root).focus?.();
  }
}
