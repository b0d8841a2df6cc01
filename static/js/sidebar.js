// Sidebar: tab switching, the site-wide crimes chart and the owner's list of
// their own properties.

import { h, clear, showMessage, describeError, debounce, statusBadge } from "./ui.js";
import { barChart } from "./charts.js";
import { dayAgoLabel } from "./panel.js";

export function setupTabs(onShow) {
  const tabs = [...document.querySelectorAll(".tabs [role=tab]")];
  const show = (name) => {
    for (const tab of tabs) {
      const active = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", active ? "true" : "false");
      tab.tabIndex = active ? 0 : -1;
      const panel = document.getElementById(`tab-${tab.dataset.tab}`);
      if (panel) panel.hidden = !active;
    }
    onShow?.(name);
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => show(tab.dataset.tab));
    tab.addEventListener("keydown", (ev) => {
      if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
      const i = tabs.indexOf(tab);
      const next = tabs[(i + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      next.focus();
      show(next.dataset.tab);
    });
  }
  return show;
}

export class CrimesChart {
  constructor({ conn }) {
    this.conn = conn;
    this.canvas = document.getElementById("crimes-chart");
    this.msg = document.getElementById("crimes-msg");
    this.summary = document.getElementById("crimes-summary");
    this.refresh = debounce(() => this.load(), 1000);
    this.visible = false;
    this.stale = true;
  }

  setVisible(visible) {
    this.visible = visible;
    if (visible && this.stale) this.load();
  }

  async load() {
    if (!this.visible) {
      this.stale = true;
      return;
    }
    this.stale = false;
    try {
      const d = await this.conn.query("get-crimes-in-area", { days: 3 });
      const rows = [...(d.crimes || [])].sort((a, b) => Number(b.day) - Number(a.day));
      barChart(this.canvas, rows.map((r) => dayAgoLabel(r.day)), rows.map((r) => Number(r.count) || 0), { label: "Crimes", color: "#dc2626" });
      const total = rows.reduce((n, r) => n + (Number(r.count) || 0), 0);
      this.summary.textContent = `${total} crime${total === 1 ? "" : "s"} reported on the whole site in the last 3 days.`;
      showMessage(this.msg, null);
    } catch (err) {
      showMessage(this.msg, `Could not load the crimes: ${describeError(err)}`);
    }
  }

  onEvent(name) {
    if (name === "events.crimes") this.refresh();
  }
}

/** Owner view: their own properties, kept in step with the map store. */
export class MyProperties {
  constructor({ store, onFocus }) {
    this.list = document.getElementById("my-properties");
    this.store = store;
    this.onFocus = onFocus;
    if (!this.list) return;
    const redraw = debounce(() => this.render(), 150);
    for (const kind of ["reset", "add", "update", "remove", "alerts"]) store.on(kind, redraw);
    this.list.addEventListener("click", (ev) => {
      const li = ev.target.closest("li[data-property-id]");
      if (li) this.onFocus(Number(li.dataset.propertyId));
    });
  }

  render() {
    if (!this.list) return;
    clear(this.list);
    const props = [...this.store.properties.values()].sort((a, b) => b.id - a.id);
    if (!props.length) {
      this.list.append(h("li", { class: "muted empty" }, "You have no properties yet."));
      return;
    }
    for (const p of props.slice(0, 300)) {
      const alerts = this.store.openAlertCount(p.id);
      this.list.append(h("li", { class: "queue-item clickable", tabindex: "0", dataset: { propertyId: p.id, status: p.status } },
        h("div", { class: "item-main" }, h("strong", {}, p.location), h("span", { class: "muted" }, ` #${p.id}`)),
        h("div", { class: "row" }, statusBadge(p.status), alerts ? h("span", { class: "status-badge badge-alert" }, `${alerts} alert${alerts > 1 ? "s" : ""}`) : null)));
    }
  }
}
