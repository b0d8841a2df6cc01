// Dashboard entry point: wires the connection, the store and the views, and
// runs the (re)connect sequence: subscribe to events.all (with `since` on a
// reconnect), load a snapshot when needed, then apply events as they come.

import { Connection } from "./api.js";
import { Store } from "./store.js";
import { Names } from "./names.js";
import { MapView } from "./map.js";
import { Feed } from "./feed.js";
import { PropertyPanel } from "./panel.js";
import { AddProperty } from "./addform.js";
import { StaffQueues, DroneList } from "./queues.js";
import { setupTabs, CrimesChart, MyProperties } from "./sidebar.js";
import { AlarmConsole } from "./alarms.js";
import { NotificationSettings } from "./notifications.js";
import { AccountSettings } from "./account.js";
import { h, clear, describeError, debounce } from "./ui.js";

const body = document.body;
const user = { id: body.dataset.userId, fullName: body.dataset.fullName, role: body.dataset.role, siteZone: body.dataset.siteZone || "UTC" };
const isStaff = user.role === "staff" || user.role === "admin";

const EVENT_SCAN_PAGE = 1000;
const EVENT_SCAN_MAX_PAGES = 20;
const HISTORY_SIZE = 60;
const ALERT_PAGE = 1000;
const ALERT_MAX_PAGES = 5; // beyond 5,000 unresolved alerts the map falls back on get-map's counts

// ---- reference data (tiers, equipment types), refreshed after connecting ------

const ref = {
  tiers: [{ id: 1, name: "Basic" }, { id: 2, name: "Standard" }, { id: 3, name: "Premium" }],
  equipmentTypes: [
    { id: 1, name: "Camera" }, { id: 2, name: "Drone" }, { id: 3, name: "Scanner" },
    { id: 4, name: "Alarm" }, { id: 5, name: "Motion sensor" },
  ],
  tierName(id) {
    const t = this.tiers.find((x) => Number(x.id) === Number(id));
    return t ? t.name : `tier ${id}`;
  },
  equipmentTypeName(id) {
    const t = this.equipmentTypes.find((x) => Number(x.id) === Number(id));
    return t ? t.name : `Equipment type ${id}`;
  },
};

// ---- the pieces ---------------------------------------------------------------

const conn = new Connection();
const store = new Store();
const names = new Names(conn);
names.remember(user.id, user.fullName);

const globalError = document.getElementById("global-error");
function showGlobalError(text, { login = false } = {}) {
  if (!text) {
    globalError.hidden = true;
    clear(globalError);
    return;
  }
  clear(globalError).append(h("span", {}, text));
  if (login) globalError.append(" ", h("a", { href: "/login" }, "Log in again"));
  globalError.hidden = false;
}

const mapView = new MapView(document.getElementById("map"), store, {
  role: user.role,
  onSelect: (id) => selectProperty(id, { focus: false }),
});

const panelEl = document.getElementById("property-panel");
const addEl = document.getElementById("add-property");
const sidePanelOpen = () => !panelEl.hidden || !addEl.hidden;

/** Show or hide a side panel; the map narrows or widens beside it (same zoom and centre). */
function withSidePanel(change) {
  const before = sidePanelOpen();
  change();
  if (before !== sidePanelOpen()) mapView.resized();
}

const panel = new PropertyPanel(panelEl, {
  conn, store, names, ref, role: user.role, userId: user.id, siteZone: user.siteZone,
  onClose: () => {
    mapView.select(null);
    if (!sidePanelOpen()) mapView.resized();
  },
  onFocus: (id) => mapView.focus(id),
});

const addForm = new AddProperty(document.getElementById("add-property"), {
  conn, store, mapView, ref, userId: user.id,
  onAdded: (id) => selectProperty(id, { focus: true }),
});
addForm.onStart = () => panel.close();
addForm.onLayout = () => mapView.resized();

