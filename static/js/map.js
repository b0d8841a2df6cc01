// The site map: a Leaflet map on a flat plane (L.CRS.Simple, 1 unit = 1 metre
// at zoom 0). Properties are drawn by one SVG layer whose <rect>s live in
// site coordinates under a single transform, so panning and zooming touch one
// attribute instead of 10,000 shapes, and every drawn property is a real
// element in #map with data-property-id / data-status (protocol section 12).
// Status colours come from CSS. Alert marks and drones are a few DOM markers.

/* global L */

const SVG_NS = "http://www.w3.org/2000/svg";
const FOCUS_MAX_ZOOM = 1;

// A contract point (x right, y down, metres) -> Leaflet LatLng on CRS.Simple.
export function toLatLng(x, y) {
  return L.latLng(-y, x);
}

export function fromLatLng(latlng) {
  return { x: latlng.lng, y: -latlng.lat };
}

function propBounds(p) {
  return L.latLngBounds(toLatLng(p.x, p.y), toLatLng(p.x + p.width, p.y + p.height));
}

/** A Leaflet renderer-like layer drawing rectangles in site metres. */
const SiteLayer = L.Renderer.extend({
  options: { padding: 0.3 },

  _initContainer() {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "site-layer");
    svg.setAttribute("role", "presentation");
    const g = document.createElementNS(SVG_NS, "g");
    g.setAttribute("class", "site-shapes");
    const draft = document.createElementNS(SVG_NS, "g");
    draft.setAttribute("class", "site-draft");
    svg.append(g, draft);
    this._container = svg;
    this._shapes = g;
    this._draftGroup = draft;
  },

  _destroyContainer() {
    L.DomUtil.remove(this._container);
    this._container = null;
  },

  _update() {
    if (this._map._animatingZoom && this._bounds) return;
    L.Renderer.prototype._update.call(this);
    const b = this._bounds;
    const size = b.getSize();
    const svg = this._container;
    if (!this._svgSize || !this._svgSize.equals(size)) {
      this._svgSize = size;
      svg.setAttribute("width", size.x);
      svg.setAttribute("height", size.y);
    }
    L.DomUtil.setPosition(svg, b.min);
    svg.setAttribute("viewBox", [b.min.x, b.min.y, size.x, size.y].join(" "));
    const scale = this._map.getZoomScale(this._zoom, 0);
    const origin = this._map.getPixelOrigin();
    const matrix = `matrix(${scale} 0 0 ${scale} ${-origin.x} ${-origin.y})`;
    this._shapes.setAttribute("transform", matrix);
    this._draftGroup.setAttribute("transform", matrix);
    // very small shapes read better without outlines
    svg.classList.toggle("far", scale < 0.35);
    this.fire("update");
  },
});

export class MapView {
  constructor(container, store, { onSelect, role }) {
    this.store = store;
    this.onSelect = onSelect;
    this.role = role;
    this.rects = new Map(); // id -> SVGRectElement
    this.alertMarkers = new Map(); // propertyId -> L.Marker
    this.droneMarkers = new Map(); // propertyId -> L.Marker
    this.selectedId = null;
    this._addMode = null;

    this.map = L.map(container, {
      crs: L.CRS.Simple,
      minZoom: -7,
      maxZoom: 4,
      zoomSnap: 0.25,
      zoomDelta: 0.5,
      wheelPxPerZoomLevel: 90,
      attributionControl: false,
      boxZoom: true,
      preferCanvas: true,
      zoomControl: true,
    });
    this.map.setView([0, 0], 0);
    this.map.createPane("marks").style.zIndex = 450;
    this.map.createPane("drones").style.zIndex = 460;

    this.layer = new SiteLayer();
    this.layer.addTo(this.map);
    this.svg = this.layer._container;
    this.shapes = this.layer._shapes;

    this._installPointer(container);
    this._installControls();

    store.on("reset", () => this.redrawAll());
    store.on("add", (p) => { this._draw(p); this._refreshMarks(p.id); });
    store.on("update", (p) => { this._draw(p); this._refreshMarks(p.id); });
    store.on("remove", (p) => this._erase(p.id));
    store.on("alerts", (pid) => this._refreshMarks(pid));
    store.on("drones", (pid) => this._refreshDrones(pid));
  }

  // ---- drawing -----------------------------------------------------------

