// The site map: a Leaflet map on a flat plane (L.CRS.Simple, 1 unit = 1 metre
// at zoom 0; contract point (x, y) with y down is LatLng(-y, x)).
//
// Drawing 10,000 properties as DOM or SVG shapes makes every zoom and every
// status change repaint them all, so the shapes are painted on one canvas
// (redrawn at most every REDRAW_MS while events stream in). Above it lies an
// index: one unpainted SVG <rect data-property-id data-status> per drawn
// property (fill and stroke none, pointer-events all), in site metres under a
// single transform. The rects are what a pointer, or a test (protocol section
// 12), clicks; they paint nothing, and a zoom or pan changes one attribute, not
// 10,000 elements. (Absolutely positioned HTML boxes would each become a paint
// layer: far slower.) Alert marks are painted on the canvas; drones and freshly
// raised alerts are a few DOM markers.

/* global L */

// Focusing a property zooms in until it takes about half the view, but not past this zoom
// (2^3 = 8 px per metre); a zoom the user chose that already shows it well is kept.
const FOCUS_MAX_ZOOM = 3;
const OUTLINE_MIN_SCALE = 0.35; // below this, shapes are drawn without outlines
const FRESH_ALERT_MS = 5000;
const REDRAW_MS = 60; // at most ~16 canvas redraws a second for streamed changes
const SVG_NS = "http://www.w3.org/2000/svg";
// The index is split over several <svg> roots: a change then repaints one of
// them (a few hundred rects), not all 10,000.
const INDEX_SHARDS = 32;
const MARGIN_PX = 12; // outlines and alert marks reach this far beyond a shape
const MAX_DIRTY = 12; // more changed areas than this in one frame: one full repaint is cheaper
const GRID_M = 200; // cell size of the spatial grid used for partial repaints
const STATUS_ORDER = ["INACTIVE", "REJECTED", "PENDING", "REMOVAL_REQUESTED", "ACTIVE"];
const SEVERITY_ORDER = ["low", "medium", "high", "critical"]; // painted in this order: critical on top
const LABEL_MIN_PX = [44, 15]; // a property gets its name written on it when it is this big on screen
const LABEL_MAX = 1500; // more labelled shapes in view than this: none (unreadable anyway)

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

/** Status colours come from the CSS custom properties, so app.css stays the one source. */
function readPalette() {
  const css = getComputedStyle(document.documentElement);
  const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  return {
    ACTIVE: [v("--st-active", "#22a45a"), v("--st-active-line", "#12703a")],
    PENDING: [v("--st-pending", "#f5a524"), v("--st-pending-line", "#a16207")],
    INACTIVE: [v("--st-inactive", "#9aa5b4"), v("--st-inactive-line", "#5b6472")],
    REJECTED: [v("--st-rejected", "#c2416f"), v("--st-rejected-line", "#85193f")],
    REMOVAL_REQUESTED: [v("--st-removal", "#8b5cf6"), v("--st-removal-line", "#5b21b6")],
    alert: v("--st-alert", "#e11d48"),
    severity: {
      low: v("--sev-low", "#0284c7"),
      medium: v("--sev-medium", "#ca8a04"),
      high: v("--sev-high", "#ea580c"),
      critical: v("--sev-critical", "#be123c"),
    },
    selected: v("--st-selected", "#1d4ed8"),
    draft: v("--brand", "#1d4ed8"),
  };
}

