"""The capacity benchmark (issue 11): `python -m bench.capacity [--connections N]`.

One propsec process (eventlet, SQLite) and, for comparison, the bare Flask-SocketIO server of
`bench/echo_server.py`, each filled with N idle websocket connections by one Node process
running the official socket.io-client (`bench/capacity/loadgen.mjs`; run `npm ci` once first):

- memory: the server's RSS empty and with the N connections subscribed (propsec: staff API
  tokens, `subscribe events.alerts`; the floor: `join`), and so the cost per connection;
- fan-out: one alert reaching all N, the time until the last has it (propsec: `add-alert`
  from another connection; the floor: one bare room emit), median of several, and the p99 of
  `get-property` asked meanwhile on yet another connection;
- heartbeats: the N connections held idle for a while, and how many were dropped.

Writes its section of docs/performance.md (or, for a run of other sizes,
bench/results/capacity-N.md)."""
