// A device script written against the generated types; CI compiles it (`tsc --noEmit -p
// clients/typescript`), so a change of the API that breaks typed clients is noticed.
import { io, type Socket } from "socket.io-client";
import type {
  AddAlertRequest, ClientToServerEvents, Envelope, ErrorData, ServerToClientEvents,
} from "./propsec";

const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io("http://127.0.0.1:5000/propsec", {
  auth: { token: "ps_your_device_token" },
  transports: ["websocket"],
});

socket.on("connect", () => {
  socket.emit("subscribe", { id: "events.alerts" }, (envelope: Envelope) => {
    console.log("subscribed:", envelope.type);
  });
  const alert: AddAlertRequest = { propertyId: 12, userId: "badge-20931", severity: "critical" };
  socket.emit("queries.add-alert", alert, (envelope) => {
    if (envelope.type === "error") {
      const problem = envelope.data as unknown as ErrorData;
      console.error(problem.code, problem.fields ?? {});
    }
  });
  socket.emit("queries.get-open-alerts", { minSeverity: "high", limit: 20 }, (envelope) => {
    console.log(envelope.data);
  });
  // @ts-expect-error: a severity outside the four is refused by the types too
  socket.emit("queries.add-alert", { propertyId: 12, userId: "x", severity: "urgent" }, () => {});
  // @ts-expect-error: a query that does not exist
  socket.emit("queries.no-such-query", {}, () => {});
});

socket.on("events.alerts", (event) => {
  const level: "low" | "medium" | "high" | "critical" = event.severity;
  console.log(`alert ${event.alertId} (${level}) at property ${event.propertyId}, event ${event.eventId}`);
});

socket.on("events.alert-escalated", (event) => {
  console.log(`alert ${event.alertId} escalated to level ${event.level}`);
});
