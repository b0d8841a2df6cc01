// Client-side state of the site: visible properties, unresolved alerts (the
// alarm queue and the map's marks read the same ones) and dispatched drones.
// Live events are applied here; views listen for changes.

const HIDDEN_STATUSES = new Set(["REMOVED"]);
export const SEVERITIES = ["low", "medium", "high", "critical"];
export const severityRank = (s) => SEVERITIES.indexOf(s);
// Statuses a new property may not overlap (an admin is asked before approving one that does).
const OCCUPYING = new Set(["ACTIVE", "PENDING", "INACTIVE", "REMOVAL_REQUESTED"]);

/** Queue order (contract section 13): highest severity first, then oldest, then lowest id. */
export function alertOrder(a, b) {
  return severityRank(b.severity) - severityRank(a.severity)
    || String(a.timestamp || "").localeCompare(String(b.timestamp || ""))
    || Number(a.id) - Number(b.id);
}

export class Store {
  constructor() {
    this.properties = new Map(); // id -> Property
    this.alerts = new Map(); // alertId -> unresolved Alert (get-open-alerts, then events)
    this.alertsAt = new Map(); // propertyId -> Set(alertId) of those
    // get-map's {count, top} per property, for properties whose alerts were not all loaded
    // (a queue longer than the dashboard fetches); the loaded alerts win where there are any
    this.marks = new Map();
    this.drones = new Map(); // droneId -> propertyId
    this._listeners = new Map();
    this._held = null; // events queued while a snapshot loads
  }

  on(kind, fn) {
    if (!this._listeners.has(kind)) this._listeners.set(kind, []);
    this._listeners.get(kind).push(fn);
  }

  _emit(kind, ...args) {
    for (const fn of this._listeners.get(kind) || []) fn(...args);
  }

  // ---- snapshot loading -------------------------------------------------

  /** Queue live events until release(): a snapshot is being fetched. */
  hold() {
    if (!this._held) this._held = [];
  }

  /**
   * Replace everything with a snapshot, then re-apply events queued meanwhile.
   * `alerts`: the unresolved alerts (get-open-alerts); `alertsComplete`: all of them.
   */
  loadSnapshot({ properties, alerts = null, alertsComplete = false, drones }) {
    this.properties.clear();
    for (const p of properties) {
      if (!HIDDEN_STATUSES.has(p.status)) this.properties.set(Number(p.id), normalise(p));
    }
    this.alerts.clear();
    this.alertsAt.clear();
    this.marks.clear();
    for (const a of alerts || []) this._putAlert(a);
    if (!alertsComplete) {
      for (const p of properties) {
        const count = Number(p.openAlerts ?? 0);
        if (count > 0 && !this.alertsAt.has(Number(p.id))) this.marks.set(Number(p.id), { count, top: p.topSeverity || null });
      }
    }
    this.drones.clear();
    if (drones) for (const [droneId, pid] of drones) this.drones.set(Number(droneId), Number(pid));
    this._emit("reset");
    const queued = this._held || [];
    this._held = null;
    for (const [name, payload] of queued) this.apply(name, payload);
  }

  get holding() {
    return this._held !== null;
  }

  // ---- queries ------------------------------------------------------------

  get(id) {
    return this.properties.get(Number(id));
  }

  hasOpenAlert(id) {
    return this.openAlertCount(id) > 0;
  }

  /** Unresolved alerts of a property. */
  openAlertCount(id) {
    const set = this.alertsAt.get(Number(id));
    return set ? set.size : this.marks.get(Number(id))?.count || 0;
  }

  /** The highest severity among a property's unresolved alerts, or null. */
  topSeverity(id) {
    const set = this.alertsAt.get(Number(id));
    if (!set) return this.marks.get(Number(id))?.top || null;
    let top = -1;
    for (const alertId of set) top = Math.max(top, severityRank(this.alerts.get(alertId)?.severity));
    return top >= 0 ? SEVERITIES[top] : null;
  }

  /** Unresolved alerts, in queue order. */
  openAlerts() {
    return [...this.alerts.values()].sort(alertOrder);
  }

  /** Other properties a shape would overlap (those that occupy ground). */
  overlapping(p) {
    const out = [];
    for (const q of this.properties.values()) {
      if (q.id === Number(p.id) || !OCCUPYING.has(q.status)) continue;
      if (p.x < q.x + q.width && q.x < p.x + p.width && p.y < q.y + q.height && q.y < p.y + p.height) out.push(q);
    }
    return out;
  }

  dronesAt(propertyId) {
    const out = [];
    for (const [droneId, pid] of this.drones) if (pid === Number(propertyId)) out.push(droneId);
    return out;
  }

