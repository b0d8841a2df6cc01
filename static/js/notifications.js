// The "Notify" tab: the user's e-mail preferences and their webhooks (contract
// section 15). A new webhook's secret is shown once, right after adding it; each
// webhook's recent delivery attempts can be opened in place.

import { h, clear, runAction, showMessage, msgLine, describeError, fmtDateTime, confirmFirst } from "./ui.js";
import { SEVERITIES } from "./store.js";

const EVENT_CHOICES = [
  ["events.alerts", "New alerts"],
  ["events.alert-escalated", "Escalations"],
  ["events.alert-acknowledged", "Acknowledged"],
  ["events.alert-resolved", "Resolved"],
  ["events.auth-entries", "Door entries"],
  ["events.crimes", "Crimes"],
  ["events.all", "Everything"],
];

function severitySelect(name, value, { any = false } = {}) {
  return h("select", { name, "aria-label": "Minimum severity" },
    any ? h("option", { value: "" }, "any severity") : null,
    SEVERITIES.map((s) => h("option", { value: s, selected: s === value }, any ? `${s} and above` : s)));
}

export class NotificationSettings {
  constructor({ root, conn, store, role }) {
    this.root = root;
    this.conn = conn;
    this.store = store;
    this.staff = role === "staff" || role === "admin";
    this.loaded = false;
    this.mailBox = h("section", { class: "notify-block", dataset: { section: "email" } });
    this.hooksBox = h("section", { class: "notify-block", dataset: { section: "webhooks" } });
    this.root.append(this.mailBox, this.hooksBox);
  }

  show() {
    if (!this.loaded) this.load();
  }

  async load() {
    this.loaded = true;
    await Promise.all([this.loadMail(), this.loadHooks()]);
  }

  // ---- e-mail ---------------------------------------------------------------------

  async loadMail() {
    const box = clear(this.mailBox);
    const msg = msgLine();
    box.append(h("h2", {}, "E-mail"), msg);
    let prefs;
    try {
      prefs = await this.conn.query("get-notification-preferences");
    } catch (err) {
      showMessage(msg, `Could not load your preferences: ${describeError(err)}`);
      return;
    }
    const address = prefs.address
      ? h("p", { class: "muted" }, "Alerts are mailed to ", h("strong", { dataset: { field: "address" } }, prefs.address), ".")
      : h("p", { class: "muted" }, "No e-mail address is on file for you; an administrator can add one.");
    const on = h("input", { type: "checkbox", name: "email", checked: !!prefs.email });
    const min = severitySelect("minSeverity", prefs.minSeverity);
    const save = h("button", { type: "button", class: "btn btn-small btn-primary", dataset: { action: "save-email" } }, "Save");
    save.addEventListener("click", () => runAction(save, msg,
      () => this.conn.query("set-notification-preferences", { email: on.checked, minSeverity: min.value }), "Saved."));
    const what = this.staff
      ? "E-mail me about new alerts anywhere on the site"
      : "E-mail me about new alerts on my properties";
    box.insertBefore(address, msg);
    box.insertBefore(h("div", { class: "notify-form" },
      h("label", { class: "check" }, on, ` ${what}`),
      h("label", {}, "from severity ", min),
      save), msg);
  }

  // ---- webhooks ---------------------------------------------------------------------

  async loadHooks() {
    const box = clear(this.hooksBox);
    const msg = msgLine();
    const list = h("ul", { class: "item-list webhook-list" });
    this.secretSlot = h("div", { class: "secret-slot" });
    box.append(h("h2", {}, "Webhooks"),
      h("p", { class: "muted small" }, "propsec POSTs each event as JSON, signed with the webhook's secret (X-Propsec-Signature); see the API guide."),
      this.secretSlot, list, this.addForm(), msg);
    try {
      const d = await this.conn.query("get-webhooks");
      for (const hook of d.webhooks || []) list.append(this.hookItem(hook));
      if (!(d.webhooks || []).length) list.append(h("li", { class: "muted empty" }, "No webhooks yet."));
    } catch (err) {
      showMessage(msg, `Could not load your webhooks: ${describeError(err)}`);
    }
  }

