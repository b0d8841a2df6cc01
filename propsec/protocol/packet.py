"""python-socketio's packet with a cheaper binary check (docs/performance.md, fix 4).

The stock `Packet.__init__` walks every value of every outgoing event and acknowledgement
to find `bytes` (binary attachments) before encoding: for a get-map of 10,000 properties
that walk cost more than the JSON encoding itself. propsec never sends bytes, and the JSON
encoder refuses them anyway, so here EVENT and ACK packets are encoded as JSON straight
away and walked only if the encoder refuses the payload; one holding bytes then becomes a
BINARY_EVENT / BINARY_ACK exactly as before. Same wire format, same packets."""
from __future__ import annotations

from socketio import packet


class Packet(packet.Packet):
    def __init__(self, packet_type=packet.EVENT, data=None, namespace=None, id=None,
                 binary=None, encoded_packet=None):
        self._deferred = (binary is None and encoded_packet is None
                          and packet_type in (packet.EVENT, packet.ACK))
        super().__init__(packet_type, data, namespace, id,
                         False if self._deferred else binary, encoded_packet)

    def encode(self):
        if self._deferred:
            try:
                return super().encode()
            except TypeError:
                if not self.data_is_binary(self.data):
                    raise
                self.packet_type = (packet.BINARY_EVENT if self.packet_type == packet.EVENT
                                    else packet.BINARY_ACK)
                self._deferred = False
        return super().encode()
