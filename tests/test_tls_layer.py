"""The TLS layer between the stream transport and the application, as asyncio's
SSLProtocol / _SSLProtocolTransport define it: TLS 1.2 and 1.3, the application
transport's API (buffer limits and sizes, write_eof, set_protocol), read flow
control from the application through the TLS layer to the socket, write flow
control from the socket back to the application, several writes from inside
data_received, and an application callback that fails.

Every assertion is asyncio's behaviour: the module passes with
RINGLOOP_TEST_REFERENCE=asyncio on 3.11 and 3.13.
"""
import asyncio
import shutil
import ssl

import pytest

from netutil import Factory, Proto, collect_exceptions, shutdown
import test_tls
from test_tls import HOST, EchoUpper, pki  # noqa: F401 (pki is a fixture)

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(shutil.which("openssl") is None,
                       reason="needs the openssl command line tool"),
]

KiB = 1024


async def tls_pair(loop, pki, server_protocol, *, version=None, **kw):
    """(server, factory, client transport, client protocol) over TCP; the server's
    protocols are server_protocol(loop, **kw)."""
    sctx = pki.server_context()
    if version is not None:
        sctx.minimum_version = sctx.maximum_version = version
    f = Factory(loop, server_protocol, **kw)
    server = await loop.create_server(f, HOST, 0, ssl=sctx)
    tr, p = await loop.create_connection(lambda: Proto(loop),
                                         *server.sockets[0].getsockname(),
                                         ssl=pki.client_context(),
                                         server_hostname="localhost")
    return server, f, tr, p


@pytest.mark.parametrize("version,name", [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                          (ssl.TLSVersion.TLSv1_3, "TLSv1.3")])
def test_echo_over_tls_12_and_13(loop, run, pki, version, name):
    # Sizes around one record (16 KiB of plaintext) and many records.
    sizes = [1, 1000, 16 * KiB - 1, 16 * KiB, 16 * KiB + 1, 300 * KiB]

    async def main():
        server, f, tr, p = await tls_pair(loop, pki, EchoUpper, version=version)
        sslobj = tr.get_extra_info("ssl_object")
        assert sslobj.version() == name
        assert tr.get_extra_info("cipher")[1] == name
        expected = b""
        for i, size in enumerate(sizes):
            chunk = bytes([97 + i]) * size
            tr.write(chunk)
            expected += chunk.upper()
            assert await p.wait_bytes(len(expected)) == expected
        sp = await f.get(0)
        assert sp.transport.get_extra_info("ssl_object").version() == name
        tr.close()
        await p.lost
        await sp.lost
        p.check()
        await shutdown(server, f)
    run(main())


def test_app_transport_api(loop, run, pki):
    async def main():
        server, f, tr, p = await tls_pair(loop, pki, EchoUpper)
        assert isinstance(tr, asyncio.Transport)
        assert tr.can_write_eof() is False
        with pytest.raises(NotImplementedError):
            tr.write_eof()
        with pytest.raises(TypeError):
            tr.write("text")
        tr.write(b"")  # nothing happens
        # asyncio's defaults: FLOW_CONTROL_HIGH_WATER_SSL_WRITE (512 KiB) and
        # FLOW_CONTROL_HIGH_WATER_SSL_READ (256 KiB), low = high // 4.
        assert tr.get_write_buffer_limits() == (128 * KiB, 512 * KiB)
        assert tr.get_read_buffer_limits() == (64 * KiB, 256 * KiB)
        tr.set_write_buffer_limits(high=1000)
        assert tr.get_write_buffer_limits() == (250, 1000)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=1, low=2)
        tr.set_read_buffer_limits(high=8000)
        assert tr.get_read_buffer_limits() == (2000, 8000)
        assert tr.get_write_buffer_size() == 0
        assert tr.get_read_buffer_size() == 0
        assert tr.is_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        tr.resume_reading()
        assert tr.is_reading()

        # set_protocol: data goes to the new protocol from then on.
        p2 = Proto(loop)
        p2.connection_made(tr)
        tr.set_protocol(p2)
        assert tr.get_protocol() is p2
        tr.writelines([b"ab", bytearray(b"cd"), memoryview(b"ef")])
        assert await p2.wait_bytes(6) == b"ABCDEF"
        assert not p.data
        tr.close()
        assert tr.is_closing()
        await p2.lost
        await shutdown(server, f)
    run(main())