  redrawAll() {
    this.shapes.textContent = "";
    this.rects.clear();
    for (const m of this.alertMarkers.values()) m.remove();
    for (const m of this.droneMarkers.values()) m.remove();
    this.alertMarkers.clear();
    this.droneMarkers.clear();
    const frag = document.createDocumentFragment();
    for (const p of this.store.properties.values()) frag.append(this._makeRect(p));
    this.shapes.append(frag);
    for (const pid of this.store.properties.keys()) {
      if (this.store.hasOpenAlert(pid)) this._refreshMarks(pid);
    }
    for (const pid of new Set(this.store.drones.values())) this._refreshDrones(pid);
    if (this.selectedId !== null) {
      const r = this.rects.get(this.selectedId);
      if (r) r.classList.add("selected");
    }
  }

  _makeRect(p) {
    const r = document.createElementNS(SVG_NS, "rect");
    r.setAttribute("class", "prop");
    r.dataset.propertyId = p.id;
    this.rects.set(p.id, r);
    this._applyShape(r, p);
    return r;
  }

  _applyShape(r, p) {
    r.setAttribute("x", p.x);
    r.setAttribute("y", p.y);
    r.setAttribute("width", Math.max(1, p.width));
    r.setAttribute("height", Math.max(1, p.height));
    if (r.dataset.status !== p.status) r.dataset.status = p.status;
    r.dataset.tier = p.tier;
    r.classList.toggle("alerting", this.store.hasOpenAlert(p.id));
    r.classList.toggle("selected", p.id === this.selectedId);
  }

  _draw(p) {
    const r = this.rects.get(p.id);
    if (r) this._applyShape(r, p);
    else this.shapes.append(this._makeRect(p));
  }

  _erase(id) {
    const r = this.rects.get(id);
    if (r) r.remove();
    this.rects.delete(id);
    this._refreshMarks(id);
    this._refreshDrones(id);
    if (this.selectedId === id) this.selectedId = null;
  }

  _refreshMarks(pid) {
    pid = Number(pid);
    const p = this.store.get(pid);
    const r = this.rects.get(pid);
    const alerting = !!p && this.store.hasOpenAlert(pid);
    if (r) r.classList.toggle("alerting", alerting);
    const existing = this.alertMarkers.get(pid);
    if (!alerting) {
      if (existing) existing.remove();
      this.alertMarkers.delete(pid);
      return;
    }
    const centre = toLatLng(p.x + p.width / 2, p.y + p.height / 2);
    const count = this.store.openAlertCount(pid);
    if (existing) {
      existing.setLatLng(centre);
      existing.getElement()?.setAttribute("data-count", count);
      return;
    }
    const marker = L.marker(centre, {
      pane: "marks",
      interactive: false,
      keyboard: false,
      icon: L.divIcon({ className: "alert-mark", html: "<span>!</span>", iconSize: [22, 22] }),
    }).addTo(this.map);
    marker.getElement()?.setAttribute("data-alert-property-id", pid);
    marker.getElement()?.setAttribute("data-count", count);
    this.alertMarkers.set(pid, marker);
  }

  _refreshDrones(pid) {
    pid = Number(pid);
    const p = this.store.get(pid);
    const drones = p ? this.store.dronesAt(pid) : [];
    const existing = this.droneMarkers.get(pid);
    if (!drones.length) {
      if (existing) existing.remove();
      this.droneMarkers.delete(pid);
      return;
    }
    const corner = toLatLng(p.x + p.width, p.y);
    const html = `<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="6" cy="6" r="3.2"/><circle cx="18" cy="6" r="3.2"/><circle cx="6" cy="18" r="3.2"/><circle cx="18" cy="18" r="3.2"/><path d="M8 8l8 8M16 8l-8 8"/></svg><b>${drones.length > 1 ? drones.length : ""}</b>`;
    if (existing) existing.remove();
    const marker = L.marker(corner, {
      pane: "drones",
      interactive: false,
      keyboard: false,
      title: `Drone ${drones.map((d) => "#" + d).join(", ")} dispatched`,
      icon: L.divIcon({ className: "drone-mark", html, iconSize: [26, 26], iconAnchor: [4, 22] }),
    }).addTo(this.map);
    const el = marker.getElement();
    if (el) {
      el.dataset.droneProperty = pid;
      el.dataset.drones = drones.join(",");
    }
    this.droneMarkers.set(pid, marker);
  }

  // ---- selection and focus ---------------------------------------------------

  select(id) {
    id = id === null ? null : Number(id);
    if (this.selectedId !== null) this.rects.get(this.selectedId)?.classList.remove("selected");
    this.selectedId = id;
    const r = id !== null ? this.rects.get(id) : null;
    if (r) {
      r.classList.add("selected");
      this.shapes.append(r); // draw on top of neighbours
    }
  }

