"""loop.sock_sendfile() and loop.sendfile(): file -> socket with the kernel's
sendfile(2) (zero-copy), falling back to read + send where the file cannot be sent
that way. asyncio's semantics (base_events.py, unix_events.py, selector_events.py):
the same argument checks, errors, fallback rules and file-position update.
"""
import errno
import functools
import io
import os
import socket
from asyncio import constants, exceptions

from ringloop import _core
from ringloop._parts import LoopPart

# asyncio's chunk sizes: sock_sendfile's fallback, and loop.sendfile's over a transport.
_SOCK_FALLBACK_CHUNK = constants.SENDFILE_FALLBACK_READBUFFER_SIZE
_TRANSPORT_FALLBACK_CHUNK = 16384


def _check_sendfile_args(sock, file, offset, count):
    if 'b' not in getattr(file, 'mode', 'b'):
        raise ValueError("file should be opened in binary mode")
    if not sock.type == socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


class _PausedWriter:
    """Stands in for a transport's protocol during a fallback sendfile, so the
    copy loop can wait for the write buffer to drain (asyncio does the same)."""

    def __init__(self, transport, loop):
        self._transport = transport
        self._proto = transport.get_protocol()
        self._should_resume_reading = transport.is_reading()
        self._should_resume_writing = transport._protocol_paused
        transport.pause_reading()
        transport.set_protocol(self)
        self._loop = loop
        self._drained = None
        if self._should_resume_writing:
            self._drained = loop.create_future()

    async def drain(self):
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        if self._drained is not None:
            await self._drained

    def connection_made(self, transport):
        raise RuntimeError("Invalid state: connection should have been established already.")

    def connection_lost(self, exc):
        if self._drained is not None and not self._drained.done():
            if exc is None:
                self._drained.set_exception(ConnectionError("Connection is closed by peer"))
            else:
                self._drained.set_exception(exc)
        self._proto.connection_lost(exc)

    def pause_writing(self):
        if self._drained is None:
            self._drained = self._loop.create_future()

    def resume_writing(self):
        if self._drained is not None:
            self._drained.set_result(False)
            self._drained = None

    def data_received(self, data):
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self):
        raise RuntimeError("Invalid state: reading should be paused")

    async def restore(self):
        self._transport.set_protocol(self._proto)
        if self._should_resume_reading:
            self._transport.resume_reading()
        if self._drained is not None:
            # The transport's own flow control resumes the protocol later.
            self._drained.cancel()
        if self._should_resume_writing:
            self._proto.resume_writing()


class SendfileMixin(LoopPart):
    """The sendfile methods of ringloop.Loop."""

    async def sock_sendfile(self, sock, file, offset=0, count=None, *, fallback=True):
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _check_sendfile_args(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except exceptions.SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    async def _sock_sendfile_native(self, sock, file, offset, count):
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise exceptions.SendfileNotAvailableError("not a regular file")
        try:
            size = os.fstat(fileno).st_size
        except OSError:
            raise exceptions.SendfileNotAvailableError("not a regular file")
        if not (count or size):
            return 0  # an empty file
        fd = sock.fileno()
        sent = 0
        try:
            while True:
                block = count - sent if count else max(size - sent, 1)
                if count and block <= 0:
                    return sent
                try:
                    n = os.sendfile(fd, fileno, offset + sent, block)
                except (BlockingIOError, InterruptedError):
                    # The same readiness wait as the sock_* coroutines.
                    await _core._wait_and_retry(self, sock, True, _writable)
                    continue
                except OSError as exc:
                    if sent == 0:
                        # Typically a file sendfile(2) cannot read (not mmap-able):
                        # the caller may fall back on read + send.
                        raise exceptions.SendfileNotAvailableError(
                            "os.sendfile call failed") from exc
                    if exc.errno == errno.ENOTCONN and type(exc) is not ConnectionError:
                        # The peer went away mid-transfer: the same error on every
                        # POSIX system (asyncio normalises it too).
                        raise ConnectionError("socket is not connected", errno.ENOTCONN) from exc
                    raise
                if n == 0:
                    return sent  # end of file
                sent += n
        finally:
            # The file position ends after what was sent, also when nothing was
            # (asyncio's unix_events.py always moves it, from 3.14 on).
            os.lseek(fileno, offset + sent, os.SEEK_SET)

    async def _copy_file(self, file, offset, count, chunk_size, send):
        """Read `file` from `offset` (at most `count` bytes) in chunks on the executor
        and await send(chunk) for each; the file position ends after what was sent."""
        if hasattr(file, 'seek'):
            file.seek(offset)     # also 0: the caller's position may be anywhere
        block = min(count, chunk_size) if count else chunk_size
        buf = bytearray(block)
        sent = 0
        try:
            while True:
                if count:
                    block = min(count - sent, block)
                    if block <= 0:
                        return sent
                view = memoryview(buf)[:block]
                n = await self.run_in_executor(None, file.readinto, view)
                if not n:
                    return sent
                await send(view[:n])
                sent += n
        finally:
            if sent > 0 and hasattr(file, 'seek'):
                file.seek(offset + sent)

    async def _sock_sendfile_fallback(self, sock, file, offset, count):
        return await self._copy_file(file, offset, count, _SOCK_FALLBACK_CHUNK,
                                     functools.partial(self.sock_sendall, sock))

    async def sendfile(self, transport, file, offset=0, count=None, *, fallback=True):
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = getattr(transport, '_sendfile_compatible', constants._SendfileMode.UNSUPPORTED)
        if mode is constants._SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is constants._SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except exceptions.SendfileNotAvailableError:
                if not fallback:
                    raise
        if not fallback:
            raise RuntimeError(f"fallback is disabled and native sendfile is not "
                               f"supported for transport {transport!r}")
        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(self, transport, file, offset, count):
        # The transport's socket is ours for the duration: reads paused, its write
        # queue drained first, and write() refused until we are done.
        fd = transport._sock_fd
        del self._transports[fd]
        resume_reading = transport.is_reading()
        transport.pause_reading()
        await transport._make_empty_waiter()
        try:
            return await self.sock_sendfile(transport._sock, file, offset, count,
                                            fallback=False)
        finally:
            transport._reset_empty_waiter()
            if resume_reading:
                transport.resume_reading()
            self._transports[fd] = transport

    async def _sendfile_fallback(self, transport, file, offset, count):
        writer = _PausedWriter(transport, self)

        async def send(chunk):
            await writer.drain()
            transport.write(chunk)

        try:
            return await self._copy_file(file, offset, count, _TRANSPORT_FALLBACK_CHUNK, send)
        finally:
            await writer.restore()


def _writable():
    return None
