// "Add property": pick a spot (click) or draw an outline (drag) on the map,
// fill in the details, send add-property with clientId = the user's own id.

import { h, clear, showMessage, msgLine, describeError } from "./ui.js";

export class AddProperty {
  constructor(el, { conn, store, mapView, ref, userId, onAdded }) {
    this.el = el;
    this.conn = conn;
    this.store = store;
    this.mapView = mapView;
    this.ref = ref;
    this.userId = userId;
    this.onAdded = onAdded;
    mapView.onAddRequested = () => this.start();
    el.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.cancel();
    });
  }

  start() {
    this.onStart?.();
    const wasHidden = this.el.hidden;
    this.el.hidden = false;
    if (wasHidden) this.onLayout?.(true);
    this._renderIntro();
    this.mapView.startAdd((rect) => this._renderForm(rect));
  }

  cancel() {
    this.mapView.cancelAdd();
    if (this.el.hidden) return;
    this.el.hidden = true;
    clear(this.el);
    this.onLayout?.(false);
  }

  _head(title) {
    const close = h("button", { type: "button", class: "panel-close", "aria-label": "Cancel adding a property" }, "×");
    close.addEventListener("click", () => this.cancel());
    return h("header", { class: "panel-head" }, h("h2", { class: "panel-title" }, title), close);
  }

  _renderIntro() {
    clear(this.el).append(
      this._head("Add a property"),
      h("div", { class: "panel-body" },
        h("ol", { class: "steps" },
          h("li", {}, h("strong", {}, "Click"), " on the map to place a 20 × 20 m property there, or ", h("strong", {}, "drag"), " to draw its outline."),
          h("li", {}, "Fill in its name and details."),
          h("li", {}, "It appears as ", h("em", {}, "pending"), " until an administrator approves it."))),
    );
  }

  _renderForm(rect) {
    const field = (label, input, name) => h("label", { class: "field", dataset: { field: name } }, h("span", {}, label), input, h("small", { class: "field-error", hidden: true }));
    const num = (name, value, min, max) => h("input", { type: "number", name, value, min, max, step: "1", required: true });
    const location = h("input", { type: "text", name: "location", maxlength: "200", required: true, placeholder: "e.g. 12 Harbour Road", autocomplete: "off" });
    const tier = h("select", { name: "tier" }, this.ref.tiers.map((t) => h("option", { value: t.id }, t.name)));
    const description = h("textarea", { name: "description", maxlength: "2000", rows: "3", placeholder: "What should the guards know? (optional)" });
    const x = num("x", rect.x, -1000000, 1000000);
    const y = num("y", rect.y, -1000000, 1000000);
    const width = num("width", rect.width, 1, 100000);
    const height = num("height", rect.height, 1, 100000);
    const msg = msgLine();
    const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Add property");
    const cancel = h("button", { type: "button", class: "btn btn-light" }, "Cancel");
    cancel.addEventListener("click", () => this.cancel());

    const form = h("form", { class: "add-form", novalidate: true },
      field("Name / location", location, "location"),
      field("Tier", tier, "tier"),
      field("Description", description, "description"),
      h("div", { class: "field-row" }, field("x (m)", x, "x"), field("y (m)", y, "y")),
      h("div", { class: "field-row" }, field("Width (m)", width, "width"), field("Height (m)", height, "height")),
      h("p", { class: "muted small" }, "Click or drag on the map again to move the outline."),
      msg,
      h("div", { class: "row" }, submit, cancel));

    const redraw = () => {
      const r = { x: Number(x.value), y: Number(y.value), width: Number(width.value), height: Number(height.value) };
      if ([r.x, r.y, r.width, r.height].every(Number.isFinite)) this.mapView.setDraft(r);
    };
    for (const inp of [x, y, width, height]) inp.addEventListener("input", redraw);

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const small of form.querySelectorAll(".field-error")) small.hidden = true;
      for (const inp of form.querySelectorAll("[aria-invalid]")) inp.removeAttribute("aria-invalid");
      showMessage(msg, null);
      if (!location.value.trim()) {
        this._fieldError(form, "location", "Give the property a name or address.");
        showMessage(msg, "Please give the property a name or address.");
        location.focus();
        return;
      }
      const data = {
        location: location.value.trim(),
        tier: Number(tier.value),
        x: Math.round(Number(x.value)),
        y: Math.round(Number(y.value)),
        width: Math.round(Number(width.value)),
        height: Math.round(Number(height.value)),
        description: description.value.trim(),
        clientId: this.userId,
      };
      submit.disabled = true;
      try {
        const r = await this.conn.query("add-property", data);
        const id = Number(r.id);
        let prop = { ...data, id, status: "PENDING", owner: this.userId };
        try {
          const d = await this.conn.query("get-property", { propertyId: id });
          prop = d.property || prop;
        } catch (err) {
          console.warn("get-property after add failed", err);
        }
        this.store.upsert(prop);
        this.cancel();
        this.onAdded?.(id);
      } catch (err) {
        if (err.fields) for (const [name, why] of Object.entries(err.fields)) this._fieldError(form, name, why);
        showMessage(msg, `Could not add the property: ${describeError(err)}`);
      } finally {
        submit.disabled = false;
      }
    });

    clear(this.el).append(this._head("New property"), h("div", { class: "panel-body" }, form));
    location.focus();
  }

  _fieldError(form, name, text) {
    const wrap = form.querySelector(`[data-field="${name}"]`);
    if (!wrap) return;
    const small = wrap.querySelector(".field-error");
    small.textContent = text;
    small.hidden = false;
    wrap.querySelector("input,select,textarea")?.setAttribute("aria-invalid", "true");
  }
}