  hookItem(hook) {
    const msg = msgLine();
    const where = hook.propertyId ? this.store.get(hook.propertyId)?.location || `property #${hook.propertyId}` : "the whole site";
    const deliveries = h("button", { type: "button", class: "btn btn-small btn-light", dataset: { action: "deliveries" }, "aria-expanded": "false" }, "Deliveries");
    const remove = h("button", { type: "button", class: "btn btn-small btn-light", dataset: { action: "remove-webhook" } }, "Remove");
    const log = h("ol", { class: "delivery-log", hidden: true });
    const li = h("li", { class: `webhook${hook.active ? "" : " is-stopped"}`, dataset: { webhookId: hook.id } },
      h("div", { class: "item-main" },
        h("strong", { class: "webhook-url" }, hook.url),
        h("div", { class: "item-sub muted" },
          `${hook.events.join(", ")} · ${where}${hook.minSeverity ? ` · ${hook.minSeverity}+` : ""}`,
          hook.active ? (hook.failures ? ` · ${hook.failures} failed in a row` : "") : " · stopped after 8 failures")),
      h("div", { class: "row" }, deliveries, remove), log, msg);
    deliveries.addEventListener("click", async () => {
      const opening = log.hidden;
      log.hidden = !opening;
      deliveries.setAttribute("aria-expanded", String(opening));
      if (!opening) return;
      await runAction(deliveries, msg, async () => {
        const d = await this.conn.query("get-webhook-deliveries", { webhookId: hook.id, limit: 20 });
        clear(log);
        for (const a of d.deliveries || []) {
          const ok = a.status !== null && a.status >= 200 && a.status < 300;
          log.append(h("li", { class: ok ? "delivery-ok" : "delivery-bad", dataset: { eventId: a.eventId, status: a.status ?? "" } },
            `${fmtDateTime(a.at)} · ${a.event} #${a.eventId} · try ${a.attempt} · `,
            h("strong", {}, a.status ?? "no answer"), a.error ? ` · ${a.error}` : ""));
        }
        if (!(d.deliveries || []).length) log.append(h("li", { class: "muted" }, "Nothing sent yet."));
      });
    });
    confirmFirst(remove, "Remove for good?", () => runAction(remove, msg,
      () => this.conn.query("remove-webhook", { webhookId: hook.id }).then(() => this.loadHooks())));
    return li;
  }

  addForm() {
    const msg = msgLine();
    const url = h("input", { type: "url", name: "url", required: true, maxlength: "2000", placeholder: "https://example.net/propsec-hook", "aria-label": "Webhook URL" });
    const events = h("fieldset", { class: "event-choices" }, h("legend", {}, "Events"),
      EVENT_CHOICES.map(([value, label]) => h("label", { class: "check" },
        h("input", { type: "checkbox", name: "events", value, checked: value === "events.alerts" }), ` ${label}`)));
    const mine = [...this.store.properties.values()].sort((a, b) => a.id - b.id).slice(0, 500);
    const property = h("select", { name: "propertyId", "aria-label": "Property" },
      this.staff ? h("option", { value: "" }, "the whole site") : null,
      mine.map((p) => h("option", { value: p.id }, `${p.location} (#${p.id})`)));
    const min = severitySelect("minSeverity", "", { any: true });
    const add = h("button", { type: "submit", class: "btn btn-small btn-primary", dataset: { action: "add-webhook" } }, "Add webhook");
    const form = h("form", { class: "notify-form webhook-form", "aria-label": "Add a webhook" },
      url, events, h("label", {}, "For ", property), h("label", {}, "Alerts of ", min), add, msg);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const chosen = [...events.querySelectorAll("input:checked")].map((c) => c.value);
      const data = { url: url.value.trim(), events: chosen };
      if (property.value) data.propertyId = Number(property.value);
      if (min.value) data.minSeverity = min.value;
      runAction(add, msg, async () => {
        const r = await this.conn.query("add-webhook", data);
        url.value = "";
        await this.loadHooks();
        clear(this.secretSlot).append(h("p", { class: "callout secret-once", dataset: { webhookId: r.id } },
          "Signing secret (shown only now; keep it with the receiver): ",
          h("code", { class: "webhook-secret" }, r.secret)));
      });
    });
    return form;
  }
}
