"""subprocess_exec / subprocess_shell and asyncio.create_subprocess_*: asyncio's
argument checks, pipes, exit statuses, signals, close/kill, the protocol's callbacks;
no zombie and no fd leak after many spawns; exit notification without SIGCHLD."""
import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from netutil import pattern

pytestmark = pytest.mark.timeout(30)

PY = sys.executable
TRUE = "/bin/true"
PIPE, DEVNULL, STDOUT = subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT


def zombies():
    """Pids of this process's children that exited and were never reaped."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z" and int(fields[1]) == me:
            found.append(int(name))
    return found


class Recorder(asyncio.SubprocessProtocol):
    """Records the SubprocessProtocol callbacks in order."""

    def __init__(self, loop):
        self.events = []
        self.data = {1: bytearray(), 2: bytearray()}
        self.transport = None
        self.exited = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def pipe_data_received(self, fd, data):
        self.data[fd] += data

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")
        self.exited.set_result(self.transport.get_returncode())

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)


# ---------------------------------------------------------------- the basics

def test_exec_communicate(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; d = sys.stdin.buffer.read(); "
                      "sys.stdout.buffer.write(d[::-1]); sys.stderr.write('err'); sys.exit(3)",
            stdin=PIPE, stdout=PIPE, stderr=PIPE)
        out, err = await proc.communicate(b"hello")
        assert (out, err, proc.returncode) == (b"olleh", b"err", 3)
    run(main())


def test_shell_exit_status_and_stderr_to_stdout(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_shell("exit 7")
        assert await proc.wait() == 7
        proc = await asyncio.create_subprocess_shell(
            "echo out; echo err 1>&2", stdout=PIPE, stderr=STDOUT)
        out, err = await proc.communicate()
        assert sorted(out.split()) == [b"err", b"out"] and err is None
        assert proc.returncode == 0
    run(main())


def test_large_output_through_stream_reader(loop, run):
    n = 4 * 1024 * 1024

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", f"import sys; sys.stdout.buffer.write(b'x' * {n})", stdout=PIPE)
        out = await proc.stdout.read()
        assert len(out) == n and out == b"x" * n
        assert await proc.wait() == 0
    run(main(), timeout=20)


def test_large_input(loop, run):
    payload = pattern(3 * 1024 * 1024)

    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys, hashlib; "
                      "print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
            stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(payload)
        import hashlib
        assert out.strip().decode() == hashlib.sha256(payload).hexdigest()
    run(main(), timeout=20)


def test_interactive_line_by_line(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-u", "-c", "import sys\nfor line in sys.stdin: print(line.strip().upper())",
            stdin=PIPE, stdout=PIPE)
        for word in (b"one", b"two", b"three"):
            proc.stdin.write(word + b"\n")
            await proc.stdin.drain()
            assert await proc.stdout.readline() == word.upper() + b"\n"
        proc.stdin.close()
        await proc.stdin.wait_closed()
        assert await proc.wait() == 0
    run(main())


def test_devnull_and_fds(loop, run, tmp_path):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "import sys; print(repr(sys.stdin.read()))",
            stdin=DEVNULL, stdout=PIPE, stderr=DEVNULL)
        out, _ = await proc.communicate()
        assert out.strip() == b"''"
        # Plain fds for stdin and stdout.
        path = tmp_path / "out"
        r, w = os.pipe()
        os.write(w, b"from a pipe fd")
        os.close(w)
        with open(path, "wb") as f:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())",
                stdin=r, stdout=f.fileno())
            assert await proc.wait() == 0
        os.close(r)
        assert path.read_bytes() == b"FROM A PIPE FD"
    run(main())


def test_pass_fds(loop, run):
    async def main():
        r, w = os.pipe()
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", f"import os; os.write({w}, b'inherited')", pass_fds=(w,))
        assert await proc.wait() == 0
        os.close(w)
        assert os.read(r, 100) == b"inherited"
        os.close(r)
    run(main())


def test_transport_api(loop, run):
    async def main():
        tr, p = await loop.subprocess_exec(
            lambda: Recorder(loop), PY, "-c",
            "import sys; sys.stdout.write('out'); sys.stderr.write('err'); sys.exit(5)",
            stdin=PIPE)
        assert isinstance(tr, asyncio.SubprocessTransport)
        assert p.events == ["made"]
        popen = tr.get_extra_info("subprocess")
        assert tr.get_pid() == popen.pid > 0
        assert isinstance(tr.get_pipe_transport(0), asyncio.WriteTransport)
        assert isinstance(tr.get_pipe_transport(1), asyncio.ReadTransport)
        assert isinstance(tr.get_pipe_transport(2), asyncio.ReadTransport)
        assert tr.get_pipe_transport(3) is None
        tr.get_pipe_transport(0).close()
        assert await p.lost is None
        assert tr.get_returncode() == 5
        assert p.exited.result() == 5
        assert bytes(p.data[1]) == b"out" and bytes(p.data[2]) == b"err"
        assert p.events[-1] == "lost" and "exited" in p.events
        lost = [e for e in p.events if isinstance(e, tuple)]
        assert sorted(lost) == [("pipe_lost", 0, None), ("pipe_lost", 1, None),
                                ("pipe_lost", 2, None)]
        tr.close()
        with pytest.raises(ProcessLookupError):
            tr.kill()
    run(main())


def test_no_pipes_protocol_order(loop, run):
    async def main():
        tr, p = await loop.subprocess_exec(lambda: Recorder(loop), TRUE,
                                           stdin=None, stdout=None, stderr=None)
        assert await p.lost is None
        assert p.events == ["made", "exited", "lost"]
        assert tr.get_returncode() == 0
        tr.close()
    run(main())


@pytest.mark.parametrize("how, sig", [("kill", signal.SIGKILL), ("terminate", signal.SIGTERM),
                                      ("send_signal", signal.SIGHUP)])
def test_signals(loop, run, how, sig):
    async def main():
        old = signal.signal(signal.SIGHUP, signal.SIG_DFL)   # inherited by the child
        try:
            proc = await asyncio.create_subprocess_exec(
                PY, "-c", "import time; print('ready', flush=True); time.sleep(60)",
                stdout=PIPE)
        finally:
            signal.signal(signal.SIGHUP, old)
        assert await proc.stdout.readline() == b"ready\n"
        if how == "send_signal":
            proc.send_signal(sig)
        else:
            getattr(proc, how)()
        assert await proc.wait() == -sig
        with pytest.raises(ProcessLookupError):   # the transport is done with it
            proc.kill()
    run(main())


def test_signal_after_exit_before_notice(loop, run):
    """A child that exited but is not yet reaped takes a signal without error."""
    async def main():
        proc = await asyncio.create_subprocess_exec(TRUE)
        time.sleep(0.2)         # exited; the loop has not run since
        proc.terminate()
        assert await proc.wait() == 0
    run(main())


def test_close_kills_running_child(loop, run):
    async def main():
        tr, p = await loop.subprocess_exec(lambda: Recorder(loop), "sleep", "60",
                                           stdin=None, stdout=None, stderr=None)
        tr.close()
        assert tr.is_closing()
        assert await asyncio.wait_for(p.lost, 5) is None
        assert tr.get_returncode() == -signal.SIGKILL
    run(main())


def test_concurrent_processes(loop, run):
    async def one(i):
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", f"import sys; print({i}); sys.exit({i})", stdout=PIPE)
        out, _ = await proc.communicate()
        return int(out), proc.returncode

    async def main():
        results = await asyncio.gather(*(one(i) for i in range(20)))
        assert results == [(i, i) for i in range(20)]
    run(main())


def test_cancel_during_creation_leaves_nothing(loop, run):
    async def main():
        task = asyncio.ensure_future(asyncio.create_subprocess_exec("sleep", "60"))
        loop.call_soon(task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)
    run(main())
    assert zombies() == []


def test_popen_error(loop, run, fds):
    before = fds()

    async def main():
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec("/nonexistent/program", stdin=PIPE,
                                                 stdout=PIPE, stderr=PIPE)
    run(main())
    assert fds() == before


# ---------------------------------------------------------------- argument checks

@pytest.mark.parametrize("kwargs, message", [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"shell": True}, "shell must be False"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
])
def test_exec_argument_checks(loop, run, kwargs, message):
    made = []

    async def main():
        with pytest.raises(ValueError, match=message):
            await loop.subprocess_exec(lambda: made.append(1), TRUE, **kwargs)
        if "shell" not in kwargs:
            with pytest.raises(ValueError, match=message):
                await asyncio.create_subprocess_exec(TRUE, **kwargs)
    run(main())
    assert made == []       # checked before the protocol is made


@pytest.mark.parametrize("kwargs, message", [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"shell": False}, "shell must be True"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
])
def test_shell_argument_checks(loop, run, kwargs, message):
    async def main():
        with pytest.raises(ValueError, match=message):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, "true", **kwargs)
    run(main())


@pytest.mark.parametrize("cmd", [["true"], 1, None])
def test_shell_cmd_must_be_a_string(loop, run, cmd):
    async def main():
        with pytest.raises(ValueError, match="cmd must be a string"):
            await loop.subprocess_shell(asyncio.SubprocessProtocol, cmd)
    run(main())


def test_shell_accepts_bytes(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_shell(b"exit 4")
        assert await proc.wait() == 4
    run(main())


# ---------------------------------------------------------------- no leaks, no SIGCHLD

def test_thousand_spawns_no_zombie_no_fd_leak(loop, run, fds):
    """1,000 short processes in batches: afterwards the same fds are open and no
    child is left unreaped."""
    async def spawn(i):
        if i % 2:
            proc = await asyncio.create_subprocess_exec(TRUE, stdout=PIPE)
            out, _ = await proc.communicate()
            assert out == b""
        else:
            proc = await asyncio.create_subprocess_exec(TRUE)
            await proc.wait()
        assert proc.returncode == 0

    async def main():
        for batch in range(20):
            await asyncio.gather(*(spawn(batch * 50 + i) for i in range(50)))

    before = fds()
    run(main(), timeout=120)
    assert fds() == before
    assert zombies() == []


def test_no_sigchld_handler(loop, run):
    old = signal.getsignal(signal.SIGCHLD)

    async def main():
        proc = await asyncio.create_subprocess_exec(TRUE)
        assert signal.getsignal(signal.SIGCHLD) == old
        await proc.wait()
    run(main())
    assert signal.getsignal(signal.SIGCHLD) == old


@pytest.mark.ringloop_only("ringloop never consults asyncio's child watcher")
@pytest.mark.skipif(not hasattr(asyncio, "set_child_watcher"),
                    reason="asyncio has no child watchers on this Python")
def test_policy_child_watcher_not_needed(loop, run):
    import warnings
    from unittest import mock

    # An inactive watcher: asyncio refuses to spawn with it (RuntimeError).
    watcher = mock.create_autospec(asyncio.AbstractChildWatcher)
    watcher.is_active.return_value = False
    watcher.__enter__.return_value = watcher
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = asyncio.get_event_loop_policy()._watcher
        asyncio.set_child_watcher(watcher)
    try:
        async def main():
            proc = await asyncio.create_subprocess_exec(PY, "-c", "raise SystemExit(9)")
            assert await proc.wait() == 9
        run(main())
        assert watcher.mock_calls == []
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(old)


@pytest.mark.ringloop_only("the thread waiter used without pidfd_open(2)")
def test_thread_waiter_fallback(loop, run, monkeypatch):
    from ringloop import _subprocess

    def no_pidfd(pid):
        raise OSError(38, "Function not implemented")     # ENOSYS
    monkeypatch.setattr(_subprocess, "_pidfd_open", no_pidfd)

    async def main():
        procs = [await asyncio.create_subprocess_exec(PY, "-c", f"raise SystemExit({i})")
                 for i in range(5)]
        assert [await p.wait() for p in procs] == list(range(5))
        proc = await asyncio.create_subprocess_exec("sleep", "60")
        proc.kill()
        assert await proc.wait() == -signal.SIGKILL
    run(main())
    assert zombies() == []


@pytest.mark.ringloop_only("asyncio's watchers report 255 for a child reaped elsewhere")
def test_status_of_child_reaped_by_popen(loop, run):
    """Popen.wait()/poll() reaping the child first: its status is reported."""
    async def main():
        tr, p = await loop.subprocess_exec(lambda: Recorder(loop), PY, "-c",
                                           "raise SystemExit(6)",
                                           stdin=None, stdout=None, stderr=None)
        assert tr.get_extra_info("subprocess").wait() == 6    # blocks briefly
        assert await p.exited == 6
        await p.lost
        tr.close()
    run(main())


@pytest.mark.ringloop_only("children outliving their loop are reaped by a thread")
def test_child_outliving_loop_is_reaped(loop, run):
    async def main():
        return await loop.subprocess_exec(asyncio.SubprocessProtocol, "sleep", "0.2",
                                          stdin=None, stdout=None, stderr=None)
    tr, _ = run(main())
    pid = tr.get_pid()
    loop.close()
    deadline = time.monotonic() + 5
    while pid in zombies() or _alive(pid):
        assert time.monotonic() < deadline, "child not reaped"
        time.sleep(0.02)
    tr.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.ringloop_only("reaping by pid when waitid(P_PIDFD) is missing (Linux 5.3)")
def test_reap_by_pid_without_p_pidfd(loop, run, monkeypatch):
    from ringloop import _subprocess
    monkeypatch.setattr(_subprocess, "_P_PIDFD", None)

    async def main():
        proc = await asyncio.create_subprocess_exec(PY, "-c", "raise SystemExit(12)")
        assert await proc.wait() == 12
        proc = await asyncio.create_subprocess_exec("sleep", "60")
        proc.terminate()
        assert await proc.wait() == -signal.SIGTERM
    run(main())
    assert zombies() == []
