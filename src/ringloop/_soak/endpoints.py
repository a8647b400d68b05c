"""What the soak's server serves: an echo on four endpoints, each counting what it did.

* stream: asyncio streams (start_server); checks every message's header, CRC-32
  and sequence number before echoing it, so a corruption on the way in is caught
  on the server as well as by the client;
* protocol: a bare asyncio.Protocol echoing bytes as they come, with flow control
  (it stops reading while its transport's write buffer is above the high-water mark);
* tls: the stream endpoint's handler behind TLS;
* udp: a DatagramProtocol echoing each datagram to its sender.
A file-read endpoint joins these once ringloop has its own file API.
"""
import asyncio
import collections

from ringloop._soak import frames


class Counters:
    """What the endpoints did; bad_frames must stay 0."""

    def __init__(self):
        self.echoed = collections.Counter()        # endpoint -> messages (stream, tls), writes, datagrams
        self.echoed_bytes = collections.Counter()
        self.peer_aborts = collections.Counter()   # endpoint -> connections ended mid-message by the peer
        self.pauses = 0                            # pause_writing calls on the protocol endpoint
        self.bad_frames = []

    def as_dict(self):
        return {"echoed": dict(self.echoed), "echoed_bytes": dict(self.echoed_bytes),
                "peer_aborts": dict(self.peer_aborts), "pause_writing_calls": self.pauses,
                "bad_frames": self.bad_frames[:20], "bad_frame_count": len(self.bad_frames)}


def stream_handler(counters, name):
    """A start_server callback echoing checked messages; counts under `name`."""

    async def serve(reader, writer):
        expected = None
        try:
            while True:
                header = await reader.readexactly(frames.HEADER_SIZE)
                payload = await reader.readexactly(frames.payload_length(header))
                stream, seq = frames.check(header, payload)
                if expected is not None and seq != expected:
                    raise frames.BadFrame(f"stream {stream}: message {seq} after {expected - 1}")
                expected = seq + 1
                writer.write(header + payload)
                await writer.drain()
                counters.echoed[name] += 1
                counters.echoed_bytes[name] += len(header) + len(payload)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:  # EOF mid-message: a fault client's doing, not ours
                counters.peer_aborts[name] += 1
        except ConnectionError:
            counters.peer_aborts[name] += 1
        except frames.BadFrame as exc:
            counters.bad_frames.append(f"{name}: {exc}")
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    return serve


class EchoProtocol(asyncio.Protocol):
    """Echoes bytes as they come; reads only while its writes can go out."""

    def __init__(self, counters):
        self.counters = counters
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)
        self.counters.echoed["protocol"] += 1
        self.counters.echoed_bytes["protocol"] += len(data)

    def eof_received(self):
        return False  # close once the echo is written: the half-close the client expects

    def pause_writing(self):
        self.counters.pauses += 1
        self.transport.pause_reading()

    def resume_writing(self):
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc):
        if exc is not None:
            self.counters.peer_aborts["protocol"] += 1


class DatagramEcho(asyncio.DatagramProtocol):
    def __init__(self, counters):
        self.counters = counters
        self.transport = None
        self.errors = []

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)
        self.counters.echoed["udp"] += 1
        self.counters.echoed_bytes["udp"] += len(data)

    def error_received(self, exc):
        self.errors.append(repr(exc))


async def start(counters, tls_context):
    """Start the four endpoints on 127.0.0.1; (closers, {endpoint: port}, udp protocol)."""
    loop = asyncio.get_running_loop()
    stream = await asyncio.start_server(stream_handler(counters, "stream"), "127.0.0.1", 0)
    protocol = await loop.create_server(lambda: EchoProtocol(counters), "127.0.0.1", 0)
    tls = await asyncio.start_server(stream_handler(counters, "tls"), "127.0.0.1", 0,
                                     ssl=tls_context)
    udp_transport, udp = await loop.create_datagram_endpoint(
        lambda: DatagramEcho(counters), local_addr=("127.0.0.1", 0))
    ports = {"stream": stream.sockets[0].getsockname()[1],
             "protocol": protocol.sockets[0].getsockname()[1],
             "tls": tls.sockets[0].getsockname()[1],
             "udp": udp_transport.get_extra_info("sockname")[1]}
    return [stream, protocol, tls, udp_transport], ports, udp
