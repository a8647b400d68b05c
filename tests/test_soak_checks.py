"""The soak's checks can fail: its compiled load generator (bench/floor/soak_loadgen.c)
against echo servers that misbehave on purpose -- a flipped byte, an early close, a
datagram dropped or sent twice -- must count exactly that; against honest ones, nothing.
And the message format's CRC check (ringloop._soak.frames) catches a changed byte.

The misbehaving servers are plain sockets in threads: what is under test here is
the harness, not a loop.
"""
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from ringloop._soak import frames

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))
import cfloor  # noqa: E402

pytestmark = pytest.mark.ringloop_only("tests the soak harness, not a loop")

TIMEOUT = 30


class TcpEcho:
    """A threaded TCP echo; tamper(n, data) may change the bytes from offset n of a
    connection, or return None to close it there."""

    def __init__(self, tamper=lambda n, data: data):
        self.tamper = tamper
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn):
        with conn:
            n = 0
            while data := conn.recv(65536):
                out = self.tamper(n, data)
                if out is None:
                    return
                conn.sendall(out)
                n += len(data)

    def close(self):
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for t in self.threads:
            t.join(TIMEOUT)


class UdpEcho:
    """A threaded UDP echo; tamper(i, datagram) returns the datagrams to send back."""

    def __init__(self, tamper=lambda i, d: [d]):
        self.tamper = tamper
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for i in range(1 << 62):
            data, addr = self.sock.recvfrom(65536)
            if not data:
                return  # close()'s wake-up
            for d in self.tamper(i, data):
                self.sock.sendto(d, addr)

    def close(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"", ("127.0.0.1", self.port))
        self.thread.join(TIMEOUT)
        self.sock.close()


def load(stream_port=0, udp_port=0, seconds=1.0, drain=2.0):
    """Run the load generator on the stream and UDP endpoints; its final report."""
    exe = cfloor.build("soak_loadgen")
    proc = subprocess.run([exe, str(stream_port), "0", "0", str(udp_port), "2", "2", "4",
                           str(seconds), str(drain)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["final"]
    return report["endpoints"]


def failures(endpoint):
    return {k: endpoint[k] for k in ("lost", "duplicated", "corrupted", "errors") if endpoint[k]}


def test_honest_echoes_count_nothing_wrong():
    tcp, udp = TcpEcho(), UdpEcho()
    try:
        got = load(tcp.port, udp.port)
    finally:
        tcp.close()
        udp.close()
    for name in ("stream", "udp"):
        assert got[name]["verified"] > 0
        assert got[name]["verified"] == got[name]["sent"]
        assert failures(got[name]) == {}


def test_a_flipped_byte_is_corrupted():
    flipped = threading.Lock()

    def flip(n, data):  # the 5000th byte of the first connection to reach it
        if n <= 5000 < n + len(data) and flipped.acquire(blocking=False):
            data = bytearray(data)
            data[5000 - n] ^= 0x01
        return bytes(data)

    tcp = TcpEcho(flip)
    try:
        got = load(tcp.port)["stream"]
    finally:
        tcp.close()
    assert got["corrupted"] == 1
    assert got["errors"] == 1  # that connection was given up


def test_an_early_close_loses_what_was_in_flight():
    tcp = TcpEcho(lambda n, data: None if n > 20000 else data)
    try:
        got = load(tcp.port)["stream"]
    finally:
        tcp.close()
    assert got["errors"] >= 2
    assert got["lost"] >= 2


@pytest.mark.parametrize("tamper, counted", [
    (lambda i, d: [] if i == 50 else [d], {"lost": 1}),
    (lambda i, d: [d, d] if i == 50 else [d], {"duplicated": 1}),
], ids=["dropped", "sent-twice"])
def test_a_datagram_dropped_or_sent_twice_is_counted(tamper, counted):
    udp = UdpEcho(tamper)
    try:
        got = load(udp_port=udp.port)["udp"]
    finally:
        udp.close()
    assert failures(got) == counted


def test_frame_crc_catches_a_changed_byte():
    message = frames.frame(7, 42, b"payload bytes")
    header, payload = message[:frames.HEADER_SIZE], message[frames.HEADER_SIZE:]
    assert frames.payload_length(header) == len(payload)
    assert frames.check(header, payload) == (7, 42)
    with pytest.raises(frames.BadFrame):
        frames.check(header, b"payload bytez")
    with pytest.raises(frames.BadFrame):
        frames.payload_length(b"X" + header[1:])
