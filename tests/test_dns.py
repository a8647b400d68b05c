"""getaddrinfo / getnameinfo."""
import concurrent.futures
import socket
import threading

import pytest


def _has_ipv6_loopback():
    try:
        socket.getaddrinfo("::1", 80, flags=socket.AI_NUMERICHOST)
        return socket.has_ipv6
    except OSError:
        return False


NUMERIC_CASES = [
    pytest.param(("127.0.0.1", 80), {}, id="v4"),
    pytest.param(("127.0.0.1", "80"), {}, id="v4-strport"),
    pytest.param((b"127.0.0.1", 80), {}, id="v4-bytes"),
    pytest.param(("127.0.0.1", None), {}, id="v4-noport"),
    pytest.param(("127.0.0.1", 0), {"type": socket.SOCK_STREAM}, id="v4-stream"),
    pytest.param(("127.0.0.1", 53), {"type": socket.SOCK_DGRAM,
                                     "proto": socket.IPPROTO_UDP}, id="v4-udp"),
    pytest.param(("127.0.0.1", 80), {"family": socket.AF_INET}, id="v4-family"),
    pytest.param(("::1", 80), {}, id="v6",
                 marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6")),
    pytest.param(("::1", 443), {"family": socket.AF_INET6, "type": socket.SOCK_STREAM},
                 id="v6-stream",
                 marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6")),
    pytest.param((None, 8080), {"flags": socket.AI_PASSIVE}, id="none-passive"),
    pytest.param((None, 8080), {"type": socket.SOCK_STREAM}, id="none-stream"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("args, kwargs", NUMERIC_CASES)
def test_getaddrinfo_numeric_matches_socket(loop, run, args, kwargs):
    expected = socket.getaddrinfo(*args, **kwargs)
    got = run(loop.getaddrinfo(*args, **kwargs))
    assert got == expected
    # same element types (enums for family/type), not just equal values
    assert [tuple(type(x) for x in e) for e in got] == \
           [tuple(type(x) for x in e) for e in expected]


@pytest.mark.timeout(10)
def test_getaddrinfo_localhost(loop, run):
    got = run(loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM))
    assert got
    addrs = {info[4][0] for info in got}
    assert addrs & {"127.0.0.1", "::1"}
    assert all(info[1] == socket.SOCK_STREAM for info in got)


@pytest.mark.timeout(10)
def test_getaddrinfo_error_is_gaierror(loop, run):
    with pytest.raises(socket.gaierror) as expected:
        socket.getaddrinfo("localhost", 80, flags=socket.AI_NUMERICHOST)
    with pytest.raises(socket.gaierror) as got:
        run(loop.getaddrinfo("localhost", 80, flags=socket.AI_NUMERICHOST))
    assert got.value.errno == expected.value.errno


@pytest.mark.timeout(10)
def test_getaddrinfo_bad_service(loop, run):
    with pytest.raises(OSError) as expected:
        socket.getaddrinfo("127.0.0.1", "no-such-service-xyz")
    with pytest.raises(OSError) as got:
        run(loop.getaddrinfo("127.0.0.1", "no-such-service-xyz"))
    assert type(got.value) is type(expected.value)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("sockaddr, flags", [
    (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1", 80), socket.NI_NUMERICHOST),
    (("127.0.0.1", 22), 0),
])
def test_getnameinfo_matches_socket(loop, run, sockaddr, flags):
    assert run(loop.getnameinfo(sockaddr, flags)) == socket.getnameinfo(sockaddr, flags)


@pytest.mark.timeout(10)
@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6")
def test_getnameinfo_v6(loop, run):
    sa = ("::1", 8080, 0, 0)
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    assert run(loop.getnameinfo(sa, flags)) == socket.getnameinfo(sa, flags)


@pytest.mark.timeout(10)
def test_getaddrinfo_on_closed_loop(loop):
    loop.close()
    aw = None
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        # Either the call or the first step raises; drive it without a loop.
        aw = loop.getaddrinfo("127.0.0.1", 80)
        aw.send(None)
    if aw is not None:
        aw.close()


class RecordingExecutor(concurrent.futures.ThreadPoolExecutor):
    def __init__(self):
        super().__init__(max_workers=1)
        self.submitted = []

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append((fn, args))
        return super().submit(fn, *args, **kwargs)


@pytest.mark.ringloop_only("asyncio always resolves in the default executor")
@pytest.mark.timeout(10)
def test_numeric_getaddrinfo_does_not_use_executor(loop, run):
    """Numeric hosts are resolved inline: neither the default executor nor
    any new thread is used."""
    ex = RecordingExecutor()
    loop.set_default_executor(ex)
    threads_before = threading.active_count()

    async def main():
        for host in ("127.0.0.1", None, "10.1.2.3"):
            await loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
        if _has_ipv6_loopback():
            await loop.getaddrinfo("::1", 80)

    run(main())
    assert ex.submitted == []
    assert threading.active_count() == threads_before
    ex.shutdown(wait=True)


@pytest.mark.timeout(10)
def test_name_lookup_uses_default_executor(loop, run):
    """A real name lookup runs in the default executor, as in asyncio (so
    set_default_executor bounds the resolver threads).  This is also the
    counter-check that RecordingExecutor does see executor use."""
    ex = RecordingExecutor()
    loop.set_default_executor(ex)
    run(loop.getaddrinfo("localhost", 80))
    assert len(ex.submitted) >= 1
