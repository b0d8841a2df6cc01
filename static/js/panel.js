// The property panel (#property-panel): details and every action on one
// property, shown after a property is clicked. Each section loads its own data
// and shows its own errors next to its controls.

import { h, clear, runAction, showMessage, msgLine, describeError, debounce, fmtDateTime, isoDay, statusBadge, STATUS_LABELS, confirmFirst, overlapWarning } from "./ui.js";
import { barChart, destroyChart, shortDay } from "./charts.js";
import { alertControls, reasonLabel, severityBadge } from "./alarms.js";
import { ScheduleEditor, describeLimits } from "./schedules.js";

const SETTABLE_STATUSES = ["PENDING", "ACTIVE", "INACTIVE", "REJECTED"];
const CRIME_RADIUS_M = 500; // "Crimes nearby": within this distance of the property's centre
const ARMING_MODES = [
  ["disarmed", "Disarmed"],
  ["home", "Armed home"],
  ["away", "Armed away"],
];

// which sections an event touches
const EVENT_SECTIONS = {
  "events.alerts": ["alerts"],
  "events.alert-acknowledged": ["alerts"],
  "events.alert-assigned": ["alerts"],
  "events.alert-resolved": ["alerts"],
  "events.alert-escalated": ["alerts"],
  "events.arming-changed": ["details"],
  "events.drone-dispatched": ["drones"],
  "events.drone-recalled": ["drones"],
  "events.property-equipment-change": ["equipment", "drones"],
  "events.auth-entries": ["entries"],
  "events.scanned": ["visitors"],
  "events.visits": ["visitors"],
  "events.property-status-change": ["details", "drones"],
  "events.property-tier-changed": ["details"],
  "events.property-coordinates-changed": ["details"],
  "events.property-size-changed": ["details"],
  "events.requested-remove-property": ["details"],
  "events.approved-remove-property": ["details"],
  "events.property-removed": ["details"],
};