/** A Leaflet renderer-like layer: one canvas covering the view plus padding. */
const SiteCanvas = L.Renderer.extend({
  options: { padding: 0.15 },

  initialize(view, options) {
    L.Renderer.prototype.initialize.call(this, options);
    this._view = view;
    this._frame = null;
  },

  _initContainer() {
    const canvas = document.createElement("canvas");
    canvas.className = "site-canvas";
    this._container = canvas;
    this._ctx = canvas.getContext("2d");
  },

  _destroyContainer() {
    L.Util.cancelAnimFrame(this._frame);
    L.DomUtil.remove(this._container);
    this._container = null;
  },

  _update() {
    if (this._map._animatingZoom && this._bounds) return;
    L.Renderer.prototype._update.call(this);
    const b = this._bounds;
    const size = b.getSize();
    const ratio = window.devicePixelRatio || 1;
    const canvas = this._container;
    L.DomUtil.setPosition(canvas, b.min);
    canvas.width = Math.round(ratio * size.x);
    canvas.height = Math.round(ratio * size.y);
    canvas.style.width = `${size.x}px`;
    canvas.style.height = `${size.y}px`;
    this._ratio = ratio;
    this._scale = this._map.getZoomScale(this._zoom, 0);
    this._pixelOrigin = this._map.getPixelOrigin();
    this._view._placeIndex(b, this._scale, this._pixelOrigin);
    this._draw();
    this.fire("update");
  },

  /**
   * Ask for a repaint: many changes, one paint. `box` (site metres) repaints just
   * that area; without it, everything. Streamed changes wait until REDRAW_MS
   * after the last paint; `soon` (the user's own action) does not.
   */
  redraw(soon = false, box = null) {
    if (!this._map) return;
    if (soon) this._soon = true;
    if (!box) this._dirty = "all";
    else if (this._dirty !== "all") {
      if (!this._dirty) this._dirty = [];
      this._dirty.push(box);
      if (this._dirty.length > MAX_DIRTY) this._dirty = "all";
    }
    if (this._frame !== null || this._timer) return;
    const wait = this._soon ? 0 : Math.max(0, (this._drawnAt || 0) + REDRAW_MS - performance.now());
    const paint = () => {
      this._timer = null;
      this._frame = L.Util.requestAnimFrame(() => {
        this._frame = null;
        this._flush();
      });
    };
    if (wait > 0) this._timer = setTimeout(paint, wait);
    else paint();
  },

  _flush() {
    const dirty = this._dirty;
    this._dirty = null;
    if (dirty === "all") this._draw(null);
    else if (dirty) this._draw(dirty);
  },

  /** Paint everything (regions null) or only the given areas (site metres). */
  _draw(regions = null) {
    if (!this._bounds || !this._ctx) return;
    if (!regions) this._dirty = null;
    this._drawnAt = performance.now();
    this._soon = false;
    const ctx = this._ctx;
    const view = this._view;
    const palette = view.palette;
    const b = this._bounds;
    const size = b.getSize();
    const s = this._scale;
    // site metres -> canvas pixels: px = x * s + ox
    const ox = -this._pixelOrigin.x - b.min.x;
    const oy = -this._pixelOrigin.y - b.min.y;
    ctx.setTransform(this._ratio, 0, 0, this._ratio, 0, 0);
    let minX = -ox / s;
    let minY = -oy / s;
    let maxX = (size.x - ox) / s;
    let maxY = (size.y - oy) / s;
    let candidates;
    if (regions) {
      // clip to the regions plus room for outlines and marks; draw whatever can reach into them
      const reach = (2 * MARGIN_PX) / s;
      const found = new Map();
      ctx.save();
      ctx.beginPath();
      let any = false;
      for (const r of regions) {
        const px0 = Math.floor(r.x0 * s + ox - MARGIN_PX);
        const py0 = Math.floor(r.y0 * s + oy - MARGIN_PX);
        const px1 = Math.ceil(r.x1 * s + ox + MARGIN_PX);
        const py1 = Math.ceil(r.y1 * s + oy + MARGIN_PX);
        if (px1 < 0 || py1 < 0 || px0 > size.x || py0 > size.y) continue;
        any = true;
        ctx.rect(px0, py0, px1 - px0, py1 - py0);
        ctx.clearRect(px0, py0, px1 - px0, py1 - py0);
        for (const p of view.query(r.x0 - reach, r.y0 - reach, r.x1 + reach, r.y1 + reach)) found.set(p.id, p);
      }
      if (!any) {
        ctx.restore();
        return;
      }
      ctx.clip();
      candidates = [...found.values()].sort((a, b) => a.id - b.id);
    } else {
      ctx.clearRect(0, 0, size.x, size.y);
      candidates = view.store.properties.values();
    }

    const buckets = new Map(STATUS_ORDER.map((st) => [st, []]));
    const alerting = new Map(SEVERITY_ORDER.map((sev) => [sev, []]));
    let anyAlert = false;
    let selected = null;
    for (const p of candidates) {
      if (p.x > maxX || p.y > maxY || p.x + p.width < minX || p.y + p.height < minY) continue;
      let list = buckets.get(p.status);
      if (!list) buckets.set(p.status, (list = []));
      list.push(p);
      const top = view.store.topSeverity(p.id);
      if (top) {
        (alerting.get(top) || alerting.get("high")).push(p);
        anyAlert = true;
      }
      if (p.id === view.selectedId) selected = p;
    }
    const outline = s >= OUTLINE_MIN_SCALE;
    const rect = (p) => {
      const w = Math.max(1, p.width * s);
      const h = Math.max(1, p.height * s);
      return [p.x * s + ox, p.y * s + oy, w, h];
    };
    for (const [status, list] of buckets) {
      if (!list.length) continue;
      const [fill, line] = palette[status] || palette.INACTIVE;
      ctx.globalAlpha = status === "REJECTED" ? 0.6 : 0.85;
      ctx.fillStyle = fill;
      for (const p of list) ctx.fillRect(...rect(p));
      ctx.globalAlpha = 1;
      if (!outline) continue;
      ctx.strokeStyle = line;
      ctx.lineWidth = 1;
      ctx.setLineDash(status === "PENDING" ? [4, 2] : []);
      ctx.beginPath();
      for (const p of list) {
        const [x, y, w, h] = rect(p);
        ctx.rect(Math.round(x) + 0.5, Math.round(y) + 0.5, Math.round(w) - 1, Math.round(h) - 1);
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);
    const labels = outline ? this._drawLabels(ctx, buckets, rect, s) : 0;
    if (!regions) this._map.getContainer().dataset.labels = labels; // (tests read it)
    if (anyAlert) {
      ctx.lineWidth = outline ? 3 : 2;
      for (const [sev, list] of alerting) {
        if (!list.length) continue;
        ctx.strokeStyle = palette.severity[sev];
        ctx.beginPath();
        for (const p of list) ctx.rect(...rect(p));
        ctx.stroke();
      }
    }
    if (selected) {
      ctx.strokeStyle = palette.selected;
      ctx.lineWidth = 4;
      ctx.strokeRect(...rect(selected));
    }
    if (view.draft) {
      ctx.fillStyle = "rgba(29, 78, 216, 0.18)";
      ctx.strokeStyle = palette.draft;
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 3]);
      ctx.fillRect(...rect(view.draft));
      ctx.strokeRect(...rect(view.draft));
      ctx.setLineDash([]);
    }
    // alert marks: a disc in the colour of the top open severity at each alerting property's
    // centre, larger and with "!!" when critical
    if (anyAlert) {
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (const [sev, list] of alerting) {
        const critical = sev === "critical";
        const r = (outline ? 9 : 6) + (critical ? 2 : 0);
        ctx.font = `bold ${outline ? 12 : 9}px system-ui, sans-serif`;
        for (const p of list) {
          const [x, y, w, h] = rect(p);
          const cx = x + w / 2;
          const cy = y + h / 2;
          ctx.beginPath();
          ctx.arc(cx, cy, r, 0, Math.PI * 2);
          ctx.fillStyle = palette.severity[sev];
          ctx.fill();
          ctx.lineWidth = 2;
          ctx.strokeStyle = "#fff";
          ctx.stroke();
          if (outline) {
            ctx.fillStyle = "#fff";
            ctx.fillText(critical ? "!!" : "!", cx, cy + 0.5);
          }
        }
      }
    }
    if (regions) ctx.restore();
    if (!regions && view._firstPaint) {
      view._firstPaint = false;
      performance.mark("propsec:map-painted");
    }
  },

  /** Write each property's name on it where the name fits (cut with "…" where it nearly does). */
  _drawLabels(ctx, buckets, rect, s) {
    const fits = [];
    for (const list of buckets.values()) {
      for (const p of list) {
        if (p.width * s >= LABEL_MIN_PX[0] && p.height * s >= LABEL_MIN_PX[1]) fits.push(p);
        if (fits.length > LABEL_MAX) return 0;
      }
    }
    if (!fits.length) return 0;
    const size = Math.max(10, Math.min(13, Math.floor(s * 4)));
    ctx.font = `600 ${size}px system-ui, sans-serif`;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillStyle = "#0f172a";
    const cache = this._labelCache || (this._labelCache = new Map());
    if (cache.size > 20000) cache.clear();
    for (const p of fits) {
      const [x, y, w] = rect(p);
      const room = w - 8;
      const key = `${p.location}|${size}|${Math.floor(room)}`;
      let text = cache.get(key);
      if (text === undefined) {
        text = p.location || "";
        if (ctx.measureText(text).width > room) {
          while (text.length > 1 && ctx.measureText(`${text}…`).width > room) text = text.slice(0, -1);
          text = text.length > 1 ? `${text.trimEnd()}…` : "";
        }
        cache.set(key, text);
      }
      if (text) ctx.fillText(text, x + 4, y + 3);
    }
    return fits.length;
  },
});

