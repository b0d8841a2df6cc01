// The account part of the Settings tab: two-factor login (enrol with a QR code drawn by
// the server, confirm with a code, see the recovery codes once, turn off) and "log out
// everywhere" (a form POST: the server ends every browser session of the user).

import { h, clear, runAction, msgLine } from "./ui.js";

export class AccountSettings {
  constructor({ root, conn, twoFactor }) {
    this.conn = conn;
    this.on = twoFactor;
    this.box = h("section", { class: "notify-block", dataset: { section: "account" } });
    root.prepend(this.box);
    this.render();
  }

  render() {
    const box = clear(this.box);
    const msg = msgLine();
    box.append(h("h2", {}, "Account"));
    const status = h("p", { dataset: { field: "two-factor" } },
      this.on ? "Two-factor login is on: logging in also asks for a code from your authenticator app."
        : "Two-factor login is off. Turn it on so that a stolen password alone is not enough.");
    box.append(status);
    if (this.on) {
      const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "40", placeholder: "code or recovery code", "aria-label": "Code to turn two-factor login off" });
      const off = h("button", { type: "button", class: "btn btn-small btn-light", dataset: { action: "disable-2fa" } }, "Turn off");
      off.addEventListener("click", () => runAction(off, msg, async () => {
        await this.conn.query("disable-2fa", { code: code.value.trim() });
        this.on = false;
        this.render();
      }));
      box.append(h("div", { class: "row" }, code, off));
    } else {
      const start = h("button", { type: "button", class: "btn btn-small btn-primary", dataset: { action: "begin-2fa" } }, "Turn on two-factor login");
      start.addEventListener("click", () => runAction(start, msg, async () => this.enrol(await this.conn.query("begin-2fa"))));
      box.append(h("div", { class: "row" }, start));
    }
    box.append(msg, this.logoutEverywhere());
  }

  enrol(begun) {
    const msg = msgLine();
    const code = h("input", { name: "code", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "6", placeholder: "123456", "aria-label": "Code from the authenticator" });
    const confirm = h("button", { type: "button", class: "btn btn-small btn-primary", dataset: { action: "confirm-2fa" } }, "Confirm");
    const panel = h("div", { class: "enrol", dataset: { role: "enrol" } },
      h("p", {}, "Scan this with an authenticator app, or type the key; then enter the code it shows."),
      h("img", { class: "qr", src: begun.qrCode, alt: "QR code for your authenticator app", width: "180", height: "180" }),
      h("p", { class: "small" }, "Key: ", h("code", { dataset: { role: "secret" } }, begun.secret)),
      h("div", { class: "row" }, code, confirm), msg);
    confirm.addEventListener("click", () => runAction(confirm, msg, async () => {
      const done = await this.conn.query("confirm-2fa", { code: code.value.trim() });
      this.on = true;
      this.render();
      this.box.insertBefore(h("div", { class: "callout", dataset: { role: "recovery-codes" } },
        h("p", {}, "Two-factor login is on. Each of these recovery codes works once if the phone is lost; keep them safe, they are not shown again:"),
        h("ul", { class: "recovery-codes" }, done.recoveryCodes.map((c) => h("li", {}, h("code", {}, c))))), this.box.children[2]);
    }));
    const slot = this.box.querySelector("[data-role=enrol]");
    if (slot) slot.replaceWith(panel);
    else this.box.insertBefore(panel, this.box.children[2]);
    code.focus();
  }

  logoutEverywhere() {
    const token = document.querySelector("form.logout input[name=csrf_token]")?.value || "";
    return h("form", { method: "post", action: "/logout", class: "row logout-everywhere" },
      h("input", { type: "hidden", name: "csrf_token", value: token }),
      h("input", { type: "hidden", name: "everywhere", value: "1" }),
      h("button", { type: "submit", class: "btn btn-small btn-light", dataset: { action: "logout-everywhere" } }, "Log out everywhere"),
      h("span", { class: "muted small" }, "ends every browser session of yours, on every device"));
  }
}