const feedCtx = {
  names,
  who: (uid) => names.label(uid),
  place: (pid) => {
    const p = store.get(pid);
    return p ? `“${p.location}”` : `property #${pid}`;
  },
  tier: (id) => ref.tierName(id),
  equipmentType: (id) => ref.equipmentTypeName(id),
};

const alarms = new AlarmConsole({
  root: document.getElementById("alarm-console"),
  store, conn, names, role: user.role, userId: user.id,
  place: (pid) => feedCtx.place(pid),
  onFocus: (id) => selectProperty(id, { focus: true }),
});

const feed = new Feed({
  list: document.getElementById("event-feed"),
  summary: document.getElementById("feed-summary"),
  alertsOnly: document.getElementById("feed-alerts-only"),
  toasts: document.getElementById("toasts"),
  ctx: feedCtx,
  onFocus: (id) => selectProperty(id, { focus: true }),
  onMore: () => alarms.focus(),
});

const queues = isStaff ? new StaffQueues({ conn, store, role: user.role, onFocus: (id) => selectProperty(id, { focus: true }), countEl: document.getElementById("queue-count") }) : null;
const drones = isStaff ? new DroneList({ conn, store, onFocus: (id) => selectProperty(id, { focus: true }) }) : null;
const mine = isStaff ? null : new MyProperties({ store, onFocus: (id) => selectProperty(id, { focus: true }) });
const crimes = new CrimesChart({ conn });
const notifications = new NotificationSettings({ root: document.getElementById("tab-notify"), conn, store, role: user.role });
new AccountSettings({ root: document.getElementById("tab-notify"), conn, twoFactor: body.dataset.twoFactor === "1" });

setupTabs((name) => {
  crimes.setVisible(name === "crimes");
  if (name === "queues") queues?.load();
  if (name === "drones") drones?.load();
  if (name === "mine") mine?.render();
  if (name === "notify") notifications.show();
});

function selectProperty(id, { focus = false } = {}) {
  addForm.cancel();
  mapView.select(id);
  withSidePanel(() => panel.open(id));
  if (focus) mapView.focus(id);
}

// ---- connection status -------------------------------------------------------

const statusEl = document.getElementById("connection-status");
const statusLabel = statusEl.querySelector(".conn-label");
conn.onState((state, label) => {
  statusEl.dataset.state = state;
  statusLabel.textContent = state === "connected" ? "Live" : label || state;
  statusEl.title = state === "connected"
    ? "Connected: events arrive live"
    : state === "reconnecting" ? "Connection lost, reconnecting; missed events will be replayed" : "Not connected";
  body.classList.toggle("is-offline", state !== "connected");
  if (conn.fatal) showGlobalError(conn.fatal, { login: true });
});

// ---- live events -------------------------------------------------------------------

let replaying = false;
conn.onEvent((name, e) => {
  feed.add(name, e, { replay: replaying });
  store.apply(name, e);
  if (name === "events.alerts") {
    mapView.flashAlert(e.propertyId);
    if (!replaying) alarms.announce(e);
  }
  panel.onEvent(name, e);
  queues?.onEvent(name);
  drones?.onEvent(name);
  crimes.onEvent(name);
});

// ---- snapshot helpers ------------------------------------------------------------------

/** Walk get-events for one event name, oldest first, in pages. */
async function scanEvents(eventName, visit) {
  let since = 0;
  for (let page = 0; page < EVENT_SCAN_MAX_PAGES; page += 1) {
    const d = await conn.query("get-events", { event: eventName, since, limit: EVENT_SCAN_PAGE });
    const events = d.events || [];
    for (const ev of events) visit(ev);
    if (events.length < EVENT_SCAN_PAGE) return;
    since = Number(events[events.length - 1].eventId);
  }
}

/** Every unresolved alert the user may see (the queue and the map's colours), in pages. */
async function openAlerts() {
  const alerts = [];
  for (let page = 0; page < ALERT_MAX_PAGES; page += 1) {
    const d = await conn.query("get-open-alerts", { limit: ALERT_PAGE, offset: page * ALERT_PAGE });
    alerts.push(...(d.alerts || []));
    if ((d.alerts || []).length < ALERT_PAGE) return { alerts, complete: true };
  }
  return { alerts, complete: false };
}

