"""The echo servers of the net suite, one per style, run in a fresh process:

    python bench/net/servers.py STYLE IMPL [--cpu N]

Pins itself to --cpu, creates a loop of implementation IMPL (bench/loops.py),
starts an echo server in STYLE on 127.0.0.1, port 0, and prints one JSON line
{"port": ..., "pid": ..., ...} on stdout when it accepts connections. It then
serves until it is killed. If the server cannot run (the loop lacks an API the
style needs, or the style's accept loop fails) it prints {"ok": false,
"error": ...} instead, or after the port line, and exits 1.

Every style does the same thing: each byte read from a connection is written
back, and EOF from the client closes the connection.
"""
import asyncio
import os
import resource
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import serverproc  # noqa: E402

HOST = "127.0.0.1"
BACKLOG = 1024  # the 1000-connection workload connects all at once
READ_SIZE = 65536


# --- protocol: asyncio.Protocol, data_received -> transport.write ---

class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def serve_protocol(loop):
    server = await loop.create_server(EchoProtocol, HOST, 0, backlog=BACKLOG)
    return server.sockets[0].getsockname()[1], None


# --- streams: asyncio.start_server, reader.read -> writer.write + drain ---

async def echo_stream(reader, writer):
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def serve_streams(loop):
    server = await asyncio.start_server(echo_stream, HOST, 0, backlog=BACKLOG)
    return server.sockets[0].getsockname()[1], None


# --- sock: loop.sock_accept + a task per connection, sock_recv -> sock_sendall ---

async def echo_sock(loop, sock):
    with sock:
        try:
            while True:
                data = await loop.sock_recv(sock, READ_SIZE)
                if not data:
                    break
                await loop.sock_sendall(sock, data)
        except ConnectionError:
            pass


async def accept_loop(loop, listener):
    tasks = set()
    while True:
        sock, _ = await loop.sock_accept(listener)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as transports do
        task = loop.create_task(echo_sock(loop, sock))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def serve_sock(loop):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    return listener.getsockname()[1], loop.create_task(accept_loop(loop, listener))


STYLES = {"protocol": serve_protocol, "streams": serve_streams, "sock": serve_sock}


def main(argv):
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("style", choices=sorted(STYLES))
    ap.add_argument("impl")
    ap.add_argument("--cpu", type=int)
    args = ap.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    # Serves until killed; a style whose accept loop is a task ends with it.
    return serverproc.serve(args.impl, STYLES[args.style])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