export class MapView {
  constructor(container, store, { onSelect, role }) {
    this.store = store;
    this.onSelect = onSelect;
    this.role = role;
    this.palette = readPalette();
    this.hits = new Map(); // id -> index <rect>
    this.grid = new Map(); // "cx,cy" -> Set(property id)
    this.placed = new Map(); // id -> {x0, y0, x1, y1} as last drawn
    this.freshMarkers = new Map(); // propertyId -> L.Marker (pulsing, for new alerts)
    this.droneMarkers = new Map(); // propertyId -> L.Marker
    this.selectedId = null;
    this.draft = null;
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
    this.map.createPane("hits").style.zIndex = 420;
    this.map.createPane("marks").style.zIndex = 450;
    this.map.createPane("drones").style.zIndex = 460;

    // the index of drawn properties: unpainted SVG rects in site metres
    this.index = L.DomUtil.create("div", "site-index", this.map.getPane("hits"));
    this.index.setAttribute("aria-hidden", "true");
    this.shards = [];
    for (let i = 0; i < INDEX_SHARDS; i += 1) {
      const svg = document.createElementNS(SVG_NS, "svg");
      const g = document.createElementNS(SVG_NS, "g");
      svg.append(g);
      this.index.append(svg);
      this.shards.push({ svg, g });
    }

    this.layer = new SiteCanvas(this);
    this.layer.addTo(this.map);

    this._installPointer(container);
    this._installControls();

    store.on("reset", () => this.redrawAll());
    store.on("add", (p) => this._draw(p));
    store.on("update", (p) => this._draw(p));
    store.on("remove", (p) => this._erase(p.id));
    store.on("alerts", (pid) => this._refreshAlert(pid));
    store.on("drones", (pid) => this._refreshDrones(pid));
  }