async function dispatchedDrones() {
  const out = new Map(); // droneId -> propertyId
  if (isStaff) {
    for (let offset = 0; offset < 20000; offset += 1000) {
      const d = await conn.query("get-dispatched-drones", { search: "", limit: 1000, offset });
      for (const dr of d.drones || []) out.set(Number(dr.id), Number(dr.propertyId));
      if ((d.drones || []).length < 1000) break;
    }
    return out;
  }
  // owners may not list dispatched drones: rebuild from their event history
  const changes = [];
  await scanEvents("events.drone-dispatched", (ev) => changes.push([Number(ev.eventId), "out", ev]));
  await scanEvents("events.drone-recalled", (ev) => changes.push([Number(ev.eventId), "in", ev]));
  changes.sort((a, b) => a[0] - b[0]);
  for (const [, kind, ev] of changes) {
    if (kind === "out") out.set(Number(ev.droneId), Number(ev.propertyId));
    else out.delete(Number(ev.droneId));
  }
  return out;
}

const loading = document.getElementById("map-loading");
async function loadSnapshot() {
  loading.hidden = false;
  loading.textContent = "Loading the site map…";
  const started = performance.now();
  performance.mark("propsec:get-map-sent");
  const d = await conn.query("get-map", {});
  performance.mark("propsec:get-map-answered");
  const properties = d.properties || [];
  loading.textContent = `Drawing ${properties.length.toLocaleString()} properties…`;
  let alerts = { alerts: null, complete: false }; // without them, get-map's counts mark the map
  let droneMap = null;
  const problems = [];
  try {
    alerts = await openAlerts();
  } catch (err) {
    problems.push(`the alarm queue (${describeError(err)})`);
  }
  try {
    droneMap = await dispatchedDrones();
  } catch (err) {
    problems.push(`dispatched drones (${describeError(err)})`);
  }
  if (problems.length) {
    showGlobalError(`The map is shown without ${problems.join(" and ")}; live changes still arrive.`);
  }
  performance.mark("propsec:snapshot-complete");
  store.loadSnapshot({ properties, alerts: alerts.alerts, alertsComplete: alerts.complete, drones: droneMap });
  performance.mark("propsec:snapshot-applied");
  loading.hidden = true;
  await mapView.indexReady;
  performance.mark("propsec:index-ready");
  const mapEl = document.getElementById("map");
  mapEl.dataset.propertyCount = store.properties.size;
  mapEl.dataset.loadedMs = Math.round(performance.now() - started);
  loading.hidden = true;
}

async function loadHistory(upTo) {
  if (!upTo) return;
  const d = await conn.query("get-events", { since: Math.max(0, upTo - HISTORY_SIZE * 5), limit: HISTORY_SIZE * 5 });
  const events = (d.events || []).filter((ev) => Number(ev.eventId) <= upTo).slice(-HISTORY_SIZE);
  for (const ev of events) {
    if (conn.markSeen(ev.eventId)) feed.add(ev.event, ev, { history: true });
  }
}

async function loadReferenceData() {
  try {
    const [t, e] = await Promise.all([conn.query("get-tiers"), conn.query("get-equipment-types")]);
    if ((t.tiers || []).length) ref.tiers = t.tiers;
    if ((e.equipmentTypes || []).length) ref.equipmentTypes = e.equipmentTypes;
  } catch (err) {
    console.warn("reference data", err);
  }
}

// ---- the (re)connect sequence ------------------------------------------------------

let synced = false;
let firstView = true;
let syncing = false;