class Burst(Proto):
    """Server protocol: on b"go", writes `total` bytes in 64 KiB pieces as long as
    the transport lets it (pause_writing / resume_writing)."""

    def __init__(self, loop, total):
        super().__init__(loop)
        self.total = total
        self.sent = 0
        self.max_buffered = 0

    def data_received(self, data):
        super().data_received(data)
        self._send()

    def resume_writing(self):
        super().resume_writing()
        self._send()

    def _send(self):
        while self.sent < self.total and not self.paused:
            n = min(64 * KiB, self.total - self.sent)
            self.transport.write(bytes([self.sent // (64 * KiB) % 251]) * n)
            self.sent += n
            self.max_buffered = max(self.max_buffered, self.transport.get_write_buffer_size())


def burst_payload(total):
    return b"".join(bytes([i % 251]) * min(64 * KiB, total - i * 64 * KiB)
                    for i in range((total + 64 * KiB - 1) // (64 * KiB)))


def test_slow_reader_flow_control_through_tls(loop, run, pki):
    # The client application pauses reading: the TLS layer keeps reading the socket
    # until its incoming buffer reaches the read high-water mark, then stops; the
    # socket fills, the server's stream transport pauses the server's TLS layer,
    # whose write buffer then grows past its high-water mark and pauses the
    # server application. Resuming moves everything, in order.
    total = 16 * 1024 * KiB

    async def main():
        server, f, tr, p = await tls_pair(loop, pki, Burst, total=total)
        tr.pause_reading()
        tr.write(b"go")
        sp = await f.get(0)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if sp.paused:
                break
        assert sp.paused, (sp.sent, sp.max_buffered, sp.events, tr.get_read_buffer_size())
        assert not p.data, "data_received while reading was paused"
        assert sp.max_buffered >= 512 * KiB
        # The client's TLS layer stopped near its read high-water mark (256 KiB).
        assert 0 < tr.get_read_buffer_size() < 2 * 1024 * KiB
        assert sp.sent < total
        tr.resume_reading()
        got = await asyncio.wait_for(p.wait_bytes(total), 25)
        assert got == burst_payload(total)
        assert sp.sent == total
        assert sp.calls["pause_writing"] >= 1
        assert sp.calls["resume_writing"] == sp.calls["pause_writing"]
        tr.close()
        await p.lost
        await sp.lost
        p.check()
        await shutdown(server, f)
    run(main(), timeout=30)


class MultiWrite(Proto):
    """Server protocol: answers each message with four writes and a writelines."""

    def data_received(self, data):
        super().data_received(data)
        w = self.transport.write
        w(b"<")
        w(bytearray(data))
        w(memoryview(b"|"))
        w(data.upper())
        self.transport.writelines([b"#", data, b">"])


def test_several_writes_from_data_received_keep_their_order(loop, run, pki):
    async def main():
        server, f, tr, p = await tls_pair(loop, pki, MultiWrite)
        expected = b""
        for msg in (b"a", b"bc" * 5000, b"def"):
            tr.write(msg)
            expected += b"<" + msg + b"|" + msg.upper() + b"#" + msg + b">"
            assert await p.wait_bytes(len(expected)) == expected
        tr.close()
        await p.lost
        await shutdown(server, f)
    run(main())


class FailingReceiver(Proto):
    """Server protocol: writes an answer, then its data_received fails."""

    def data_received(self, data):
        super().data_received(data)
        self.transport.write(b"partial answer")
        raise ZeroDivisionError("app bug")


def test_data_received_error_is_fatal(loop, run, pki):
    async def main():
        seen = collect_exceptions(loop)
        server, f, tr, p = await tls_pair(loop, pki, FailingReceiver)
        tr.write(b"hello")
        sp = await f.get(0)
        exc = await sp.lost
        # asyncio's SSLProtocol._do_read: _fatal_error(ex, 'Fatal error on SSL protocol').
        assert isinstance(exc, ZeroDivisionError)
        assert [ctx["message"] for ctx in seen] == ["Fatal error on SSL protocol"]
        assert seen[0]["exception"] is exc
        # What the application wrote before it failed was sent.
        assert await p.wait_bytes(14) == b"partial answer"
        await p.lost
        tr.close()
        await shutdown(server, f)
    run(main())


class SendAndClose(Proto):
    """Server protocol: sends `payload` in one write, then closes (close_notify)."""

    def __init__(self, loop, payload):
        super().__init__(loop)
        self.payload = payload

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.write(self.payload)
        transport.close()


class PausingMixin:
    """Pauses reading from connection_made on, and again after every 64 KiB it
    gets; `resume()` lets it go on, a pause then lasts 1 ms."""

    started = False
    got = 0

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.pause_reading()

    def resume(self):
        self.started = True
        self.transport.resume_reading()

    def _after_data(self, n):
        if self.got // (64 * KiB) != (self.got + n) // (64 * KiB):
            self.transport.pause_reading()
            self.loop.call_later(0.001, self.transport.resume_reading)
        self.got += n


class PausingProto(PausingMixin, Proto):
    def data_received(self, data):
        if not self.started:
            self.violations.append("data_received while paused")
        super().data_received(data)
        self._after_data(len(data))


class PausingBufProto(PausingMixin, test_tls.ViewBufProto):
    def buffer_updated(self, nbytes):
        if not self.started:
            self.violations.append("buffer_updated while paused")
        super().buffer_updated(nbytes)
        self._after_data(nbytes)


@pytest.mark.parametrize("client", [PausingProto, PausingBufProto])
def test_paused_reader_gets_everything_before_close_notify(loop, run, pki, client):
    # The peer sends 1 MiB and closes while the application has reading paused:
    # the TLS layer keeps the data (and close_notify) until resume_reading, then
    # hands over all of it, pausing again every 64 KiB, and only then EOF and
    # connection_lost(None) (asyncio: eof_received returns True while the app is
    # paused, FLUSHING resumes in _do_flush).
    payload = bytes(range(256)) * 4096

    async def main():
        f = Factory(loop, SendAndClose, payload=payload)
        server = await loop.create_server(f, HOST, 0, ssl=pki.server_context())
        tr, p = await loop.create_connection(lambda: client(loop),
                                             *server.sockets[0].getsockname(),
                                             ssl=pki.client_context(),
                                             server_hostname="localhost")
        await asyncio.sleep(0.3)
        assert not p.data and not p.calls["eof"] and not p.calls["lost"]
        assert not tr.is_reading()
        p.resume()
        exc = await asyncio.wait_for(p.lost, 20)
        assert exc is None
        assert bytes(p.data) == payload
        assert p.calls["eof"] == 1
        assert p.violations == []
        await shutdown(server, f)
    run(main())
