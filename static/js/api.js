// The one place that talks to the server: a Socket.IO connection to the
// /propsec namespace (authenticated by the session cookie), request/response
// over acknowledgements, and the live event stream with de-duplication.

/* global io */

const REQUEST_TIMEOUT_MS = 15000;
const SEEN_LIMIT = 50000;

export class ApiError extends Error {
  constructor(code, message, fields) {
    super(message || code);
    this.name = "ApiError";
    this.code = code;
    this.fields = fields || null;
  }
}

export class Connection {
  constructor({ namespace = "/propsec" } = {}) {
    this.state = "disconnected";
    this.lastEventId = null; // highest eventId applied so far
    this._seen = new Set();
    this._stateListeners = [];
    this._eventListeners = [];
    this._connectListeners = [];
    this._everConnected = false;
    this.fatal = null; // set when the server refused us for good (e.g. logged out)

    this.socket = io(namespace, {
      withCredentials: true,
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 4000,
      timeout: 10000,
    });
    const manager = this.socket.io;

    this.socket.on("connect", () => {
      const again = this._everConnected;
      this._everConnected = true;
      this.fatal = null;
      this._setState("connected");
      for (const fn of this._connectListeners) fn({ reconnect: again });
    });
    this.socket.on("disconnect", (reason) => {
      if (reason === "io client disconnect") this._setState("disconnected", "Disconnected");
      else if (reason === "io server disconnect") {
        // The server closed this session on purpose; try once more (it may have
        // restarted), the connect_error handler decides if that is final.
        this._setState("reconnecting", "Reconnecting…");
        this.socket.connect();
      } else this._setState("reconnecting", "Reconnecting…");
    });
    this.socket.on("connect_error", (err) => {
      const msg = String((err && err.message) || "");
      if (/authentication required|unauthenticated|forbidden/i.test(msg)) {
        this.fatal = "Your session has ended. Log in again to see live data.";
        this._setState("disconnected", "Logged out");
        return;
      }
      if (!this.socket.active) this._setState("disconnected", "Disconnected");
      else this._setState("reconnecting", "Reconnecting…");
    });
    manager.on("reconnect_attempt", () => this._setState("reconnecting", "Reconnecting…"));
    manager.on("reconnect_failed", () => this._setState("disconnected", "Disconnected"));

    // Every pushed event: events.all carries the real name in `event`.
    this.socket.onAny((name, payload) => {
      if (typeof name !== "string" || !name.startsWith("events.")) return;
      if (!payload || typeof payload !== "object") return;
      const eventName = name === "events.all" ? payload.event || name : name;
      this.receive(eventName, payload);
    });
  }

  onState(fn) { this._stateListeners.push(fn); fn(this.state, this._label); }
  onEvent(fn) { this._eventListeners.push(fn); }
  onConnect(fn) { this._connectListeners.push(fn); }

  _setState(state, label) {
    this.state = state;
    this._label = label || (state === "connected" ? "Live" : state);
    for (const fn of this._stateListeners) fn(state, this._label);
  }

  /** Remember an eventId as seen without applying it (history shown in the feed). */
  markSeen(id) {
    const n = Number(id);
    if (!Number.isFinite(n)) return false;
    if (this._seen.has(n)) return false;
    this._seen.add(n);
    if (this._seen.size > SEEN_LIMIT) {
      // forget the oldest half; ids only grow, so old ones will not come back
      let drop = this._seen.size - SEEN_LIMIT / 2;
      for (const old of this._seen) {
        this._seen.delete(old);
        if (--drop <= 0) break;
      }
    }
    if (this.lastEventId === null || n > this.lastEventId) this.lastEventId = n;
    return true;
  }

  hasSeen(id) {
    return this._seen.has(Number(id));
  }

  /** Deliver an event once per eventId (events without an id are delivered as is). */
  receive(name, payload) {
    if (payload.eventId !== undefined && payload.eventId !== null) {
      if (!this.markSeen(payload.eventId)) return;
    }
    for (const fn of this._eventListeners) {
      try {
        fn(name, payload);
      } catch (err) {
        console.error("event handler failed", name, err);
      }
    }
  }

  /**
   * Send a query and resolve with the envelope's data; reject with ApiError for
   * an error envelope, a timeout or when not connected (no silent buffering).
   */
  request(name, data = {}) {
    return new Promise((resolve, reject) => {
      if (!this.socket.connected) {
        reject(new ApiError("offline"));
        return;
      }
      this.socket.timeout(REQUEST_TIMEOUT_MS).emit(name, data, (err, envelope) => {
        if (err) {
          // socket.io reports both a timeout and a connection lost while waiting
          if (!this.socket.connected) reject(new ApiError("dropped"));
          else reject(new ApiError("timeout"));
          return;
        }
        if (!envelope || typeof envelope !== "object") {
          reject(new ApiError("internal_error", "The server sent an unreadable answer."));
          return;
        }
        if (envelope.type === "error") {
          const d = envelope.data || {};
          reject(new ApiError(d.code || "internal_error", d.message, d.fields));
          return;
        }
        resolve(Object.assign({ _type: envelope.type }, envelope.data || {}));
      });
    });
  }

  query(name, data) {
    return this.request(`queries.${name}`, data);
  }

  subscribe(eventName, since) {
    const data = { id: eventName };
    if (since !== null && since !== undefined) data.since = since;
    return this.request("subscribe", data);
  }
}
