// The administration page (/admin): people (create, find), their API tokens (issue with
// a label and see it once, list with last use, revoke), and the audit trail (filters,
// newest first, CSV download). Everything goes through the same API as the dashboard.

import { Connection } from "./api.js";
import { h, clear, runAction, showMessage, describeError, debounce, fmtDateTime, confirmFirst } from "./ui.js";

const AUDIT_PAGE = 1000;
const AUDIT_MAX_PAGES = 20;
const AUDIT_SHOWN = 500;

const conn = new Connection();
const statusEl = document.getElementById("connection-status");
conn.onState((state, label) => {
  statusEl.dataset.state = state;
  statusEl.querySelector(".conn-label").textContent = state === "connected" ? "Live" : label || state;
});

// ---- people --------------------------------------------------------------------

const users = document.getElementById("admin-users");
const usersMsg = users.querySelector("[data-role=msg]");
const people = users.querySelector("[data-role=people]");
const search = users.querySelector("[data-role=search]");
const createForm = users.querySelector("[data-role=create-user]");

createForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(createForm);
  const data = { userId: f.get("userId").trim(), fullName: f.get("fullName").trim(), role: f.get("role") };
  if (f.get("password")) data.password = f.get("password");
  if (f.get("email").trim()) data.email = f.get("email").trim();
  runAction(createForm.querySelector("button"), usersMsg, async () => {
    await conn.query("create-user", data);
    createForm.reset();
    search.value = data.userId;
    await findPeople();
    showTokens(data.userId, data.fullName);
  }, `Created ${data.userId}.`);
});

async function findPeople() {
  try {
    const d = await conn.query("get-users", { search: search.value.trim(), limit: 20 });
    clear(people);
    for (const u of d.users || []) {
      const tokens = h("button", { type: "button", class: "btn btn-small btn-light", dataset: { action: "show-tokens" } }, "Tokens");
      tokens.addEventListener("click", () => showTokens(u.id, u.fullName));
      people.append(h("li", { dataset: { userId: u.id } }, h("div", { class: "item-main" }, h("strong", {}, u.fullName), h("span", { class: "muted" }, ` · ${u.id}`)), tokens));
    }
    if (!(d.users || []).length) people.append(h("li", { class: "muted" }, "Nobody found."));
  } catch (err) {
    showMessage(usersMsg, describeError(err));
  }
}
search.addEventListener("input", debounce(findPeople, 250));

// ---- tokens --------------------------------------------------------------------

const tokensBox = document.getElementById("admin-tokens");

async function showTokens(userId, name) {
  tokensBox.querySelector("[data-role=who]").textContent = `of ${name || userId} (${userId})`;
  tokensBox.querySelector("[data-role=hint]").hidden = true;
  const slot = clear(tokensBox.querySelector("[data-role=tokens]"));
  slot.dataset.userId = userId;
  const msg = h("p", { class: "action-msg", role: "alert", hidden: true });
  const label = h("input", { name: "label", maxlength: "100", placeholder: "label, e.g. gate scanner", "aria-label": "Token label" });
  const issue = h("button", { type: "button", class: "btn btn-small btn-primary", dataset: { action: "issue-token" } }, "Issue a token");
  const shown = h("div", { dataset: { role: "new-token" } });
  const list = h("ul", { class: "item-list", dataset: { role: "token-list" } });
  slot.append(h("div", { class: "row" }, label, issue), shown, list, msg);
  issue.addEventListener("click", () => runAction(issue, msg, async () => {
    const r = await conn.query("issue-token", { userId, label: label.value.trim() || undefined });
    label.value = "";
    clear(shown).append(h("p", { class: "callout secret-once" }, "The token (shown only now; give it to the device): ", h("code", { class: "token-once" }, r.token)));
    await listTokens(userId, list, msg);
  }));
  await listTokens(userId, list, msg);
}

async function listTokens(userId, list, msg) {
  try {
    const d = await conn.query("get-tokens", { userId });
    clear(list);
    for (const t of d.tokens || []) {
      const revoke = h("button", { type: "button", class: "btn btn-small btn-light", dataset: { action: "revoke-token" } }, "Revoke");
      confirmFirst(revoke, "Revoke for good?", () => runAction(revoke, msg,
        () => conn.query("revoke-token", { tokenId: t.id }).then(() => listTokens(userId, list, msg)), "Revoked: its connections were cut."));
      list.append(h("li", { dataset: { tokenId: t.id } },
        h("div", { class: "item-main" }, h("strong", {}, t.label || `token #${t.id}`),
          h("div", { class: "item-sub muted" }, `issued ${fmtDateTime(t.createdAt)} · ${t.lastUsedAt ? `last used ${fmtDateTime(t.lastUsedAt)}` : "never used"}`)),
        revoke));
    }
    if (!(d.tokens || []).length) list.append(h("li", { class: "muted" }, "No active tokens."));
  } catch (err) {
    showMessage(msg, describeError(err));
  }
}

