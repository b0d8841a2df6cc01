// The capacity benchmark's load generator: many idle Socket.IO connections from one Node
// process, with the official socket.io-client (one Node process holds 10,000 sockets easily;
// Python clients do not). Driven by bench/capacity.py over standard input and output, one
// JSON object per line.
//
// Input (one JSON line each):
//   {"cmd": "open", "url", "count", "token"?, "mode": "propsec"|"echo"}
//       open `count` websocket connections (propsec: token auth, then `subscribe
//       events.alerts`; echo: `join`); answers {"opened", "failed", "seconds", "errors"}
//   {"cmd": "watch"}: answers {"key", "ms"} when every open connection has received the
//       next new events.alerts payload (the harness triggers it right after): `key` is its
//       alertId, `ms` the time since the command arrived
//   {"cmd": "hold", "seconds"}: answers {"held", "dropped"}: connections lost meanwhile
//   {"cmd": "close"}: closes everything, answers {"closed"}, exits
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const NAMESPACE = "/propsec";
const sockets = [];
let dropped = 0;
const arrivals = new Map(); // alertId -> count of connections that have it
let watching = null; // {key, started, resolve}

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function onAlert(payload) {
  const key = payload && payload.alertId;
  const count = (arrivals.get(key) || 0) + 1;
  arrivals.set(key, count);
  if (watching && count === sockets.length) {
    const done = watching;
    watching = null;
    done.resolve({ key, ms: performance.now() - done.started });
  }
}

function openOne(url, token, mode) {
  return new Promise((resolve) => {
    const socket = io(url + NAMESPACE, {
      transports: ["websocket"], reconnection: false, forceNew: true, timeout: 60000,
      auth: token ? { token } : undefined,
    });
    socket.on("events.alerts", onAlert);
    socket.once("connect_error", (err) => resolve({ ok: false, error: String(err && err.message) }));
    socket.once("connect", () => {
      const join = mode === "propsec" ? ["subscribe", { id: "events.alerts" }] : ["join", {}];
      socket.timeout(60000).emit(join[0], join[1], (err, answer) => {
        if (err || !answer || answer.type === "error") {
          resolve({ ok: false, error: String(err || JSON.stringify(answer)) });
          return;
        }
        socket.on("disconnect", () => { dropped += 1; });
        sockets.push(socket);
        resolve({ ok: true });
      });
    });
  });
}

async function open({ url, count, token, mode, concurrency = 200 }) {
  const started = performance.now();
  let failed = 0;
  const errors = {};
  let next = 0;
  async function worker() {
    while (next < count) {
      next += 1;
      const result = await openOne(url, token, mode);
      if (!result.ok) {
        failed += 1;
        errors[result.error] = (errors[result.error] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  send({ opened: sockets.length, failed, errors, seconds: (performance.now() - started) / 1000 });
}

const commands = {
  open,
  watch: () => new Promise((resolve) => {
    watching = { started: performance.now(), resolve };
  }).then(send),
  hold: ({ seconds }) => {
    const before = dropped;
    return new Promise((resolve) => setTimeout(resolve, seconds * 1000))
      .then(() => send({ held: sockets.length, dropped: dropped - before }));
  },
  close: () => {
    for (const socket of sockets) socket.close();
    send({ closed: sockets.length });
    setTimeout(() => process.exit(0), 200);
  },
};

const lines = createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const message = JSON.parse(line);
  await commands[message.cmd](message);
});