export class PropertyPanel {
  constructor(el, { conn, store, names, ref, role, userId, siteZone, onClose, onFocus }) {
    this.siteZone = siteZone || "UTC";
    this.el = el;
    this.conn = conn;
    this.store = store;
    this.names = names;
    this.ref = ref;
    this.role = role;
    this.userId = userId;
    this.onClose = onClose;
    this.onFocus = onFocus;
    this.id = null;
    this.seq = 0;
    this.property = null;
    this.sections = {};
    this._refreshers = {};
    el.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.close();
    });
    store.on("drones", (pid) => {
      if (pid === this.id) this._schedule("drones");
    });
  }

  get isStaff() {
    return this.role === "staff" || this.role === "admin";
  }

  get isAdmin() {
    return this.role === "admin";
  }

  // ---- opening / closing ---------------------------------------------------

  open(id) {
    id = Number(id);
    this.id = id;
    this.seq += 1;
    const seq = this.seq;
    this._teardownCharts();
    this._refreshers = {};
    clear(this.el);
    this.el.hidden = false;
    this.el.dataset.propertyId = id;

    const known = this.store.get(id);
    const title = h("h2", { class: "panel-title", dataset: { field: "location" } }, known ? known.location : `Property #${id}`);
    const close = h("button", { type: "button", class: "panel-close", "aria-label": "Close the property panel" }, "×");
    close.addEventListener("click", () => this.close());
    const badge = h("span", { class: "panel-badges" });
    this.header = { title, badge };
    this.el.append(h("header", { class: "panel-head" }, h("div", {}, title, badge), close));

    const body = h("div", { class: "panel-body" });
    this.el.append(body);
    this.sections = {};
    const add = (key, heading, extraClass = "") => {
      const msg = msgLine();
      const content = h("div", { class: "section-content" });
      // forms live beside the re-rendered content, so typing survives live refreshes
      const form = h("div", { class: "section-form" });
      const root = h("section", { class: `panel-section section-${key} ${extraClass}`, dataset: { section: key } }, heading ? h("h3", {}, heading) : null, content, form, msg);
      body.append(root);
      this.sections[key] = { root, content, form, msg };
      return this.sections[key];
    };
    add("details", null);
    if (this.isAdmin) add("admin", "Administration");
    add("alerts", "Alerts");
    add("drones", "Drones");
    add("equipment", "Equipment");
    add("allowed", "Allowed users");
    add("visitors", "Scanned visitors, last 14 days");
    add("entries", "Entries");
    add("crimes", "Crimes nearby, last 3 days");
    add("exports", "Download (CSV)");
    add("removal", null, "section-danger");

    this._refreshers = {
      details: () => this._loadDetails(seq),
      alerts: () => this._loadAlerts(seq),
      drones: () => this._loadDrones(seq),
      equipment: () => this._loadEquipment(seq),
      allowed: () => this._loadAllowed(seq),
      visitors: () => this._loadVisitors(seq),
      entries: () => this._loadEntries(seq),
      crimes: () => this._loadCrimes(seq),
    };
    this._debounced = {};
    for (const [key, fn] of Object.entries(this._refreshers)) {
      this._debounced[key] = debounce(fn, 250);
    }
    if (known) this._renderDetails(known, null);
    this._renderExports(id);
    this._allowed = {};
    this._buildAlertForm();
    this._buildEquipmentForm();
    this._buildAllowedForm(seq);
    for (const fn of Object.values(this._refreshers)) fn();
    this.el.scrollTop = 0;
  }

  close() {
    if (this.el.hidden) return;
    this.seq += 1;
    this.id = null;
    this._teardownCharts();
    for (const d of Object.values(this._debounced || {})) d.cancel();
    this.el.hidden = true;
    clear(this.el);
    delete this.el.dataset.propertyId;
    this.onClose?.();
  }

  _teardownCharts() {
    for (const canvas of this.el.querySelectorAll("canvas")) destroyChart(canvas);
  }

  _alive(seq) {
    return seq === this.seq && !this.el.hidden;
  }

  _schedule(section) {
    const fn = this._debounced?.[section];
    if (fn) fn();
  }

  /** A live event arrived: refresh what it touches when it is about this property. */
  onEvent(name, e) {
    if (this.id === null) return;
    const pid = Number(e.propertyId ?? (name === "events.property-added" ? e.id : NaN));
    if (name === "events.crimes") {
      if (this._near(pid)) this._schedule("crimes");
      return;
    }
    if (pid !== this.id) return;
    for (const section of EVENT_SECTIONS[name] || []) this._schedule(section);
  }

  /** Whether a crime at property `pid` counts for this panel's "Crimes nearby". */
  _near(pid) {
    if (pid === this.id) return true;
    const here = this.store.get(this.id);
    const there = this.store.get(pid);
    if (!here || !there) return true; // not on this map: ask the server rather than miss one
    const dx = here.x + here.width / 2 - (there.x + there.width / 2);
    const dy = here.y + here.height / 2 - (there.y + there.height / 2);
    return Math.hypot(dx, dy) <= CRIME_RADIUS_M;
  }

  // ---- details, admin and removal ----------------------------------------------

  async _loadDetails(seq) {
    const s = this.sections.details;
    try {
      const d = await this.conn.query("get-property-detailed", { propertyId: this.id });
      if (!this._alive(seq)) return;
      const p = d.property;
      this.property = p;
      this.names.remember(p.owner, p.owner_full_name);
      if (p.status !== "REMOVED") this.store.upsert(p);
      this._renderDetails(p, p);
      showMessage(s.msg, null);
    } catch (err) {
      if (!this._alive(seq)) return;
      showMessage(s.msg, `Could not load this property: ${describeError(err)}`);
    }
  }

  _renderDetails(p, detailed) {
    const { title, badge } = this.header;
    title.textContent = p.location;
    clear(badge).append(statusBadge(p.status));
    if (this.store.hasOpenAlert(p.id)) badge.append(h("span", { class: "status-badge badge-alert" }, "Open alert"));
    this.el.dataset.status = p.status;
    const tierName = detailed?.tier_name || this.ref.tierName(p.tier);
    const rows = [
      ["Property", `#${p.id}`, "id"],
      ["Status", STATUS_LABELS[p.status] || p.status, "status"],
      ["Tier", tierName, "tier"],
      ["Owner", detailed ? `${detailed.owner_full_name || detailed.owner} (${detailed.owner})` : p.owner ? this.names.label(p.owner) : null, "owner"],
      ["Position", `x ${p.x} m, y ${p.y} m`, "position"],
      ["Size", `${p.width} × ${p.height} m`, "size"],
    ];
    const dl = h("dl", { class: "details" });
    for (const [label, value, field] of rows) {
      if (value === undefined || value === null || value === "undefined") continue;
      dl.append(h("dt", {}, label), h("dd", { dataset: { field } }, value));
    }
    const desc = p.description ? h("p", { class: "description", dataset: { field: "description" } }, p.description) : null;
    const focus = h("button", { type: "button", class: "btn btn-small btn-light" }, "Show on map");
    focus.addEventListener("click", () => this.onFocus?.(p.id));
    clear(this.sections.details.content).append(...[dl, desc, this._armingControl(p), h("div", { class: "row" }, focus)].filter(Boolean));
    if (p.status === "REMOVED") {
      this.sections.details.content.prepend(h("p", { class: "notice" }, "This property has been removed. Its history is kept, but nothing on it can be changed."));
    }
    this.el.classList.toggle("is-removed", p.status === "REMOVED");
    if (this.isAdmin) this._renderAdmin(p);
    this._renderRemoval(p);
  }

  /** The arming mode, with a switch (everyone who sees this panel may set it: the owner or staff). */
  _armingControl(p) {
    const mode = p.armed || "disarmed";
    const msg = msgLine();
    const group = h("div", { class: "arming", role: "radiogroup", "aria-label": "Arming", dataset: { field: "armed", mode } });
    for (const [value, label] of ARMING_MODES) {
      const btn = h("button", {
        type: "button", class: "arming-option", role: "radio", "aria-checked": String(value === mode),
        dataset: { mode: value }, disabled: p.status === "REMOVED",
      }, label);
      btn.addEventListener("click", () => {
        if (value === (this.store.get(p.id)?.armed || mode)) return;
        runAction(btn, msg, () => this.conn.query("set-arming", { propertyId: p.id, mode: value }));
      });
      group.append(btn);
    }
    return h("div", { class: "arming-row" }, h("span", { class: "arming-label" }, "Arming"), group, msg);
  }

  _renderAdmin(p) {
    const s = this.sections.admin;
    if (!s) return;
    const content = clear(s.content);
    if (p.status === "REMOVED") {
      content.append(h("p", { class: "muted" }, "No administration is possible on a removed property."));
      return;
    }
    const change = (query, data, okText) => this.conn.query(query, { propertyId: p.id, ...data }).then((r) => {
      this._schedule("details");
      return r;
    });

    if (p.status === "PENDING") {
      const approve = h("button", { type: "button", class: "btn btn-ok", dataset: { action: "approve" } }, "Approve");
      const reject = h("button", { type: "button", class: "btn btn-danger", dataset: { action: "reject" } }, "Reject");
      const overlaps = this.store.overlapping(p);
      confirmFirst(approve, overlaps.length ? `Approve anyway, overlapping ${overlaps.length}?` : null,
        () => runAction(approve, s.msg, () => change("change-property-status", { status: "ACTIVE" }), "Approved: the property is active."));
      reject.addEventListener("click", () => runAction(reject, s.msg, () => change("change-property-status", { status: "REJECTED" }), "Rejected."));
      content.append(...[h("p", { class: "callout" }, "This property is waiting for approval."), overlapWarning(overlaps), h("div", { class: "row" }, approve, reject)].filter(Boolean));
    }
    if (p.status === "REMOVAL_REQUESTED") {
      const approveRemoval = h("button", { type: "button", class: "btn btn-danger", dataset: { action: "approve-removal" } }, "Approve removal");
      approveRemoval.addEventListener("click", () => runAction(approveRemoval, s.msg, () => change("approve-remove-property", {}), "Removal approved."));
      content.append(h("p", { class: "callout" }, "The owner asked for this property to be removed."), h("div", { class: "row" }, approveRemoval));
    }

    const statusSel = h("select", { "aria-label": "New status", name: "status" },
      SETTABLE_STATUSES.map((st) => h("option", { value: st, selected: st === p.status }, STATUS_LABELS[st])));
    const statusBtn = h("button", { type: "button", class: "btn btn-small" }, "Set status");
    statusBtn.addEventListener("click", () => runAction(statusBtn, s.msg, () => change("change-property-status", { status: statusSel.value }), `Status set to ${STATUS_LABELS[statusSel.value].toLowerCase()}.`));

    const tierSel = h("select", { "aria-label": "New tier", name: "tier" },
      this.ref.tiers.map((t) => h("option", { value: t.id, selected: Number(t.id) === Number(p.tier) }, t.name)));
    const tierBtn = h("button", { type: "button", class: "btn btn-small" }, "Set tier");
    tierBtn.addEventListener("click", () => runAction(tierBtn, s.msg, () => change("change-property-tier", { tier: Number(tierSel.value) }), "Tier changed."));

    const num = (name, value, label) => h("input", { type: "number", name, value, step: "1", "aria-label": label, class: "num" });
    const xIn = num("x", p.x, "x in metres");
    const yIn = num("y", p.y, "y in metres");
    const wIn = num("width", p.width, "width in metres");
    const hIn = num("height", p.height, "height in metres");
    const geoBtn = h("button", { type: "button", class: "btn btn-small" }, "Move / resize");
    geoBtn.addEventListener("click", () => runAction(geoBtn, s.msg, async () => {
      const x = Number(xIn.value), y = Number(yIn.value), w = Number(wIn.value), hh = Number(hIn.value);
      let changed = false;
      if (x !== p.x || y !== p.y) {
        await change("change-property-coordinates", { x, y });
        changed = true;
      }
      if (w !== p.width || hh !== p.height) {
        await change("change-property-size", { width: w, height: hh });
        changed = true;
      }
      if (!changed) throw Object.assign(new Error("Nothing to change: the values are the current ones."), { code: "validation" });
    }, "Position and size saved."));

    content.append(
      h("div", { class: "form-grid" },
        h("label", {}, "Status"), h("div", { class: "row" }, statusSel, statusBtn),
        h("label", {}, "Tier"), h("div", { class: "row" }, tierSel, tierBtn),
        h("label", {}, "x, y"), h("div", { class: "row" }, xIn, yIn),
        h("label", {}, "w × h"), h("div", { class: "row" }, wIn, hIn, geoBtn)),
    );
  }

  _renderRemoval(p) {
    const s = this.sections.removal;
    const content = clear(s.content);
    if (p.status === "REMOVED") return;
    if (p.status === "REMOVAL_REQUESTED") {
      content.append(h("p", { class: "muted" }, "Removal has been requested and is waiting for an administrator."));
    } else {
      const btn = h("button", { type: "button", class: "btn btn-danger-outline", dataset: { action: "request-removal" } }, "Request removal");
      confirmFirst(btn, "Click again to confirm the removal request",
        () => runAction(btn, s.msg, () => this.conn.query("request-remove-property", { propertyId: p.id }).then(() => this._schedule("details")),
          "Removal requested. An administrator will review it."));
      content.append(btn);
    }
    if (this.isAdmin) {
      const now = h("button", { type: "button", class: "btn btn-danger", dataset: { action: "remove-now" } }, "Remove now");
      confirmFirst(now, "Click again to remove for good",
        () => runAction(now, s.msg, () => this.conn.query("remove-property", { propertyId: p.id }).then(() => this._schedule("details")), "Removed."));
      content.append(now);
    }
  }

  // ---- alerts --------------------------------------------------------------------

  async _loadAlerts(seq) {
    const s = this.sections.alerts;
    try {
      const d = await this.conn.query("get-alerts", { propertyId: this.id, limit: 100 });
      if (!this._alive(seq)) return;
      const alerts = d.alerts || [];
      this.store.setPropertyAlerts(this.id, alerts.filter((a) => a.state !== "resolved"));
      this._renderAlerts(alerts);
      if (this.property || this.store.get(this.id)) this._renderDetailsBadge();
    } catch (err) {
      if (!this._alive(seq)) return;
      showMessage(s.msg, `Could not load alerts: ${describeError(err)}`);
    }
  }

  _renderDetailsBadge() {
    const p = this.property || this.store.get(this.id);
    if (!p) return;
    const { badge } = this.header;
    clear(badge).append(statusBadge(p.status));
    const top = this.store.topSeverity(p.id);
    if (top) badge.append(h("span", { class: "status-badge badge-alert", dataset: { severity: top } }, `Open alert: ${top}`));
  }

  _renderAlerts(alerts) {
    const s = this.sections.alerts;
    const content = clear(s.content);
    const unresolved = alerts.filter((a) => a.state !== "resolved");
    const summary = unresolved.length
      ? h("p", { class: "callout callout-alert" }, `${unresolved.length} unresolved alert${unresolved.length > 1 ? "s" : ""}`)
      : h("p", { class: "muted" }, alerts.length ? "Every alert is resolved." : "No alerts on this property.");
    content.append(summary);
    const list = h("ul", { class: "item-list alert-list" });
    const ctx = { conn: this.conn, role: this.role, userId: this.userId, names: this.names };
    for (const a of alerts.slice(0, 30)) {
      const who = h("span", {}, this.names.label(a.userId));
      this.names.resolve(a.userId).then((n) => { who.textContent = n; });
      const history = [];
      if (a.acknowledgedBy) history.push(`acknowledged by ${this.names.label(a.acknowledgedBy)}${a.acknowledgedAt ? `, ${fmtDateTime(a.acknowledgedAt)}` : ""}`);
      if (a.assignee) history.push(`assigned to ${this.names.label(a.assignee)}`);
      if (a.escalationLevel) history.push(`escalated ${a.escalationLevel}×`);
      if (a.state === "resolved") history.push(`resolved by ${this.names.label(a.resolvedBy)}${a.resolvedAt ? `, ${fmtDateTime(a.resolvedAt)}` : ""}`);
      const line = h("li", { class: `alert-item is-${a.state}`, dataset: { alertId: a.id, severity: a.severity, state: a.state } },
        h("div", { class: "item-main" },
          severityBadge(a.severity), " ",
          h("strong", {}, reasonLabel(a.reason)),
          h("span", { class: "muted" }, " · ", fmtDateTime(a.timestamp), " · by ", who)),
        history.length ? h("div", { class: "item-sub muted" }, capitalise(history.join(" · "))) : null,
        a.note ? h("div", { class: "item-sub alert-note" }, `“${a.note}”`) : null,
        h("div", { class: "row" }, h("a", { href: `/incident/${a.id}`, target: "_blank", rel: "noopener", class: "small", dataset: { action: "incident" } }, "Incident report")),
        a.state !== "resolved" ? alertControls(a, ctx) : null);
      list.append(line);
    }
    if (alerts.length) content.append(list);
  }

  /** Links to this property's CSV exports (the session cookie authenticates them). */
  _renderExports(id) {
    const links = ["alerts", "visits", "entries", "crimes"].map((kind) => h("a", {
      class: "btn btn-small btn-light", href: `/export/${kind}.csv?propertyId=${id}`, download: "",
      dataset: { export: kind },
    }, kind));
    clear(this.sections.exports.content).append(h("div", { class: "row" }, links));
  }

  /** Raising an alert by hand (owners and staff may). */
  _buildAlertForm() {
    const s = this.sections.alerts;
    const reason = h("input", { type: "text", name: "reason", maxlength: "200", placeholder: "Reason (optional)", "aria-label": "Alert reason" });
    const raise = h("button", { type: "button", class: "btn btn-small btn-danger-outline" }, "Raise alert");
    raise.addEventListener("click", () => runAction(raise, s.msg,
      () => this.conn.query("add-alert", { propertyId: this.id, userId: this.userId, reason: reason.value.trim() }).then((r) => {
        reason.value = "";
        this._schedule("alerts");
        return r;
      }), "Alert raised."));
    s.form.append(h("div", { class: "row add-row" }, reason, raise));
  }

  // ---- drones ---------------------------------------------------------------------

  async _loadDrones(seq) {
    const s = this.sections.drones;
    const content = s.content;
    let free = [];
    let freeError = null;
    try {
      const d = await this.conn.query("get-free-drones", { propertyId: this.id });
      free = d.drones || [];
    } catch (err) {
      freeError = err;
    }
    if (!this._alive(seq)) return;
    clear(content);
    // the store follows live events at once; the detailed copy only after it reloads
    const p = this.store.get(this.id) || this.property;
    const dispatched = this.store.dronesAt(this.id);
    const list = h("ul", { class: "item-list" });
    for (const droneId of dispatched) {
      const recall = h("button", { type: "button", class: "btn btn-small", dataset: { action: "recall" } }, "Recall");
      const msg = msgLine();
      recall.addEventListener("click", () => runAction(recall, msg, () => this.conn.query("recall-drone", { droneId }).then(() => this._schedule("drones"))));
      list.append(h("li", { class: "drone-item", dataset: { droneId } }, h("div", { class: "item-main" }, h("strong", {}, `Drone #${droneId}`), h("span", { class: "muted" }, " · in the air")), h("div", { class: "row" }, recall), msg));
    }
    if (dispatched.length) content.append(list);
    else content.append(h("p", { class: "muted" }, "No drone of this property is in the air."));

    const dispatch = h("button", { type: "button", class: "btn btn-primary btn-small", dataset: { action: "dispatch" } }, "Dispatch a drone");
    const active = !p || p.status === "ACTIVE";
    if (freeError) {
      showMessage(s.msg, `Could not check the free drones: ${describeError(freeError)}`);
    } else {
      showMessage(s.msg, null);
      const note = free.length
        ? `${free.length} drone${free.length > 1 ? "s" : ""} ready: ${free.map((d) => d.description || `#${d.id}`).join(", ")}`
        : "No free drone at this property.";
      content.append(h("p", { class: "muted" }, note));
    }
    if (!active) content.append(h("p", { class: "muted" }, "Drones can be dispatched only to an active property."));
    dispatch.disabled = !active || (!freeError && free.length === 0);
    dispatch.addEventListener("click", () => runAction(dispatch, s.msg,
      () => this.conn.query("dispatch-drone", { propertyId: this.id }).then((r) => {
        if (r.droneId !== undefined) this.store.apply("events.drone-dispatched", { propertyId: this.id, droneId: r.droneId });
        this._schedule("drones");
        return r;
      }), (r) => `Drone #${r.droneId} dispatched.`));
    content.append(h("div", { class: "row" }, dispatch));
  }

  // ---- equipment ---------------------------------------------------------------

  async _loadEquipment(seq) {
    const s = this.sections.equipment;
    try {
      const d = await this.conn.query("get-equipment", { propertyId: this.id });
      if (!this._alive(seq)) return;
      this._renderEquipmentList(d.equipment || [], seq);
    } catch (err) {
      if (!this._alive(seq)) return;
      showMessage(s.msg, `Could not load equipment: ${describeError(err)}`);
    }
  }

  _renderEquipmentList(items, seq) {
    if (!this._alive(seq)) return;
    const s = this.sections.equipment;
    const content = clear(s.content);
    const list = h("ul", { class: "item-list" });
    for (const eq of items) {
      const remove = h("button", { type: "button", class: "btn btn-small btn-light", "aria-label": `Remove ${eq.name} #${eq.id}` }, "Remove");
      const msg = msgLine();
      remove.addEventListener("click", () => runAction(remove, msg, () => this.conn.query("remove-equipment", { propertyId: this.id, equipmentId: eq.id }).then(() => this._schedule("equipment"))));
      list.append(h("li", { dataset: { equipmentId: eq.id } },
        h("div", { class: "item-main" }, h("strong", {}, eq.name || this.ref.equipmentTypeName(eq.type)), h("span", { class: "muted" }, ` #${eq.id}${eq.description ? ` · ${eq.description}` : ""}`)),
        h("div", { class: "row" }, remove), msg));
    }
    content.append(items.length ? list : h("p", { class: "muted" }, "No equipment installed."));
  }

  _buildEquipmentForm() {
    const s = this.sections.equipment;
    const typeSel = h("select", { name: "equipmentType", "aria-label": "Equipment type" }, this.ref.equipmentTypes.map((t) => h("option", { value: t.id }, t.name)));
    const desc = h("input", { type: "text", name: "description", maxlength: "2000", placeholder: "Description (optional)", "aria-label": "Equipment description" });
    const addBtn = h("button", { type: "button", class: "btn btn-small btn-primary" }, "Add");
    addBtn.addEventListener("click", () => runAction(addBtn, s.msg,
      () => this.conn.query("add-equipment", { propertyId: this.id, equipmentType: Number(typeSel.value), description: desc.value.trim() }).then((r) => {
        desc.value = "";
        this._schedule("equipment");
        this._schedule("drones");
        return r;
      }), "Equipment added."));
    s.form.append(h("div", { class: "row add-row" }, typeSel, desc, addBtn));
  }

  // ---- allowed users -----------------------------------------------------------

  async _loadAllowed(seq) {
    const s = this.sections.allowed;
    let details;
    try {
      const d = await this.conn.query("get-allowed-users", { propertyId: this.id });
      details = d.allowedUserDetails
        || Object.entries(d.allowedUsers || {}).map(([userId, fullName]) => ({ userId, fullName, schedule: null, validUntil: null }));
    } catch (err) {
      if (!this._alive(seq)) return;
      showMessage(s.msg, `Could not load the allowed users: ${describeError(err)}`);
      return;
    }
    if (!this._alive(seq)) return;
    this._allowed = Object.fromEntries(details.map((d) => [d.userId, d.fullName]));
    // an editor being filled in is not thrown away by a live refresh of the list
    if (s.content.querySelector(".schedule-editor")) return;
    const content = clear(s.content);
    const list = h("ul", { class: "item-list" });
    for (const person of details) {
      const { userId: uid, fullName: name } = person;
      this.names.remember(uid, name);
      const remove = h("button", { type: "button", class: "btn btn-small btn-light", "aria-label": `Remove ${name}` }, "Remove");
      const edit = h("button", { type: "button", class: "btn btn-small btn-light", dataset: { action: "edit-schedule" }, "aria-expanded": "false" }, "Hours…");
      const msg = msgLine();
      remove.addEventListener("click", () => runAction(remove, msg, () => this.conn.query("remove-allowed-user", { propertyId: this.id, userId: uid }).then(() => this._schedule("allowed"))));
      const slot = h("div", { class: "schedule-slot" });
      const li = h("li", { dataset: { userId: uid } },
        h("div", { class: "item-main" }, h("strong", {}, name || uid), h("span", { class: "muted" }, ` · ${uid}`)),
        h("div", { class: "item-sub muted schedule-summary", dataset: { field: "schedule" } }, describeLimits(person, this.siteZone)),
        h("div", { class: "row" }, edit, remove), slot, msg);
      edit.addEventListener("click", () => {
        if (slot.firstChild) {
          clear(slot);
          edit.setAttribute("aria-expanded", "false");
          return;
        }
        edit.setAttribute("aria-expanded", "true");
        const editor = new ScheduleEditor(person, this.siteZone, {
          onSave: (limits) => this.conn.query("add-allowed-user", { propertyId: this.id, userId: uid, ...limits })
            .then(() => {
              clear(slot);
              this._schedule("allowed");
            }),
          onCancel: () => {
            clear(slot);
            edit.setAttribute("aria-expanded", "false");
          },
        });
        slot.append(editor.el);
        editor.focus();
      });
      list.append(li);
    }
    content.append(details.length ? list : h("p", { class: "muted" }, "Only the owner may enter."));
  }

  /** Allowing someone: search people by name or id (get-users). */
  _buildAllowedForm(seq) {
    const s = this.sections.allowed;
    const search = h("input", { type: "search", placeholder: "Find a person to allow…", "aria-label": "Search users to allow", autocomplete: "off" });
    const results = h("ul", { class: "user-results" });
    const find = debounce(async () => {
      const q = search.value.trim();
      clear(results);
      if (!q) return;
      try {
        const d = await this.conn.query("get-users", { search: q, limit: 8 });
        if (!this._alive(seq) || search.value.trim() !== q) return;
        const users = (d.users || []).filter((u) => !(u.id in this._allowed));
        if (!users.length) results.append(h("li", { class: "muted" }, "Nobody found."));
        for (const u of users) {
          this.names.remember(u.id, u.fullName);
          const addBtn = h("button", { type: "button", class: "btn btn-small btn-primary" }, "Allow");
          addBtn.addEventListener("click", () => runAction(addBtn, s.msg,
            () => this.conn.query("add-allowed-user", { propertyId: this.id, userId: u.id }).then(() => this._schedule("allowed")),
            `${u.fullName || u.id} may now enter.`));
          results.append(h("li", { dataset: { userId: u.id } }, h("span", {}, h("strong", {}, u.fullName || u.id), h("span", { class: "muted" }, ` · ${u.id}`)), addBtn));
        }
        showMessage(s.msg, null);
      } catch (err) {
        showMessage(s.msg, `User search failed: ${describeError(err)}`);
      }
    }, 250);
    search.addEventListener("input", find);
    s.form.append(h("div", { class: "user-search" }, search, results));
  }

  // ---- charts and entries -----------------------------------------------------

  _loadVisitors(seq) {
    const to = new Date();
    const from = new Date(to.getTime() - 13 * 86400000);
    return this._loadDayChart(seq, "visitors", {
      query: "get-scanned-visitors",
      data: { propertyId: this.id, from: isoDay(from), to: isoDay(to) },
      rows: (d) => d.visitors || [],
      label: (r) => shortDay(r.day),
      ariaLabel: "Scanned visitors per day, last 14 days",
      size: "chart-small",
      color: "#2563eb",
      series: "Visitors",
      note: (n) => `${n} scan${n === 1 ? "" : "s"} in 14 days`,
      what: "visitors",
    });
  }

  _loadCrimes(seq) {
    return this._loadDayChart(seq, "crimes", {
      query: "get-crimes-in-area",
      data: { propertyId: this.id, radius: 500, days: 3 },
      // day 1 is yesterday: show the oldest day first
      rows: (d) => [...(d.crimes || [])].sort((a, b) => Number(b.day) - Number(a.day)),
      label: (r) => dayAgoLabel(r.day),
      ariaLabel: "Crimes within 500 m per day, last 3 days",
      size: "chart-tiny",
      color: "#dc2626",
      series: "Crimes",
      note: (n) => `${n} crime${n === 1 ? "" : "s"} within 500 m`,
      what: "crimes",
    });
  }

  /** A per-day bar chart section: fetch, (re)draw, total underneath. */
  async _loadDayChart(seq, key, spec) {
    const s = this.sections[key];
    try {
      const d = await this.conn.query(spec.query, spec.data);
      if (!this._alive(seq)) return;
      const rows = spec.rows(d);
      let canvas = s.content.querySelector("canvas");
      if (!canvas) {
        canvas = h("canvas", { role: "img", "aria-label": spec.ariaLabel });
        clear(s.content).append(h("div", { class: `chart-box ${spec.size}` }, canvas), h("p", { class: "muted chart-note" }));
      }
      const values = rows.map((r) => Number(r.count) || 0);
      barChart(canvas, rows.map(spec.label), values, { label: spec.series, color: spec.color });
      s.content.querySelector(".chart-note").textContent = spec.note(values.reduce((a, b) => a + b, 0));
      showMessage(s.msg, null);
    } catch (err) {
      if (!this._alive(seq)) return;
      showMessage(s.msg, `Could not load ${spec.what}: ${describeError(err)}`);
    }
  }

  async _loadEntries(seq) {
    const s = this.sections.entries;
    try {
      const d = await this.conn.query("get-auth-entries", { propertyId: this.id, limit: 30 });
      if (!this._alive(seq)) return;
      const entries = d.authEntries || [];
      const content = clear(s.content);
      if (!entries.length) {
        content.append(h("p", { class: "muted" }, "Nobody has entered yet."));
        return;
      }
      const list = h("ul", { class: "item-list entry-list" });
      for (const en of entries) {
        const who = h("strong", {}, this.names.label(en.user_id));
        this.names.resolve(en.user_id).then((n) => { who.textContent = n; });
        list.append(h("li", { class: en.authorized ? "entry-ok" : "entry-bad", dataset: { authorized: en.authorized ? "true" : "false" } },
          h("div", { class: "item-main" }, who, h("span", { class: "muted" }, ` · ${fmtDateTime(en.timestamp)}`)),
          en.authorized ? h("span", { class: "tag tag-ok" }, "Authorized") : h("span", { class: "tag tag-bad" }, "Unauthorized")));
      }
      content.append(list);
      showMessage(s.msg, null);
    } catch (err) {
      if (!this._alive(seq)) return;
      showMessage(s.msg, `Could not load entries: ${describeError(err)}`);
    }
  }
}

function capitalise(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * get-crimes-in-area numbers its days 1..N backwards from now (day 1 = the
 * most recent 24 hours); label them for people.
 */
export function dayAgoLabel(day) {
  const n = Number(day);
  if (!Number.isFinite(n)) return String(day);
  if (n === 1) return "Last 24 h";
  return `${(n - 1) * 24}–${n * 24} h ago`;
}
