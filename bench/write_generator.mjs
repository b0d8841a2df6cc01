// The write benchmark's job (bench/loadgen.py `write`) driven from Node with the official
// socket.io-client instead of python-socketio: the client the issue's own measurement used.
// `python -m bench.write --generator node` and `python -m bench.ab --generator node` run it.
//
// Why a second generator: with 8 writers in a closed loop, propsec's writers move in step
// (they share a group commit), so every cycle waits once for the load generator to read the
// acknowledgements and send the next requests; the floor, whose server is the bottleneck,
// does not. A slower generator therefore costs propsec's figure more than the floor's.
// Measuring with both says how much of the ratio is the instrument.
//
// Input: the same job JSON as bench.loadgen on standard input ({"kind": "write", "mode":
// "propsec"|"echo", "urls", "token", "writers", "duration", "warmup", "property_ids",
// "server_pids"}). Output: one JSON line with the same fields as bench.loadgen's write job.
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";

const NAMESPACE = "/propsec";
const CLOCK_TICKS = 100; // /proc/<pid>/stat counts in USER_HZ, 100 on Linux
// Events each write makes: add-alert 1; add-visitor 2 (visits, scanned); add-auth-entry
// by a stranger 2 (auth-entries, alerts).
const WRITE_EVENTS = [1, 2, 2];

const wallSeconds = () => (performance.timeOrigin + performance.now()) / 1000;

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN; // (as bench.loadgen: no figure, not a zero)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))));
  return sorted[index];
}

function serverCpu(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/);
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

// An ISO timestamp with microseconds ("2026-12-07T19:52:21.123456+00:00") in seconds:
// Date.parse keeps milliseconds only, so the rest of the fraction is added by hand.
function isoSeconds(text) {
  const match = /\.(\d+)/.exec(text);
  const whole = Date.parse(text.replace(/\.\d+/, "")) / 1000;
  return match ? whole + Number(`0.${match[1]}`) : whole;
}

function writeRequest(job, index) {
  const kind = index % 3;
  if (job.mode === "echo") {
    return ["fanout", { n: index, sent: wallSeconds(), reason: "bench write",
                        copies: WRITE_EVENTS[kind] }];
  }
  const pid = job.property_ids[index % job.property_ids.length];
  if (kind === 0) return ["queries.add-alert", { propertyId: pid, userId: "bench-staff", reason: "bench write" }];
  if (kind === 1) return ["queries.add-visitor", { propertyId: pid, userId: "bench-visitor", cameraId: pid }];
  return ["queries.add-auth-entry", { propertyId: pid, userId: "bench-staff" }];
}