  /** Properties whose location, description or id match the text. */
  search(text, limit = 8) {
    const q = text.trim().toLowerCase();
    if (!q) return [];
    const idQuery = q.replace(/^#/, "");
    const exact = [];
    const starts = [];
    const contains = [];
    for (const p of this.properties.values()) {
      const loc = (p.location || "").toLowerCase();
      if (String(p.id) === idQuery) exact.push(p);
      else if (loc.startsWith(q)) starts.push(p);
      else if (loc.includes(q) || (p.description || "").toLowerCase().includes(q)) contains.push(p);
      if (exact.length + starts.length >= limit && contains.length >= limit) break;
    }
    return exact.concat(starts, contains).slice(0, limit);
  }

  // ---- local changes (e.g. after a successful request) -------------------

  upsert(p) {
    const prop = normalise(p);
    if (HIDDEN_STATUSES.has(prop.status)) {
      this.remove(prop.id);
      return;
    }
    const before = this.properties.get(prop.id);
    this.properties.set(prop.id, before ? Object.assign(before, prop) : prop);
    this._emit(before ? "update" : "add", this.properties.get(prop.id), before ? "details" : undefined);
  }

  remove(id) {
    id = Number(id);
    if (!this.properties.has(id)) return;
    const p = this.properties.get(id);
    this.properties.delete(id);
    for (const alertId of this.alertsAt.get(id) || []) this.alerts.delete(alertId);
    this.alertsAt.delete(id);
    this.marks.delete(id);
    for (const [droneId, pid] of [...this.drones]) if (pid === id) this.drones.delete(droneId);
    this._emit("remove", p);
  }

  _patch(id, fields, what) {
    const p = this.properties.get(Number(id));
    if (!p) return;
    Object.assign(p, fields);
    if (HIDDEN_STATUSES.has(p.status)) {
      this.remove(p.id);
      return;
    }
    this._emit("update", p, what);
  }

  // ---- live events ----------------------------------------------------------

  apply(name, e) {
    if (this._held) {
      this._held.push([name, e]);
      return;
    }
    const pid = e.propertyId !== undefined ? Number(e.propertyId) : undefined;
    switch (name) {
      case "events.property-added":
        this.upsert({ ...e, owner: e.owner ?? e.clientId });
        break;
      case "events.property-removed":
        this.remove(pid);
        break;
      case "events.approved-remove-property":
        this._patch(pid, { status: "REMOVED" }, "status");
        break;
      case "events.property-status-change":
        this._patch(pid, { status: e.status }, "status");
        break;
      case "events.requested-remove-property":
        this._patch(pid, { status: "REMOVAL_REQUESTED" }, "status");
        break;
      case "events.property-coordinates-changed":
        this._patch(pid, { x: Number(e.x), y: Number(e.y) }, "geometry");
        break;
      case "events.property-size-changed":
        this._patch(pid, { width: Number(e.width), height: Number(e.height) }, "geometry");
        break;
      case "events.property-tier-changed":
        this._patch(pid, { tier: Number(e.tier) }, "tier");
        break;
      case "events.alerts":
        // a copy of an event already applied (a snapshot that came after it) changes nothing
        if (this.alerts.has(Number(e.alertId))) break;
        this._putAlert({
          id: e.alertId, propertyId: pid, userId: e.user, reason: e.reason, severity: e.severity || "high",
          state: "open", assignee: null, escalationLevel: 0, timestamp: e.timestamp,
        });
        this._alertChanged(pid, Number(e.alertId), "raised");
        break;
      case "events.alert-acknowledged":
        this._updateAlert(pid, e.alertId, { state: "acknowledged", acknowledgedBy: e.user, acknowledgedAt: e.timestamp });
        break;
      case "events.alert-assigned":
        this._updateAlert(pid, e.alertId, { assignee: e.assignee });
        break;
      case "events.alert-escalated": {
        const a = this.alerts.get(Number(e.alertId));
        this._updateAlert(pid, e.alertId, { escalationLevel: Math.max(Number(e.level) || 0, a?.escalationLevel || 0) });
        break;
      }
      case "events.alert-resolved":
        this._dropAlert(pid, Number(e.alertId));
        break;
      case "events.arming-changed":
        this._patch(pid, { armed: e.mode }, "arming");
        break;
      case "events.drone-dispatched":
        this.drones.set(Number(e.droneId), pid);
        this._emit("drones", pid);
        break;
      case "events.drone-recalled":
        this.drones.delete(Number(e.droneId));
        this._emit("drones", pid);
        break;
      default:
        break;
    }
  }

  // ---- alerts ------------------------------------------------------------------

  _putAlert(a) {
    const alert = { ...a, id: Number(a.id), propertyId: Number(a.propertyId) };
    if (alert.state === "resolved") return;
    this.alerts.set(alert.id, alert);
    if (!this.alertsAt.has(alert.propertyId)) this.alertsAt.set(alert.propertyId, new Set());
    this.alertsAt.get(alert.propertyId).add(alert.id);
    this.marks.delete(alert.propertyId);
  }

  _updateAlert(pid, alertId, fields) {
    const a = this.alerts.get(Number(alertId));
    if (!a) return;
    Object.assign(a, fields);
    this._alertChanged(pid, a.id, "changed");
  }

  _dropAlert(pid, alertId) {
    if (this.alerts.delete(alertId)) {
      const set = this.alertsAt.get(pid);
      set?.delete(alertId);
      if (set && !set.size) this.alertsAt.delete(pid);
    } else {
      const mark = this.marks.get(pid); // one of the alerts known only by count
      if (mark && --mark.count <= 0) this.marks.delete(pid);
    }
    this._alertChanged(pid, alertId, "resolved");
  }

  _alertChanged(pid, alertId, how) {
    this._emit("alerts", pid);
    this._emit("alert", alertId, how);
  }

  /** Replace the unresolved alerts of one property (after get-alerts in its panel). */
  setPropertyAlerts(pid, alerts) {
    pid = Number(pid);
    for (const alertId of this.alertsAt.get(pid) || []) this.alerts.delete(alertId);
    this.alertsAt.delete(pid);
    this.marks.delete(pid);
    for (const a of alerts) this._putAlert({ ...a, propertyId: pid });
    this._emit("alerts", pid);
    this._emit("alert", null, "reloaded");
  }
}

function normalise(p) {
  const out = { ...p };
  out.id = Number(p.id);
  for (const k of ["x", "y", "width", "height", "tier"]) {
    if (p[k] !== undefined && p[k] !== null) out[k] = Number(p[k]);
  }
  if (out.width === undefined || Number.isNaN(out.width)) out.width = 20;
  if (out.height === undefined || Number.isNaN(out.height)) out.height = 20;
  return out;
}
