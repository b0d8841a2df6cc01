// Staff views in the sidebar: the approval and removal queues (searchable) and
// the list of dispatched drones. Admin-only buttons appear only for admins.

import { h, clear, runAction, showMessage, msgLine, describeError, debounce, statusBadge, confirmFirst, overlapWarning } from "./ui.js";

const QUEUE_LIMIT = 100;
const QUEUE_EVENTS = new Set([
  "events.property-added",
  "events.property-status-change",
  "events.requested-remove-property",
  "events.approved-remove-property",
  "events.property-removed",
  "events.property-coordinates-changed",
  "events.property-tier-changed",
]);

class Queue {
  constructor(root, { conn, query, role, renderActions, onFocus, emptyText, onCount, warn }) {
    this.warn = warn;
    this.root = root;
    this.conn = conn;
    this.query = query;
    this.role = role;
    this.renderActions = renderActions;
    this.onFocus = onFocus;
    this.emptyText = emptyText;
    this.onCount = onCount;
    this.list = root.querySelector("[data-role=list]");
    this.msg = root.querySelector("[data-role=msg]");
    this.countEl = root.querySelector("[data-role=count]");
    this.search = root.querySelector("input[type=search]");
    this.refresh = debounce(() => this.load(), 300);
    this.search.addEventListener("input", () => this.refresh());
    this._seq = 0;
  }

  async load() {
    const seq = ++this._seq;
    const search = this.search.value.trim();
    try {
      const d = await this.conn.query(this.query, { search, limit: QUEUE_LIMIT, offset: 0 });
      if (seq !== this._seq) return;
      showMessage(this.msg, null);
      this.render(d.properties || [], search);
    } catch (err) {
      if (seq !== this._seq) return;
      showMessage(this.msg, `Could not load this queue: ${describeError(err)}`);
    }
  }

  render(items, search) {
    clear(this.list);
    const n = items.length;
    this.countEl.textContent = n >= QUEUE_LIMIT ? `${QUEUE_LIMIT}+` : String(n);
    this.countEl.dataset.n = n;
    if (!search) this.onCount?.(n);
    if (!n) {
      this.list.append(h("li", { class: "muted empty" }, search ? `Nothing matches “${search}”.` : this.emptyText));
      return;
    }
    for (const p of items) {
      const show = h("button", { type: "button", class: "btn btn-small btn-light" }, "Show");
      show.addEventListener("click", () => this.onFocus(p.id));
      const msg = msgLine();
      const actions = this.renderActions(p, msg);
      this.list.append(
        h("li", { class: "queue-item", dataset: { propertyId: p.id, status: p.status } },
          h("div", { class: "item-main" },
            h("strong", {}, p.location),
            h("span", { class: "muted" }, ` #${p.id} · x ${p.x}, y ${p.y} · ${p.width ?? 20} × ${p.height ?? 20} m`),
            p.description ? h("div", { class: "item-sub muted" }, p.description) : null,
            this.warn?.(p)),
          h("div", { class: "row" }, statusBadge(p.status), show, actions),
          msg),
      );
    }
  }
}

