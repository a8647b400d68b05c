"""Faults a misbehaving client injects, run by the driver on the standard asyncio loop
(the client side must not depend on the loop under test). Each one checks what the
server owes it, and raises FaultFailed if the server fell short.

* reset: connections reset (RST) mid-message, and while the server is writing;
* stop_reading: a client that writes and never reads: the server must stop reading
  (its write buffer over the high-water mark: pause_writing) rather than buffer
  without bound, and when the client reads again every byte must come back;
* half_close: a client that shuts down its write side: all echoes, then EOF;
* slow_loris: many connections dribbling a message a few bytes at a time,
  one of them a TLS handshake fed in small pieces;
* storm: more connections at once than the server may have fds (EMFILE on its
  accepts); once they close, the server must accept and echo again;
* tls_abort: TLS handshakes cut at every step (before, inside and after the
  ClientHello, after the server's flight, inside the client's Finished), with a
  FIN or a reset, on TLS 1.3 and 1.2, plus garbage instead of a ClientHello.
"""
import asyncio
import random
import socket
import ssl
import struct

from ringloop._soak import frames

TIMEOUT = 30.0
STREAM_ID = 0xFA17
STOP_READING_CAP = 64 * 1024 * 1024


class FaultFailed(AssertionError):
    pass


def expect(condition, what):
    if not condition:
        raise FaultFailed(what)


