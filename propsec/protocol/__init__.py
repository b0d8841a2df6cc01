"""The protocol machinery: envelopes, errors, schemas, access rules, the query registry,
the dispatcher, the event log and the Socket.IO namespace."""