  // ---- drawing -----------------------------------------------------------

  /** Called by the canvas layer after each view change: cover its bounds, metres -> pixels. */
  _placeIndex(bounds, scale, pixelOrigin) {
    const size = bounds.getSize();
    const viewBox = `${bounds.min.x} ${bounds.min.y} ${size.x} ${size.y}`;
    const matrix = `matrix(${scale} 0 0 ${scale} ${-pixelOrigin.x} ${-pixelOrigin.y})`;
    L.DomUtil.setPosition(this.index, bounds.min);
    for (const { svg, g } of this.shards) {
      svg.setAttribute("width", size.x);
      svg.setAttribute("height", size.y);
      svg.setAttribute("viewBox", viewBox);
      g.setAttribute("transform", matrix);
    }
  }

  redrawAll() {
    for (const m of this.freshMarkers.values()) m.remove();
    for (const m of this.droneMarkers.values()) m.remove();
    this.freshMarkers.clear();
    this.droneMarkers.clear();
    this.grid.clear();
    this.placed.clear();
    for (const p of this.store.properties.values()) this._place(p);
    for (const pid of new Set(this.store.drones.values())) this._refreshDrones(pid);
    this._firstPaint = true;
    this.layer.redraw(true);
    // the index is rebuilt right after the canvas has been painted, in one go
    this.hits.clear();
    for (const { g } of this.shards) g.textContent = "";
    this._indexPending = true;
    this.indexReady = new Promise((resolve) => {
      L.Util.requestAnimFrame(() => setTimeout(() => {
        this._buildIndex();
        resolve();
      }, 0));
    });
    return this.indexReady;
  }