async function onConnected({ reconnect }) {
  if (syncing) return;
  syncing = true;
  try {
    const since = conn.lastEventId;
    const needSnapshot = !synced || since === null;
    if (needSnapshot) store.hold();
    let ack;
    replaying = !needSnapshot;
    try {
      ack = await conn.subscribe("events.all", needSnapshot ? null : since);
    } finally {
      replaying = false;
    }
    showGlobalError(null);
    if (needSnapshot) {
      await loadSnapshot();
      synced = true;
      if (firstView) {
        firstView = false;
        mapView.fitAll();
      }
    }
    if (!reconnect) await loadReferenceData();
    if (conn.lastEventId === null || !reconnect) {
      const newest = Number(ack?.lastEventId) || 0; // the server's newest visible eventId
      if (!reconnect) await loadHistory(newest);
      if (conn.lastEventId === null || newest > conn.lastEventId) {
        // remember where the stream stands without claiming to have seen those events
        conn.lastEventId = Math.max(conn.lastEventId ?? 0, newest);
      }
    }
    queues?.load();
    if (drones && !document.getElementById("tab-drones").hidden) drones.load();
    mine?.render();
    crimes.refresh();
    if (reconnect && panel.id !== null) panel.open(panel.id);
  } catch (err) {
    if (store.holding) store.loadSnapshot({ properties: [...store.properties.values()] });
    if (!conn.socket.connected) {
      // the connection dropped mid-way: the next connect starts this over
      console.warn("sync interrupted by a disconnect", err);
      return;
    }
    console.error("sync failed", err);
    showGlobalError(`Could not load live data: ${describeError(err)} Retrying…`);
    setTimeout(() => {
      if (conn.socket.connected) onConnected({ reconnect }).catch(() => {});
    }, 3000);
  } finally {
    syncing = false;
  }
}
conn.onConnect((info) => { onConnected(info); });

// ---- search box ---------------------------------------------------------------------

const searchInput = document.getElementById("property-search");
const searchResults = document.getElementById("search-results");
let searchIndex = -1;

function closeSearch() {
  searchResults.hidden = true;
  searchInput.setAttribute("aria-expanded", "false");
  searchIndex = -1;
}

function pickResult(id) {
  closeSearch();
  selectProperty(id, { focus: true });
}

const runSearch = debounce(() => {
  const q = searchInput.value;
  clear(searchResults);
  searchIndex = -1;
  if (!q.trim()) {
    closeSearch();
    return;
  }
  const found = store.search(q, 8);
  if (!found.length) {
    searchResults.append(h("li", { class: "muted", role: "option", "aria-disabled": "true" }, `No property matches “${q.trim()}”.`));
  }
  for (const p of found) {
    const li = h("li", { role: "option", dataset: { propertyId: p.id } },
      h("span", { class: "swatch", dataset: { status: p.status } }),
      h("strong", {}, p.location), h("span", { class: "muted" }, ` #${p.id}`));
    li.addEventListener("mousedown", (ev) => {
      ev.preventDefault();
      pickResult(p.id);
    });
    searchResults.append(li);
  }
  searchResults.hidden = false;
  searchInput.setAttribute("aria-expanded", "true");
}, 120);

searchInput.addEventListener("input", runSearch);
searchInput.addEventListener("focus", () => { if (searchInput.value.trim()) runSearch(); });
searchInput.addEventListener("blur", () => setTimeout(closeSearch, 150));
searchInput.addEventListener("keydown", (ev) => {
  const options = [...searchResults.querySelectorAll("li[data-property-id]")];
  if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
    ev.preventDefault();
    if (!options.length) return;
    searchIndex = (searchIndex + (ev.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
    options.forEach((o, i) => o.setAttribute("aria-selected", i === searchIndex ? "true" : "false"));
  } else if (ev.key === "Enter") {
    ev.preventDefault();
    runSearch.cancel();
    const found = searchIndex >= 0 ? [store.get(options[searchIndex].dataset.propertyId)] : store.search(searchInput.value, 1);
    if (found[0]) pickResult(found[0].id);
    else runSearch();
  } else if (ev.key === "Escape") {
    closeSearch();
  }
});

// keep the map sized when the window changes
window.addEventListener("resize", debounce(() => mapView.invalidate(), 150));

// a read-only handle for diagnostics and the benchmark
window.propsec = Object.freeze({ conn, store, mapView, user, alarms });
