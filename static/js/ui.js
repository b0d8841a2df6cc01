// Small DOM helpers shared by the dashboard modules.

/**
 * Build an element: h("button", {class: "btn", onclick: fn}, "Label").
 * Attributes starting with "on" become listeners, "dataset" sets data-*,
 * null/false attributes are skipped. Children may be strings, nodes or arrays.
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      for (const [dk, dv] of Object.entries(value)) node.dataset[dk] = String(dv);
    } else if (key === "class") {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  appendChildren(node, children);
  return node;
}

function appendChildren(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(node, child);
    else node.append(child instanceof Node ? child : String(child));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

const ERROR_HINTS = {
  unauthenticated: "Your session has ended. Please log in again.",
  forbidden: "You are not allowed to do that.",
  not_found: "It no longer exists.",
  conflict: "That is not possible right now.",
  rate_limited: "Too many requests at once. Wait a moment and try again.",
  internal_error: "The server hit an internal problem. Try again in a moment.",
  unknown_query: "The server does not know this action.",
  timeout: "The server did not answer in time. Check the connection and try again.",
  offline: "Not connected to the server, so nothing was sent. Wait until the status says live.",
  dropped: "The connection dropped before the server answered. Once the status says live again, check whether it was done.",
};

// codes made up by the browser side (no server message to show)
const CLIENT_CODES = new Set(["timeout", "offline", "dropped"]);
// server codes whose message is worth a word of advice after it
const ADVISED_CODES = new Set(["unauthenticated", "rate_limited", "internal_error"]);

/** Turn an ApiError (or any error) into one readable sentence. */
export function describeError(err) {
  if (!err) return "Something went wrong.";
  const code = err.code || "";
  if (CLIENT_CODES.has(code)) return ERROR_HINTS[code];
  if (code === "validation_error" && err.fields && Object.keys(err.fields).length) {
    const parts = Object.entries(err.fields).map(([f, why]) => `${f}: ${why}`);
    return `Please check ${parts.join("; ")}.`;
  }
  let text = err.message && err.message !== code ? sentence(err.message) : ERROR_HINTS[code] || "Something went wrong.";
  if (ADVISED_CODES.has(code) && text !== ERROR_HINTS[code]) text = `${text} ${ERROR_HINTS[code]}`;
  return text;
}

function sentence(text) {
  const t = text.trim();
  const capital = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** Show (or hide with null) a message in an element next to an action. */
export function showMessage(el, text, kind = "error") {
  if (!el) return;
  if (!text) {
    el.hidden = true;
    el.textContent = "";
    return;
  }
  el.hidden = false;
  el.textContent = text;
  el.dataset.kind = kind;
  el.classList.toggle("is-error", kind === "error");
  el.classList.toggle("is-ok", kind === "ok");
}

/**
 * Run an async action for a control: disable it while running, show any error
 * in msgEl (next to the control), optionally a success text. Returns the result
 * or undefined when it failed.
 */
export async function runAction(control, msgEl, action, successText) {
  if (control) control.disabled = true;
  showMessage(msgEl, null);
  try {
    const result = await action();
    if (successText) showMessage(msgEl, typeof successText === "function" ? successText(result) : successText, "ok");
    return result;
  } catch (err) {
    console.warn("action failed", err);
    showMessage(msgEl, describeError(err), "error");
    return undefined;
  } finally {
    if (control && control.isConnected) control.disabled = false;
  }
}

export function msgLine() {
  return h("p", { class: "action-msg", role: "alert", hidden: true });
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
});

export function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtTime(iso) {
  const d = parseTime(iso) || new Date();
  return timeFmt.format(d);
}

export function fmtDateTime(iso) {
  const d = parseTime(iso);
  return d ? dateTimeFmt.format(d) : "unknown time";
}

/** True when the date is today (local time); used to shorten feed times. */
export function isToday(iso) {
  const d = parseTime(iso);
  if (!d) return true;
  const now = new Date();
  return d.toDateString() === now.toDateString();
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** YYYY-MM-DD of a Date in UTC (the contract's day boundary). */
export function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

export const STATUS_LABELS = {
  PENDING: "Pending approval",
  ACTIVE: "Active",
  INACTIVE: "Inactive",
  REJECTED: "Rejected",
  REMOVAL_REQUESTED: "Removal requested",
  REMOVED: "Removed",
};

export function statusBadge(status) {
  return h("span", { class: "status-badge", dataset: { status } }, STATUS_LABELS[status] || status);
}

/** Overlapping properties, named, for an admin about to approve (null when none). */
export function overlapWarning(overlaps) {
  if (!overlaps.length) return null;
  const names = overlaps.slice(0, 3).map((q) => `“${q.location}” (#${q.id}, ${STATUS_LABELS[q.status]?.toLowerCase() || q.status})`);
  const more = overlaps.length > 3 ? ` and ${overlaps.length - 3} more` : "";
  return h("p", { class: "callout callout-warn overlap-warning", dataset: { overlaps: overlaps.map((q) => q.id).join(",") } },
    `⚠ Overlaps ${names.join(", ")}${more} on the site plan.`);
}

/**
 * A button that asks once before acting when `question` is given: the first click shows
 * the question on the button, a second within 6 s does it.
 */
export function confirmFirst(button, question, act) {
  const label = button.textContent;
  let asking = false;
  let timer = null;
  button.addEventListener("click", () => {
    if (question && !asking) {
      asking = true;
      button.textContent = question;
      button.dataset.confirm = "1";
      timer = setTimeout(() => {
        asking = false;
        button.textContent = label;
        delete button.dataset.confirm;
      }, 6000);
      return;
    }
    clearTimeout(timer);
    asking = false;
    button.textContent = label;
    delete button.dataset.confirm;
    act();
  });
}