export class StaffQueues {
  constructor({ conn, store, role, onFocus, countEl }) {
    this.conn = conn;
    this.role = role;
    const isAdmin = role === "admin";
    let counts = { pending: 0, removal: 0 };
    const updateBadge = () => {
      if (!countEl) return;
      const total = counts.pending + counts.removal;
      countEl.hidden = total === 0;
      countEl.textContent = String(total);
    };
    const act = (query, data, label, cls, action) => (p, msg) => {
      const btn = h("button", { type: "button", class: `btn btn-small ${cls}`, dataset: { action } }, label);
      btn.addEventListener("click", () => runAction(btn, msg, () => conn.query(query, { propertyId: p.id, ...data }).then(() => this.refresh())));
      return btn;
    };
    this.pending = new Queue(document.getElementById("queue-pending"), {
      conn, role, onFocus,
      query: "search-pending-properties",
      emptyText: "No property is waiting for approval.",
      onCount: (n) => { counts.pending = n; updateBadge(); },
      // a pending property drawn over another owner's (which its owner cannot see) is named,
      // and approving it asks first
      warn: (p) => overlapWarning(store.overlapping(p)),
      renderActions: isAdmin
        ? (p, msg) => {
          const overlaps = store.overlapping(p).length;
          const approve = h("button", { type: "button", class: "btn btn-small btn-ok", dataset: { action: "approve" } }, "Approve");
          confirmFirst(approve, overlaps ? `Approve anyway, overlapping ${overlaps}?` : null,
            () => runAction(approve, msg, () => conn.query("change-property-status", { propertyId: p.id, status: "ACTIVE" }).then(() => this.refresh())));
          return [approve, act("change-property-status", { status: "REJECTED" }, "Reject", "btn-danger-outline", "reject")(p, msg)];
        }
        : () => h("span", { class: "muted small" }, "awaiting an admin"),
    });
    this.removal = new Queue(document.getElementById("queue-removal"), {
      conn, role, onFocus,
      query: "search-removal-properties",
      emptyText: "No removal requests.",
      onCount: (n) => { counts.removal = n; updateBadge(); },
      renderActions: isAdmin
        ? act("approve-remove-property", {}, "Approve removal", "btn-danger", "approve-removal")
        : () => h("span", { class: "muted small" }, "awaiting an admin"),
    });
  }

  refresh() {
    this.pending.refresh();
    this.removal.refresh();
  }

  load() {
    this.pending.load();
    this.removal.load();
  }

  onEvent(name) {
    if (QUEUE_EVENTS.has(name)) this.refresh();
  }
}

export class DroneList {
  constructor({ conn, store, onFocus }) {
    this.conn = conn;
    this.store = store;
    this.onFocus = onFocus;
    this.list = document.getElementById("drone-list");
    this.msg = document.getElementById("drones-msg");
    this.search = document.getElementById("drone-search");
    this.refresh = debounce(() => this.load(), 300);
    this.search?.addEventListener("input", () => this.refresh());
    this._seq = 0;
  }

  async load() {
    if (!this.list) return;
    const seq = ++this._seq;
    try {
      const d = await this.conn.query("get-dispatched-drones", { search: this.search.value.trim(), limit: 100 });
      if (seq !== this._seq) return;
      showMessage(this.msg, null);
      this.render(d.drones || []);
    } catch (err) {
      if (seq !== this._seq) return;
      showMessage(this.msg, `Could not load the drones: ${describeError(err)}`);
    }
  }

  render(drones) {
    clear(this.list);
    if (!drones.length) {
      this.list.append(h("li", { class: "muted empty" }, this.search.value.trim() ? "No dispatched drone matches." : "No drone is in the air."));
      return;
    }
    for (const d of drones) {
      const p = this.store.get(d.propertyId);
      const show = h("button", { type: "button", class: "btn btn-small btn-light" }, "Show");
      show.addEventListener("click", () => this.onFocus(d.propertyId));
      const recall = h("button", { type: "button", class: "btn btn-small", dataset: { action: "recall" } }, "Recall");
      const msg = msgLine();
      recall.addEventListener("click", () => runAction(recall, msg, () => this.conn.query("recall-drone", { droneId: d.id }).then(() => this.refresh())));
      this.list.append(h("li", { class: "queue-item", dataset: { droneId: d.id } },
        h("div", { class: "item-main" }, h("strong", {}, `Drone #${d.id}`), h("span", { class: "muted" }, ` ${d.description || ""} · over ${p ? p.location : `property #${d.propertyId}`}`)),
        h("div", { class: "row" }, show, recall), msg));
    }
  }

  onEvent(name) {
    if (name === "events.drone-dispatched" || name === "events.drone-recalled") this.refresh();
  }
}
