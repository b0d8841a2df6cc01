// Client-side state of the site: visible properties, open (unacknowledged)
// alerts per property and dispatched drones. Live events are applied here;
// views listen for changes.

const HIDDEN_STATUSES = new Set(["REMOVED"]);

export class Store {
  constructor() {
    this.properties = new Map(); // id -> Property
    this.openAlerts = new Map(); // propertyId -> Set(alertId)
    this.alertCounts = new Map(); // propertyId -> count reported by the server (no ids)
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

  /** Replace everything with a snapshot, then re-apply events queued meanwhile. */
  loadSnapshot({ properties, alerts, drones }) {
    this.properties.clear();
    for (const p of properties) {
      if (!HIDDEN_STATUSES.has(p.status)) this.properties.set(Number(p.id), normalise(p));
    }
    this.openAlerts.clear();
    this.alertCounts.clear();
    if (alerts) {
      for (const [pid, ids] of alerts) this.openAlerts.set(Number(pid), new Set(ids));
    }
    for (const p of properties) {
      const n = Number(p.openAlerts ?? p.unacknowledgedAlerts ?? 0);
      if (n > 0 && !this.openAlerts.has(Number(p.id))) this.alertCounts.set(Number(p.id), n);
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
    const set = this.openAlerts.get(Number(id));
    return (set && set.size > 0) || (this.alertCounts.get(Number(id)) || 0) > 0;
  }

  openAlertCount(id) {
    const set = this.openAlerts.get(Number(id));
    return (set ? set.size : 0) + (this.alertCounts.get(Number(id)) || 0);
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
    this.openAlerts.delete(id);
    this.alertCounts.delete(id);
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
      case "events.alerts": {
        if (!this.properties.has(pid)) break;
        if (!this.openAlerts.has(pid)) this.openAlerts.set(pid, new Set());
        this.openAlerts.get(pid).add(Number(e.alertId));
        this._emit("alerts", pid);
        break;
      }
      case "events.alert-acknowledged": {
        const set = this.openAlerts.get(pid);
        if (set) set.delete(Number(e.alertId));
        if (set && set.size === 0) this.openAlerts.delete(pid);
        if (!set && this.alertCounts.has(pid)) {
          const left = this.alertCounts.get(pid) - 1;
          if (left > 0) this.alertCounts.set(pid, left);
          else this.alertCounts.delete(pid);
        }
        this._emit("alerts", pid);
        break;
      }
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

  /** Replace the open-alert ids of one property (after get-alerts). */
  setOpenAlerts(pid, alertIds) {
    pid = Number(pid);
    this.alertCounts.delete(pid);
    if (alertIds.length) this.openAlerts.set(pid, new Set(alertIds.map(Number)));
    else this.openAlerts.delete(pid);
    this._emit("alerts", pid);
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