def tls_client_context(version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the soak's own certificate
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def messages(count, max_size=4096):
    seq0 = random.randrange(1 << 40)
    return [frames.frame(STREAM_ID, seq0 + i, random.randbytes(random.randint(1, max_size)))
            for i in range(count)]


def abort(writer):
    """Close with a reset (SO_LINGER 0) rather than a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def connect(ports, endpoint):
    ctx = tls_client_context() if endpoint == "tls" else None
    return await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", ports[endpoint], ssl=ctx), TIMEOUT)


async def echo_check(ports, endpoint, count=3):
    """A fresh connection gets its messages echoed: the server is serving."""
    reader, writer = await connect(ports, endpoint)
    try:
        for message in messages(count):
            writer.write(message)
            got = await asyncio.wait_for(reader.readexactly(len(message)), TIMEOUT)
            expect(got == message, f"{endpoint}: echo differs")
    finally:
        writer.close()


# ---------------------------------------------------------------- reset

async def reset(ports):
    done = 0
    for endpoint in ("stream", "protocol", "tls"):
        for variant in ("mid-message", "while-echoing"):
            reader, writer = await connect(ports, endpoint)
            message = frames.frame(STREAM_ID, 0, random.randbytes(frames.MAX_PAYLOAD))
            if variant == "mid-message":
                writer.write(message[:random.randint(1, 100_000)])
            else:
                writer.write(message)  # the echo comes back to a client that is gone
            await asyncio.sleep(0.01)
            abort(writer)
            done += 1
    for endpoint in ("stream", "protocol", "tls"):
        await echo_check(ports, endpoint)
    return {"resets": done}


# ---------------------------------------------------------------- stop_reading

async def _push_until_stalled(writer, chunks):
    """Write until drain() makes no progress for a while; bytes written."""
    pushed = 0
    for chunk in chunks:
        writer.write(chunk)
        pushed += len(chunk)
        try:
            await asyncio.wait_for(writer.drain(), 1.5)
        except asyncio.TimeoutError:
            return pushed, True
        if pushed >= STOP_READING_CAP:
            break
    return pushed, False


async def stop_reading(ports):
    result = {}
    for endpoint in ("stream", "protocol", "tls"):
        reader, writer = await connect(ports, endpoint)
        try:
            sent = bytearray()

            def chunks():
                seq = 0
                while True:
                    chunk = frames.frame(STREAM_ID, seq, random.randbytes(256 * 1024))
                    sent.extend(chunk)
                    seq += 1
                    yield chunk

            pushed, stalled = await _push_until_stalled(writer, chunks())
            expect(stalled, f"{endpoint}: the server took {pushed} bytes from a client that "
                            f"reads nothing, without pushing back")
            got = await asyncio.wait_for(reader.readexactly(len(sent)), TIMEOUT * 2)
            expect(got == sent, f"{endpoint}: echo differs after the client read again")
            result[endpoint] = pushed
        finally:
            writer.close()
    return {"bytes_before_backpressure": result}


# ---------------------------------------------------------------- half_close

async def half_close(ports):
    for endpoint in ("stream", "protocol"):
        reader, writer = await connect(ports, endpoint)
        try:
            sent = b"".join(messages(random.randint(1, 20), 70_000))
            writer.write(sent)
            writer.write_eof()
            got = await asyncio.wait_for(reader.read(), TIMEOUT)  # to EOF
            expect(got == sent, f"{endpoint}: after a half-close: {len(got)} of "
                                f"{len(sent)} bytes echoed, or different")
        finally:
            writer.close()
    return {}


# ---------------------------------------------------------------- slow_loris

async def _dribble(ports, endpoint, message):
    reader, writer = await connect(ports, endpoint)
    try:
        at = 0
        while at < len(message):
            step = random.randint(1, 7)
            writer.write(message[at:at + step])
            at += step
            await asyncio.sleep(random.uniform(0.01, 0.1))
        got = await asyncio.wait_for(reader.readexactly(len(message)), TIMEOUT)
        expect(got == message, f"{endpoint}: the echo of a dribbled message differs")
    finally:
        writer.close()


class _BioHandshake:
    """A TLS client over memory BIOs, so a test decides what reaches the socket and when."""

    def __init__(self, version=None):
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = tls_client_context(version).wrap_bio(self.incoming, self.outgoing)

    def step(self):
        """Advance the handshake; (done, bytes to send)."""
        try:
            self.tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        return done, self.outgoing.read()


async def _slow_tls_handshake(ports):
    reader, writer = await connect_raw(ports["tls"])
    try:
        hs = _BioHandshake()
        done = False
        while not done:
            done, out = hs.step()
            for i in range(0, len(out), 5):
                writer.write(out[i:i + 5])
                await asyncio.sleep(0.005)
            if not done:
                data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
                expect(data, "the server closed a slow TLS handshake")
                hs.incoming.write(data)
        message = messages(1)[0]
        hs.tls.write(message)
        writer.write(hs.outgoing.read())
        got = b""
        while len(got) < len(message):
            data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
            expect(data, "EOF before the echo over a slowly handshaken TLS connection")
            hs.incoming.write(data)
            try:
                got += hs.tls.read(65536)
            except ssl.SSLWantReadError:
                pass
        expect(got == message, "the echo over a slowly handshaken TLS connection differs")
    finally:
        writer.close()


async def slow_loris(ports, connections=16):
    tasks = [_dribble(ports, random.choice(("stream", "protocol", "tls")), m)
             for m in messages(connections, 100)]
    await asyncio.gather(*tasks, _slow_tls_handshake(ports))
    return {"connections": connections + 1}


# ---------------------------------------------------------------- storm

async def storm(ports, count):
    """`count` connections at once to the stream endpoint (past the server's fd limit)."""
    loop = asyncio.get_running_loop()
    socks = []

    async def one(sock):
        try:
            await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", ports["stream"])), 3)
        except (asyncio.TimeoutError, OSError):
            pass  # the backlog is full (its SYN is dropped): the storm has made its point

    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setblocking(False)
            socks.append(sock)
        await asyncio.gather(*map(one, socks))
        connected = 0
        for i, sock in enumerate(socks):
            try:
                sock.send(frames.frame(STREAM_ID, i, b"storm"))
                connected += 1
            except OSError:
                pass
        await asyncio.sleep(1.0)
    finally:
        for sock in socks:
            sock.close()
    # Recovery: the server accepts and echoes again (asyncio retries accept 1 s
    # after EMFILE), though it may first have to drain the closed storm.
    for attempt in range(20):
        try:
            await echo_check(ports, "stream", 1)
            break
        except (asyncio.TimeoutError, ConnectionError):
            if attempt == 19:
                raise FaultFailed("the server did not recover from the storm")
    return {"opened": count, "sent_on": connected}


# ---------------------------------------------------------------- tls_abort

async def connect_raw(port):
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)


async def _read_some(reader, timeout=TIMEOUT):
    try:
        return await asyncio.wait_for(reader.read(65536), timeout)
    except asyncio.TimeoutError:
        return b""


async def _abort_at(port, version, point, rst):
    """One handshake, cut at `point`."""
    reader, writer = await connect_raw(port)
    try:
        hs = _BioHandshake(version)
        _, hello = hs.step()
        if point == "before-hello":
            pass
        elif point.startswith("hello-"):
            cut = {"hello-1": 1, "hello-5": 5, "hello-half": len(hello) // 2,
                   "hello-all-but-1": len(hello) - 1, "hello-all": len(hello)}[point]
            writer.write(hello[:cut])
        elif point == "garbage":
            writer.write(random.randbytes(random.randint(1, 600)))
            await _read_some(reader, 1.0)  # the server's alert, or its close
        else:  # points after the server's flight
            writer.write(hello)
            done = False
            while not done:
                data = await _read_some(reader)
                expect(data, f"TLS {version}: the server closed before its handshake flight")
                hs.incoming.write(data)
                done, out = hs.step()
                if out and point == "client-finished-half":
                    writer.write(out[:len(out) // 2])
                    break
                if out and point == "after-handshake":
                    writer.write(out)
                if point == "server-flight" and not done:
                    break  # the client's answer is never sent
                if point == "server-flight" and done:
                    break
        await asyncio.sleep(0)
    finally:
        if rst:
            abort(writer)
        else:
            writer.close()


TLS_ABORT_POINTS = ("before-hello", "hello-1", "hello-5", "hello-half", "hello-all-but-1",
                    "hello-all", "garbage", "server-flight", "client-finished-half",
                    "after-handshake")


async def tls_abort(ports):
    count = 0
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        for point in TLS_ABORT_POINTS:
            for rst in (False, True):
                await _abort_at(ports["tls"], version, point, rst)
                count += 1
    await echo_check(ports, "tls")
    return {"aborted_handshakes": count}


def schedule(storm_size):
    """The client-side faults by name: coroutine functions of the ports."""
    return {"reset": reset, "stop_reading": stop_reading, "half_close": half_close,
            "slow_loris": slow_loris, "tls_abort": tls_abort,
            "storm": lambda ports: storm(ports, storm_size)}