  /** Pan/zoom so the property is in view (keeping room for the side panel). */
  focus(id, { animate = true } = {}) {
    const p = this.store.get(id);
    if (!p) return false;
    const panelOpen = !document.getElementById("property-panel")?.hidden;
    const size = this.map.getSize();
    const rightPad = panelOpen ? Math.min(440, size.x * 0.5) : 60;
    const bounds = propBounds(p);
    const options = { paddingTopLeft: [80, 80], paddingBottomRight: [rightPad + 80, 80], maxZoom: FOCUS_MAX_ZOOM };
    if (animate) this.map.flyToBounds(bounds, { ...options, duration: 0.6 });
    else this.map.fitBounds(bounds, options);
    this.select(p.id);
    return true;
  }

  fitAll() {
    if (!this.store.properties.size) {
      this.map.setView([0, 0], 0);
      return;
    }
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const p of this.store.properties.values()) {
      if (p.x < minX) minX = p.x;
      if (p.y < minY) minY = p.y;
      if (p.x + p.width > maxX) maxX = p.x + p.width;
      if (p.y + p.height > maxY) maxY = p.y + p.height;
    }
    const bounds = L.latLngBounds(toLatLng(minX, minY), toLatLng(maxX, maxY));
    this.map.fitBounds(bounds, { padding: [30, 30], maxZoom: 1, animate: false });
  }

  invalidate() {
    this.map.invalidateSize({ pan: false });
  }

  // ---- pointer handling ----------------------------------------------------

  _installPointer(container) {
    const tip = L.DomUtil.create("div", "map-tip", container);
    tip.hidden = true;
    this.tip = tip;
    L.DomEvent.on(this.svg, "click", (ev) => {
      if (this._addMode) return;
      const target = ev.target.closest?.("rect.prop");
      if (!target) return;
      if (this.map.dragging.moved()) return;
      L.DomEvent.stopPropagation(ev);
      this.onSelect(Number(target.dataset.propertyId), { from: "map" });
    });
    L.DomEvent.on(this.svg, "mousemove", (ev) => {
      const target = ev.target.closest?.("rect.prop");
      if (!target || this._addMode || L.Draggable._dragging) {
        tip.hidden = true;
        return;
      }
      const p = this.store.get(target.dataset.propertyId);
      if (!p) return;
      const pt = this.map.mouseEventToContainerPoint(ev);
      const alerts = this.store.openAlertCount(p.id);
      tip.textContent = `${p.location} · ${p.status.replace("_", " ").toLowerCase()}${alerts ? ` · ${alerts} open alert${alerts > 1 ? "s" : ""}` : ""}`;
      tip.style.left = `${pt.x + 14}px`;
      tip.style.top = `${pt.y + 12}px`;
      tip.hidden = false;
    });
    L.DomEvent.on(this.svg, "mouseout", () => { tip.hidden = true; });
    this.map.on("movestart zoomstart", () => { tip.hidden = true; });
  }

  _installControls() {
    const view = this;
    const Tools = L.Control.extend({
      options: { position: "topleft" },
      onAdd() {
        const box = L.DomUtil.create("div", "leaflet-bar map-tools");
        const fit = L.DomUtil.create("button", "map-tool", box);
        fit.type = "button";
        fit.title = "Show the whole site";
        fit.setAttribute("aria-label", "Show the whole site");
        fit.textContent = "⤢";
        L.DomEvent.on(fit, "click", (e) => { L.DomEvent.stop(e); view.fitAll(); });
        L.DomEvent.disableClickPropagation(box);
        return box;
      },
    });
    new Tools().addTo(this.map);

    const AddControl = L.Control.extend({
      options: { position: "topleft" },
      onAdd() {
        const btn = L.DomUtil.create("button", "btn btn-primary map-add");
        btn.type = "button";
        btn.id = "add-property-button";
        btn.textContent = "+ Add property";
        btn.title = "Click or drag on the map to place a new property";
        L.DomEvent.disableClickPropagation(btn);
        L.DomEvent.on(btn, "click", (e) => {
          L.DomEvent.stop(e);
          if (view._addMode) view.cancelAdd();
          else view.onAddRequested?.();
        });
        view.addButton = btn;
        return btn;
      },
    });
    new AddControl().addTo(this.map);

    const Legend = L.Control.extend({
      options: { position: "bottomleft" },
      onAdd() {
        const box = L.DomUtil.create("div", "map-legend");
        box.setAttribute("aria-label", "Map legend");
        const rows = [
          ["ACTIVE", "Active"],
          ["PENDING", "Pending approval"],
          ["INACTIVE", "Inactive"],
          ["REJECTED", "Rejected"],
          ["REMOVAL_REQUESTED", "Removal requested"],
        ];
        let html = "<strong>Legend</strong><ul>";
        for (const [status, label] of rows) {
          html += `<li><span class="swatch" data-status="${status}"></span>${label}</li>`;
        }
        html += '<li><span class="swatch swatch-alert"></span>Unacknowledged alert</li>';
        html += '<li><span class="swatch swatch-drone"></span>Drone dispatched</li>';
        html += '<li><span class="swatch swatch-selected"></span>Selected</li></ul>';
        box.innerHTML = html;
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        return box;
      },
    });
    new Legend().addTo(this.map);
    L.control.scale({ imperial: false, position: "bottomleft", maxWidth: 140 }).addTo(this.map);

    const Coords = L.Control.extend({
      options: { position: "bottomright" },
      onAdd() {
        const box = L.DomUtil.create("div", "map-coords");
        box.textContent = "x —, y —";
        view.map.on("mousemove", (e) => {
          const { x, y } = fromLatLng(e.latlng);
          box.textContent = `x ${Math.round(x)} m, y ${Math.round(y)} m`;
        });
        return box;
      },
    });
    new Coords().addTo(this.map);
  }

  // ---- adding a property by clicking or dragging --------------------------------

  /** Enter "place a property" mode; onPlaced({x, y, width, height}) after a click/drag. */
  startAdd(onPlaced) {
    this.cancelAdd();
    const map = this.map;
    const container = map.getContainer();
    container.classList.add("adding");
    if (this.addButton) {
      this.addButton.textContent = "Cancel adding";
      this.addButton.classList.add("is-active");
    }
    map.dragging.disable();
    map.boxZoom.disable();
    let start = null;
    const draft = this._ensureDraft();
    const toMetres = (e) => fromLatLng(e.latlng);
    const down = (e) => {
      if (e.originalEvent.button !== 0) return;
      start = { ...toMetres(e), px: e.containerPoint };
      this.setDraft({ x: Math.round(start.x), y: Math.round(start.y), width: 1, height: 1 });
    };
    const move = (e) => {
      if (!start) return;
      const cur = toMetres(e);
      this.setDraft(normRect(start, cur));
    };
    const up = (e) => {
      if (!start) return;
      const cur = toMetres(e);
      const dragged = e.containerPoint.distanceTo(start.px) > 6;
      let rect;
      if (dragged) rect = normRect(start, cur);
      else rect = { x: Math.round(cur.x - 10), y: Math.round(cur.y - 10), width: 20, height: 20 };
      start = null;
      this.setDraft(rect);
      onPlaced(rect);
    };
    map.on("mousedown", down);
    map.on("mousemove", move);
    map.on("mouseup", up);
    this._addMode = { down, move, up, draft };
  }

  cancelAdd() {
    if (!this._addMode) return;
    const { down, move, up } = this._addMode;
    this.map.off("mousedown", down);
    this.map.off("mousemove", move);
    this.map.off("mouseup", up);
    this.map.dragging.enable();
    this.map.boxZoom.enable();
    this.map.getContainer().classList.remove("adding");
    if (this.addButton) {
      this.addButton.textContent = "+ Add property";
      this.addButton.classList.remove("is-active");
    }
    this._addMode = null;
    this.clearDraft();
  }

  get adding() {
    return !!this._addMode;
  }

  _ensureDraft() {
    if (!this._draft) {
      const r = document.createElementNS(SVG_NS, "rect");
      r.setAttribute("class", "draft");
      this._draft = r;
    }
    return this._draft;
  }

  setDraft(rect) {
    const r = this._ensureDraft();
    if (!r.isConnected) this.layer._draftGroup.append(r);
    r.setAttribute("x", rect.x);
    r.setAttribute("y", rect.y);
    r.setAttribute("width", Math.max(1, rect.width));
    r.setAttribute("height", Math.max(1, rect.height));
  }

  clearDraft() {
    if (this._draft) this._draft.remove();
  }
}

function normRect(a, b) {
  const x1 = Math.round(Math.min(a.x, b.x));
  const y1 = Math.round(Math.min(a.y, b.y));
  const x2 = Math.round(Math.max(a.x, b.x));
  const y2 = Math.round(Math.max(a.y, b.y));
  return { x: x1, y: y1, width: Math.max(1, x2 - x1), height: Math.max(1, y2 - y1) };
}