// ---- audit ---------------------------------------------------------------------

const auditBox = document.getElementById("admin-audit");
const filters = auditBox.querySelector("[data-role=audit-filters]");
const entriesEl = auditBox.querySelector("[data-role=entries]");
const auditMsg = auditBox.querySelector("[data-role=msg]");
const summary = auditBox.querySelector("[data-role=summary]");
const csv = auditBox.querySelector("[data-role=audit-csv]");

function inRange(at, from, to) {
  const day = (at || "").slice(0, 10);
  return (!from || day >= from) && (!to || day <= to);
}

// The `before` cursor just above the last entry on or before the day `to`: ids grow with
// time, so a search over ids with one-entry pages finds it in at most 53 steps, however
// many newer entries lie between (paging back to them could take longer than anyone waits).
async function cursorAfterDay(query, to) {
  let lo = 1;
  let hi = Number.MAX_SAFE_INTEGER;
  while (lo < hi) {
    const mid = lo + Math.ceil((hi - lo) / 2);
    const d = await conn.query("get-audit", { ...query, before: mid, limit: 1 });
    const newest = (d.entries || [])[0];
    if (!newest || (newest.at || "").slice(0, 10) <= to) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

async function loadAudit() {
  const f = new FormData(filters);
  const query = {};
  for (const key of ["actor", "action"]) if (f.get(key).trim()) query[key] = f.get(key).trim();
  if (f.get("propertyId").trim()) query.propertyId = Number(f.get("propertyId").trim());
  const from = f.get("from");
  const to = f.get("to");
  const params = new URLSearchParams();
  if (query.propertyId) params.set("propertyId", query.propertyId);
  if (from) params.set("from", from);
  if (to) params.set("to", to);
  csv.href = `/export/audit.csv${params.toString() ? `?${params}` : ""}`;
  await runAction(filters.querySelector("button"), auditMsg, async () => {
    // Page back from the newest (or from the end of the `to` day) until enough are shown or
    // the range is passed: the newest entries are what an admin looks for.
    let before = to ? await cursorAfterDay(query, to) : Number.MAX_SAFE_INTEGER;
    let more = false;
    const found = [];
    for (let page = 0; page < AUDIT_MAX_PAGES; page += 1) {
      const d = await conn.query("get-audit", { ...query, before, limit: AUDIT_PAGE });
      const rows = d.entries || [];
      for (const e of rows.slice().reverse()) if (inRange(e.at, from, to)) found.push(e);
      const oldest = rows.length ? (rows[0].at || "").slice(0, 10) : "";
      if (rows.length < AUDIT_PAGE || (from && oldest < from)) break;
      if (found.length > AUDIT_SHOWN) { more = true; break; }
      before = rows[0].id;
      more = page === AUDIT_MAX_PAGES - 1;
    }
    clear(entriesEl);
    for (const e of found.slice(0, AUDIT_SHOWN)) {
      entriesEl.append(h("tr", { dataset: { entryId: e.id, action: e.action } },
        h("td", {}, String(e.id)), h("td", {}, (e.at || "").replace("T", " ").slice(0, 19)),
        h("td", {}, e.actor ?? "—"), h("td", {}, e.action), h("td", {}, e.target ?? ""),
        h("td", {}, e.propertyId ?? ""), h("td", {}, e.address ?? ""),
        h("td", { class: "detail" }, JSON.stringify(e.detail)),
        h("td", { title: e.hash || "not sealed yet" }, e.hash ? "✓" : "…")));
    }
    const shown = Math.min(found.length, AUDIT_SHOWN);
    summary.textContent = more || found.length > AUDIT_SHOWN
      ? `The newest ${shown} entries shown; narrow the filters or download the CSV for the rest.`
      : `${found.length} entr${found.length === 1 ? "y" : "ies"}.`;
  });
}
filters.addEventListener("submit", (ev) => {
  ev.preventDefault();
  loadAudit();
});

conn.onConnect(() => {
  findPeople();
  loadAudit();
});