function connect(url, token) {
  return new Promise((resolve, reject) => {
    const socket = io(url + NAMESPACE, {
      transports: ["websocket"], reconnection: false, forceNew: true, timeout: 30000,
      auth: token ? { token } : undefined,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(new Error(`connect failed: ${err.message}`)));
  });
}

const call = (socket, event, payload) => socket.timeout(60000).emitWithAck(event, payload);
const isError = (answer) => !answer || typeof answer !== "object" || answer.type === "error";
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

async function logIds(client, after, until) {
  const ids = [];
  for (;;) {
    const answer = await call(client, "queries.get-events", { since: after, limit: 1000 });
    const page = answer.data.events;
    for (const event of page) ids.push(event.eventId);
    if (page.length < 1000 || performance.now() > until) return ids;
    after = page[page.length - 1].eventId;
  }
}

async function write(job) {
  const echo = job.mode === "echo";
  const subscribers = [];
  for (const url of job.urls) subscribers.push(await connect(url, job.token));
  const writers = [];
  for (let n = 0; n < job.writers; n += 1) {
    writers.push(await connect(job.urls[n % job.urls.length], job.token));
  }
  const received = subscribers.map(() => []);
  const delays = [];
  const state = { measuring: false, stop: false };
  const starts = [];
  for (const [index, sub] of subscribers.entries()) {
    const bucket = received[index];
    const name = echo ? "events.alerts" : "events.all";
    sub.on(name, (payload) => {
      const now = wallSeconds();
      bucket.push(echo ? payload.n : payload.eventId);
      if (state.measuring) delays.push(now - (echo ? payload.sent : isoSeconds(payload.timestamp)));
    });
    const answer = await call(sub, echo ? "join" : "subscribe", echo ? {} : { id: name });
    if (isError(answer)) throw new Error(`subscribe failed: ${JSON.stringify(answer)}`);
    starts.push(echo ? 0 : answer.data.lastEventId);
  }

  const latencies = [];
  let errors = 0;
  let counter = 0;
  let firstError = null;
  async function loop(client) {
    while (!state.stop) {
      counter += 1;
      const [event, payload] = writeRequest(job, counter);
      const started = performance.now();
      const answer = await call(client, event, payload);
      if (state.measuring) {
        latencies.push(performance.now() - started);
        if (isError(answer)) {
          errors += 1;
          firstError = firstError || answer;
        }
      }
    }
  }
  const loops = writers.map(loop);
  await sleep(job.warmup);
  state.measuring = true;
  const pids = job.server_pids || [];
  const cpu0 = process.cpuUsage();
  const servers0 = pids.map(serverCpu);
  const wall0 = performance.now();
  await sleep(job.duration);
  state.measuring = false;
  const wall = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const servers = pids.map((pid, i) => (serverCpu(pid) - servers0[i]) / wall);
  state.stop = true;
  await Promise.all(loops);
  const totalWrites = counter;

  // Quiet: wait until no subscriber has received anything for a second.
  const deadline = performance.now() + 30000;
  while (performance.now() < deadline) {
    const before = received.map((b) => b.length);
    await sleep(1);
    if (received.every((b, i) => b.length === before[i])) break;
  }
  const check = { subscribers: received.length };
  if (echo) {
    let sent = 0;
    for (let n = 1; n <= totalWrites; n += 1) sent += WRITE_EVENTS[n % 3];
    check.lost = received.reduce((sum, b) => sum + (sent - b.length), 0);
    check.duplicates = 0;
    check.out_of_order = 0;
  } else {
    const logged = await logIds(subscribers[0], Math.min(...starts), performance.now() + 120000);
    let lost = 0, duplicates = 0, disorder = 0;
    received.forEach((ids, i) => {
      const have = new Set(ids);
      duplicates += ids.length - have.size;
      for (let k = 1; k < ids.length; k += 1) if (ids[k] <= ids[k - 1]) disorder += 1;
      for (const id of logged) if (id > starts[i] && !have.has(id)) lost += 1;
    });
    Object.assign(check, { lost, duplicates, out_of_order: disorder, logged: logged.length });
  }
  for (const socket of [...subscribers, ...writers]) socket.close();
  latencies.sort((a, b) => a - b);
  delays.sort((a, b) => a - b);
  return {
    count: latencies.length, seconds: wall, throughput: latencies.length / wall,
    p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
    delivery_p50_ms: percentile(delays, 0.5) * 1e3, delivery_p99_ms: percentile(delays, 0.99) * 1e3,
    deliveries: delays.length, errors, first_error: firstError,
    generator_cpu: (cpu.user + cpu.system) / 1e6 / wall, server_cpu: servers, check,
    generator: "node",
  };
}

const job = JSON.parse(readFileSync(0, "utf8"));
if (job.kind !== "write") throw new Error(`this generator runs write jobs only, not ${job.kind}`);
// NaN as the bare token Python's json module reads back (JSON.stringify would write null).
const NAN = "__propsec_NaN__";
const encode = (result) => JSON.stringify(
  result, (key, value) => (Number.isNaN(value) ? NAN : value)).replaceAll(`"${NAN}"`, "NaN");

write(job).then((result) => {
  process.stdout.write(encode(result) + "\n");
  process.exit(0);
}, (err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