  /** All index rects from the store as it is now (markup per shard: much faster than one by one). */
  _buildIndex() {
    const parts = this.shards.map(() => []);
    const order = this.shards.map(() => []);
    for (const p of this.store.properties.values()) {
      const k = p.id % INDEX_SHARDS;
      const st = STATUS_ORDER.includes(p.status) ? p.status : "INACTIVE";
      const top = this.store.topSeverity(p.id);
      const cls = top ? ' class="alerting"' : "";
      parts[k].push(`<rect data-property-id="${Number(p.id)}" data-status="${st}" data-severity="${top || ""}"${cls} x="${Number(p.x)}" y="${Number(p.y)}" width="${Math.max(1, Number(p.width))}" height="${Math.max(1, Number(p.height))}"/>`);
      order[k].push(p);
    }
    this.hits.clear();
    this.shards.forEach(({ g }, k) => {
      g.innerHTML = parts[k].join("");
      let i = 0;
      for (const rect of g.children) {
        const p = order[k][i++];
        rect._geometry = `${p.x},${p.y},${p.width},${p.height}`;
        this.hits.set(p.id, rect);
      }
    });
    this._indexPending = false;
    if (this.selectedId !== null) this.hits.get(this.selectedId)?.classList.add("selected");
  }

  _makeHit(p) {
    const rect = document.createElementNS(SVG_NS, "rect");
    rect.dataset.propertyId = p.id;
    this.hits.set(p.id, rect);
    this._applyHit(rect, p);
    return rect;
  }

  _applyHit(rect, p) {
    const geometry = `${p.x},${p.y},${p.width},${p.height}`;
    if (rect._geometry !== geometry) {
      rect._geometry = geometry;
      rect.setAttribute("x", p.x);
      rect.setAttribute("y", p.y);
      rect.setAttribute("width", Math.max(1, p.width));
      rect.setAttribute("height", Math.max(1, p.height));
    }
    if (rect.dataset.status !== p.status) rect.dataset.status = p.status;
    this._applySeverity(rect, p.id);
  }

  /** data-severity (the top open severity, or empty) and .alerting on an index rect. */
  _applySeverity(rect, pid) {
    const top = this.store.topSeverity(pid) || "";
    if (rect.dataset.severity !== top) rect.dataset.severity = top;
    if (rect.classList.contains("alerting") !== !!top) rect.classList.toggle("alerting", !!top);
  }

  // ---- spatial grid: which properties may touch an area (for partial repaints)

  _cells(x0, y0, x1, y1, visit) {
    const cx0 = Math.floor(x0 / GRID_M);
    const cy0 = Math.floor(y0 / GRID_M);
    const cx1 = Math.floor(x1 / GRID_M);
    const cy1 = Math.floor(y1 / GRID_M);
    if ((cx1 - cx0 + 1) * (cy1 - cy0 + 1) > 4096) return false;
    for (let cx = cx0; cx <= cx1; cx += 1) for (let cy = cy0; cy <= cy1; cy += 1) visit(`${cx},${cy}`);
    return true;
  }

