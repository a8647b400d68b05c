"""Cold paths of pipes and subprocesses: connect_read_pipe / connect_write_pipe (the
transports are compiled, ringloop/_transports/pipe.pxi), subprocess_exec /
subprocess_shell with asyncio's argument checks (base_events.py is the reference),
and how the loop learns that a child exited.

Exit notification. asyncio (up to 3.13) asks the policy's child watcher, several of
which install a SIGCHLD handler and race with any other code that reaps children.
ringloop never touches SIGCHLD nor the policy's watcher. Per child:

* pidfd_open(2) (Linux 5.3): a file descriptor for that one process that polls
  readable once it has exited. The loop watches it like any reader, then reaps the
  child with waitid(P_PIDFD, pidfd, WEXITED | WNOHANG) (waitid(2), Linux 5.4), which
  names the process by its pidfd, so a recycled pid can never be confused with it.
* Where pidfd_open is missing or refused (old kernel, ENOSYS; a seccomp filter,
  EPERM), a thread blocks in waitpid(pid, 0) and hands the status to the loop with
  call_soon_threadsafe (asyncio's ThreadedChildWatcher does the same).

While the pidfd is open, signals go through pidfd_send_signal(2): a recycled pid is never
signalled. Children still running when the loop closes are handed to a reaper thread.

Nothing ever calls waitpid(-1), so children of other code are left alone. If someone
else reaped our child first (subprocess.Popen.poll() does, from transport.close()),
the status is the one Popen recorded; failing that, 255 with a warning, as asyncio's
watchers report it.
"""
import errno
import logging
import os
import signal
import subprocess
import threading
from asyncio import base_subprocess

from ringloop import _core
from ringloop._network import _connected
from ringloop._parts import LoopPart

logger = logging.getLogger('asyncio')

_pidfd_open = getattr(os, 'pidfd_open', None)
_P_PIDFD = getattr(os, 'P_PIDFD', None)
_KILLED = (getattr(os, 'CLD_KILLED', 2), getattr(os, 'CLD_DUMPED', 3))


def _format_pipe(fd):
    if fd == subprocess.PIPE:
        return '<pipe>'
    if fd == subprocess.STDOUT:
        return '<stdout>'
    return repr(fd)


def _check_popen_args(shell, want_shell, universal_newlines, bufsize, text, encoding,
                      errors):
    # asyncio's checks, in its order: the transports carry bytes only.
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bool(shell) != want_shell:
        raise ValueError(f"shell must be {want_shell}")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