  /** Record where a property is drawn; returns the area it covered before (or null). */
  _place(p) {
    const before = this.placed.get(p.id) || null;
    if (before) this._unplace(p.id);
    const box = { x0: p.x, y0: p.y, x1: p.x + p.width, y1: p.y + p.height };
    this.placed.set(p.id, box);
    this._cells(box.x0, box.y0, box.x1, box.y1, (key) => {
      let cell = this.grid.get(key);
      if (!cell) this.grid.set(key, (cell = new Set()));
      cell.add(p.id);
    });
    return before;
  }

  _unplace(id) {
    const box = this.placed.get(id);
    if (!box) return null;
    this.placed.delete(id);
    this._cells(box.x0, box.y0, box.x1, box.y1, (key) => this.grid.get(key)?.delete(id));
    return box;
  }

  /** Properties that may intersect the area (site metres). */
  query(x0, y0, x1, y1) {
    const ids = new Set();
    const ok = this._cells(x0, y0, x1, y1, (key) => {
      const cell = this.grid.get(key);
      if (cell) for (const id of cell) ids.add(id);
    });
    if (!ok) return this.store.properties.values();
    const out = [];
    for (const id of [...ids].sort((a, b) => a - b)) {
      const p = this.store.get(id);
      if (p) out.push(p);
    }
    return out;
  }

  _repaint(box, soon = false) {
    if (box) this.layer.redraw(soon, box);
  }

  _draw(p) {
    const rect = this.hits.get(p.id);
    if (rect) this._applyHit(rect, p);
    else if (!this._indexPending) this.shards[p.id % INDEX_SHARDS].g.append(this._makeHit(p));
    if (this.droneMarkers.has(p.id)) this._refreshDrones(p.id);
    const before = this._place(p);
    if (before && (before.x0 !== p.x || before.y0 !== p.y || before.x1 !== p.x + p.width || before.y1 !== p.y + p.height)) {
      this._repaint(before);
    }
    this._repaint(this.placed.get(p.id));
  }

  _erase(id) {
    const rect = this.hits.get(id);
    if (rect) rect.remove();
    this.hits.delete(id);
    this._refreshAlert(id);
    this._refreshDrones(id);
    if (this.selectedId === id) this.selectedId = null;
    this._repaint(this._unplace(id));
  }

  _refreshAlert(pid) {
    pid = Number(pid);
    const p = this.store.get(pid);
    const alerting = !!p && this.store.hasOpenAlert(pid);
    const rect = this.hits.get(pid);
    if (rect) this._applySeverity(rect, pid);
    const fresh = this.freshMarkers.get(pid);
    if (!alerting && fresh) {
      fresh.remove();
      this.freshMarkers.delete(pid);
    }
    this._repaint(this.placed.get(pid));
  }

  /** A new alert "lights up": a pulsing ring for a few seconds (the mark itself is painted). */
  flashAlert(pid) {
    pid = Number(pid);
    const p = this.store.get(pid);
    if (!p || this.freshMarkers.size > 12) return;
    this.freshMarkers.get(pid)?.remove();
    const marker = L.marker(toLatLng(p.x + p.width / 2, p.y + p.height / 2), {
      pane: "marks",
      interactive: false,
      keyboard: false,
      icon: L.divIcon({ className: "alert-pulse", html: "<span></span>", iconSize: [34, 34] }),
    }).addTo(this.map);
    marker.getElement()?.setAttribute("data-alert-property-id", pid);
    this.freshMarkers.set(pid, marker);
    setTimeout(() => {
      if (this.freshMarkers.get(pid) === marker) {
        marker.remove();
        this.freshMarkers.delete(pid);
      }
    }, FRESH_ALERT_MS);
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
    this.hits.get(this.selectedId)?.classList.remove("selected");
    this._repaint(this.placed.get(this.selectedId), true);
    this.selectedId = id;
    this.hits.get(id)?.classList.add("selected");
    this._repaint(this.placed.get(id), true);
  }