class _ChildWatch:
    """Reaps one child and reports its exit status to its transport, on the loop's
    thread (see the module docstring)."""

    __slots__ = ('loop', 'pid', 'proc', 'transport', 'owner', 'pidfd', 'threaded',
                 'reaped', 'done')

    def __init__(self, loop, transport):
        self.loop = loop
        self.transport = transport
        self.proc = transport._proc
        self.pid = self.proc.pid
        self.owner = os.getpid()    # the parent
        self.pidfd = -1
        self.threaded = False       # a thread waits for it (no pidfd)
        self.reaped = False         # its pid is free: never signal it again
        self.done = False           # reported (or given up when the loop closed)

    def start(self):
        try:
            if _pidfd_open is None:
                raise OSError(errno.ENOSYS, 'pidfd_open is not available')
            self.pidfd = _pidfd_open(self.pid)
        except ProcessLookupError:
            # Already reaped by someone else (a waitpid(-1) elsewhere in the process).
            self.reaped = True
            self.loop.call_soon(self._deliver, None)
            return
        except OSError:
            self._start_thread()
            return
        try:
            self.loop.add_reader(self.pidfd, self._on_pidfd)
        except OSError:
            os.close(self.pidfd)
            self.pidfd = -1
            self._start_thread()

    def _on_pidfd(self):
        global _P_PIDFD
        status = None
        try:
            if _P_PIDFD is not None:
                try:
                    res = os.waitid(_P_PIDFD, self.pidfd, os.WEXITED | os.WNOHANG)
                except ChildProcessError:
                    raise
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    _P_PIDFD = None     # Linux 5.3: pidfd_open(2) but no P_PIDFD yet
                else:
                    if res is None:
                        return          # not waitable yet: keep watching
                    status = -res.si_status if res.si_code in _KILLED else res.si_status
            if status is None:
                pid, st = os.waitpid(self.pid, os.WNOHANG)
                if pid == 0:
                    return
                status = os.waitstatus_to_exitcode(st)
        except ChildProcessError:
            status = None
        self.reaped = True
        self._stop_watching()
        self._deliver(status)

    def _stop_watching(self):
        if self.pidfd >= 0:
            self.loop.remove_reader(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = -1

    def _start_thread(self):
        self.threaded = True
        threading.Thread(target=self._wait_in_thread, name=f"ringloop-waitpid-{self.pid}",
                         daemon=True).start()

    def _wait_in_thread(self):
        # The fallback without pidfd (asyncio's ThreadedChildWatcher does the same).
        try:
            _, status = os.waitpid(self.pid, 0)
            returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            returncode = None
        self.reaped = True
        loop = self.loop
        try:
            if not self.done:
                loop.call_soon_threadsafe(self._deliver, returncode)
                return
        except RuntimeError:        # the loop closed
            pass
        logger.warning("Loop %r that handles pid %r is closed", loop, self.pid)

    def _deliver(self, returncode):
        # On the loop's thread. None: the status went to another reaper.
        if self.done:
            return
        self.done = True
        if self.loop._child_watches:
            self.loop._child_watches.pop(self.pid, None)
        if returncode is None:
            returncode = self.proc.returncode
            if returncode is None:
                logger.warning("Unknown child process pid %d, will report returncode 255",
                               self.pid)
                returncode = 255
        # asyncio reports the exit two iterations later (call_soon_threadsafe of a
        # call_soon), so that pipe data read meanwhile reaches the protocol first.
        self.loop.call_soon(self.loop.call_soon, self.transport._process_exited, returncode)

    def send_signal(self, sig):
        if self.reaped:
            return      # the pid may already belong to another process
        # pidfd_send_signal(2) signals this very process, never a recycled pid.
        if self.pidfd >= 0:
            signal.pidfd_send_signal(self.pidfd, sig)
        else:
            os.kill(self.pid, sig)

    def detach(self):
        # The loop is closing with the child still running: stop watching and let a
        # thread reap it when it ends (no zombie), without holding the transport.
        # (In a forked child of this process the pid is not ours to wait for.)
        self.done = True
        self.transport = None
        if not self.threaded:
            self._stop_watching()
            if os.getpid() == self.owner:
                self._start_thread()


class SubprocessTransport(base_subprocess.BaseSubprocessTransport):
    """asyncio's subprocess transport logic (pipes, protocol calls, wait, close), with
    a ringloop exit watch instead of a child watcher and signals sent by pidfd."""

    _child_watch = None

    def _start(self, args, shell, stdin, stdout, stderr, bufsize, **kwargs):
        self._proc = subprocess.Popen(
            args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
            universal_newlines=False, bufsize=bufsize, **kwargs)

    def send_signal(self, signal):
        # A process known to have exited is not signalled (as Popen.send_signal);
        # one that exited unnoticed is a zombie and takes the signal harmlessly.
        self._check_proc()
        if self._returncode is not None or self._proc.returncode is not None:
            return
        try:
            if self._child_watch is not None:
                self._child_watch.send_signal(signal)
            else:
                os.kill(self._proc.pid, signal)
        except ProcessLookupError:
            pass

    def terminate(self):
        self.send_signal(signal.SIGTERM)

    def kill(self):
        self.send_signal(signal.SIGKILL)


class SubprocessMixin(LoopPart):
    """Pipes and subprocesses of ringloop.Loop."""

    def _init_part(self):
        self._child_watches = {}    # pid -> _ChildWatch

    # ---- pipes --------------------------------------------------------------------

    def _make_read_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return _core.make_read_pipe_transport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return _core.make_write_pipe_transport(self, pipe, protocol, waiter, extra)

    async def connect_read_pipe(self, protocol_factory, pipe):
        return await self._connect_pipe(self._make_read_pipe_transport, 'Read',
                                        protocol_factory, pipe)

    async def connect_write_pipe(self, protocol_factory, pipe):
        return await self._connect_pipe(self._make_write_pipe_transport, 'Write',
                                        protocol_factory, pipe)

    async def _connect_pipe(self, make_transport, direction, protocol_factory, pipe):
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = make_transport(pipe, protocol, waiter)
        await _connected(waiter, transport)
        if self._debug:
            logger.debug('%s pipe %r connected: (%r, %r)', direction, pipe.fileno(),
                         transport, protocol)
        return transport, protocol

    # ---- subprocesses ---------------------------------------------------------------

    def _log_subprocess(self, msg, stdin, stdout, stderr):
        info = [msg]
        if stdin is not None:
            info.append(f'stdin={_format_pipe(stdin)}')
        if stdout is not None and stderr == subprocess.STDOUT:
            info.append(f'stdout=stderr={_format_pipe(stdout)}')
        else:
            if stdout is not None:
                info.append(f'stdout={_format_pipe(stdout)}')
            if stderr is not None:
                info.append(f'stderr={_format_pipe(stderr)}')
        logger.debug(' '.join(info))

    async def subprocess_shell(self, protocol_factory, cmd, *, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=False, shell=True, bufsize=0,
                               encoding=None, errors=None, text=None, **kwargs):
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        _check_popen_args(shell, True, universal_newlines, bufsize, text, encoding, errors)
        # Like asyncio, log no arguments: they may hold secrets.
        return await self._spawn(protocol_factory, cmd, True, 'run shell command %r' % cmd,
                                 stdin, stdout, stderr, bufsize, kwargs)

    async def subprocess_exec(self, protocol_factory, program, *args, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=False, shell=False, bufsize=0,
                              encoding=None, errors=None, text=None, **kwargs):
        _check_popen_args(shell, False, universal_newlines, bufsize, text, encoding, errors)
        return await self._spawn(protocol_factory, (program,) + args, False,
                                 f'execute program {program!r}', stdin, stdout, stderr,
                                 bufsize, kwargs)

    async def _spawn(self, protocol_factory, args, shell, debug_log, stdin, stdout, stderr,
                     bufsize, kwargs):
        # debug_log: what debug mode logs of the command.
        protocol = protocol_factory()
        debug = self._debug
        if debug:
            self._log_subprocess(debug_log, stdin, stdout, stderr)
        transport = await self._make_subprocess_transport(
            protocol, args, shell, stdin, stdout, stderr, bufsize, **kwargs)
        if debug and self._debug:
            logger.info('%s: %r', debug_log, transport)
        return transport, protocol

    async def _make_subprocess_transport(self, protocol, args, shell, stdin, stdout, stderr,
                                         bufsize, extra=None, **kwargs):
        waiter = self.create_future()
        transport = SubprocessTransport(self, protocol, args, shell, stdin, stdout, stderr,
                                        bufsize, waiter=waiter, extra=extra, **kwargs)
        self._watch_child(transport)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transport.close()
            await transport._wait()
            raise
        return transport

    def _watch_child(self, transport):
        watch = _ChildWatch(self, transport)
        self._child_watches[watch.pid] = watch
        transport._child_watch = watch
        watch.start()

    def _close_part(self):
        watches, self._child_watches = self._child_watches, {}
        for watch in watches.values():
            watch.detach()