  /**
   * Bring a property into view: centred, at the user's zoom when that shows it well
   * (neither a speck nor larger than the view), else zoomed so it takes about half
   * the view. Never zooms out just because a property was chosen.
   */
  focus(id, { animate = true } = {}) {
    const p = this.store.get(id);
    if (!p) return false;
    const map = this.map;
    const bounds = propBounds(p);
    const fill = map.getBoundsZoom(bounds, false, L.point(80, 80)); // the property fills the view
    const comfortable = Math.min(fill - 1, FOCUS_MAX_ZOOM);
    const current = map.getZoom();
    const zoom = current >= comfortable - 1 && current <= fill ? current : comfortable;
    if (animate && Math.abs(zoom - current) > 0.01) map.flyTo(bounds.getCenter(), zoom, { duration: 0.5 });
    else map.setView(bounds.getCenter(), zoom, { animate });
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

  /**
   * The map's box changed (a side panel opened or closed): keep the zoom and the centre,
   * so opening and closing panels never shrinks the site, and keep the selected property
   * in view.
   */
  resized() {
    const map = this.map;
    const centre = map.getCenter();
    const zoom = map.getZoom();
    map.invalidateSize({ pan: false, animate: false });
    map.setView(centre, zoom, { animate: false });
    const selected = this.selectedId !== null ? this.store.get(this.selectedId) : null;
    if (selected) map.panInside(propBounds(selected).getCenter(), { padding: [60, 60], animate: false });
  }

  // ---- pointer handling ----------------------------------------------------

  _installPointer(container) {
    const tip = L.DomUtil.create("div", "map-tip", container);
    tip.hidden = true;
    this.tip = tip;
    L.DomEvent.on(this.index, "click", (ev) => {
      if (this._addMode) return;
      const target = ev.target.closest?.("[data-property-id]");
      if (!target) return;
      if (this.map.dragging.moved()) return;
      L.DomEvent.stopPropagation(ev);
      this.onSelect(Number(target.dataset.propertyId), { from: "map" });
    });
    L.DomEvent.on(this.index, "mousemove", (ev) => {
      const target = ev.target.closest?.("[data-property-id]");
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
    L.DomEvent.on(this.index, "mouseout", () => { tip.hidden = true; });
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
        // a <details>, so it can be folded away where it would hide the map
        const box = L.DomUtil.create("details", "map-legend");
        const roomy = window.innerWidth >= 1200 && window.innerHeight >= 760;
        box.open = roomy;
        const rows = [
          ["ACTIVE", "Active"],
          ["PENDING", "Pending approval"],
          ["INACTIVE", "Inactive"],
          ["REJECTED", "Rejected"],
          ["REMOVAL_REQUESTED", "Removal requested"],
        ];
        let html = "<summary>Legend</summary><ul>";
        for (const [status, label] of rows) {
          html += `<li><span class="swatch" data-status="${status}"></span>${label}</li>`;
        }
        html += '<li class="legend-severities"><span class="muted">Open alert:</span>'
          + ["low", "medium", "high", "critical"].map((sev) => `<span class="swatch swatch-alert" data-severity="${sev}" title="${sev}"></span>${sev}`).join(" ")
          + "</li>";
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
    this._addMode = { down, move, up };
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

  setDraft(rect) {
    this.clearDraft();
    this.draft = { ...rect, width: Math.max(1, rect.width), height: Math.max(1, rect.height) };
    this._repaint(this._draftBox(), true);
  }

  clearDraft() {
    const box = this._draftBox();
    this.draft = null;
    this._repaint(box, true);
  }

  _draftBox() {
    const d = this.draft;
    return d ? { x0: d.x, y0: d.y, x1: d.x + d.width, y1: d.y + d.height } : null;
  }
}

function normRect(a, b) {
  const x1 = Math.round(Math.min(a.x, b.x));
  const y1 = Math.round(Math.min(a.y, b.y));
  const x2 = Math.round(Math.max(a.x, b.x));
  const y2 = Math.round(Math.max(a.y, b.y));
  return { x: x1, y: y1, width: Math.max(1, x2 - x1), height: Math.max(1, y2 - y1) };
}
