"""One backend's soak: the server process, the compiled load generator, the fault
schedule, the samples of the server's fds and RSS, the watchdog, and the verdict.

The driver runs on the standard asyncio loop: only the server runs on ringloop.
"""
import asyncio
import itertools
import json
import os
import signal
import statistics
import sys
import tempfile
import time

from ringloop._soak import faults

# The fault schedule: client-side faults (faults.py) and, prefixed "chaos:", the
# server's own (chaos.py), in turn, one at a time, for as long as the load runs.
SCHEDULE = ("reset", "chaos:cancel", "stop_reading", "half_close", "chaos:loop_close",
            "slow_loris", "tls_abort", "chaos:fork", "storm")
# What the loop's exception handler may say during a storm (asyncio's own report of
# an accept that failed for want of fds), and nothing else.
EXPECTED_HANDLER_MESSAGE = "socket.accept() out of system resource"
EXPECTED_HANDLER_TEXT = "[Errno 24]"
FAULT_TIMEOUT = 180.0
COMMAND_TIMEOUT = 120.0
# The load runs for the configured time and then until every fault has run once,
# so a slow machine makes a run longer, never a failure; this caps that.
MAX_OVERRUN = 10


class Config:
    def __init__(self, *, duration, warmup, sample_every, fault_gap, hang_after=60.0,
                 conns=8, udp_sockets=4, depth=4, nofile=256, flat_within=None):
        self.duration, self.warmup, self.sample_every = duration, warmup, sample_every
        self.fault_gap, self.hang_after = fault_gap, hang_after
        self.conns, self.udp_sockets, self.depth, self.nofile = conns, udp_sockets, depth, nofile
        self.storm_size = nofile + 100
        # None: no flatness figure is judged (short runs), only the end against the start
        self.flat_within = flat_within


class Hang(Exception):
    pass


def sample(pid):
    """(open fds, RSS in KiB) of a process."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, rss


class Server:
    """The serving process and its command channel."""

    def __init__(self, proc, ready):
        self.proc, self.pid, self.ports = proc, ready["pid"], ready["ports"]
        self.lock = asyncio.Lock()

    @classmethod
    async def start(cls, backend, cert, key, nofile, log):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ringloop._soak.server", backend, cert, key, str(nofile),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
            limit=1 << 20)
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the soak server exited before it was ready")
        return cls(proc, json.loads(line))

    async def command(self, **cmd):
        async with self.lock:
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), COMMAND_TIMEOUT)
            if not line:
                raise RuntimeError("the soak server exited")
            return json.loads(line)

    async def stop(self):
        self.proc.stdin.write(b'{"cmd": "stop"}\n')
        await self.proc.stdin.drain()
        return await asyncio.wait_for(self.proc.wait(), 60)

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()


class Soak:
    def __init__(self, backend, config, loadgen, cert, key, log):
        self.backend, self.config = backend, config
        self.loadgen_exe, self.cert, self.key, self.log = loadgen, cert, key, log
        self.samples = []            # {"t", "fds", "rss_kib"}
        self.faults = {}             # name -> {"runs", "failures": [...], "last"}
        self.progress = (0, time.monotonic())   # (messages verified, when that last grew)
        self.final = None
        self.t0 = None
        self.loadgen = None
        self.fault_lock = asyncio.Lock()

    # -- pieces running beside the load

    async def read_loadgen(self, proc):
        async for line in proc.stdout:
            report = json.loads(line)
            if report.get("progress"):
                if report["verified"] > self.progress[0]:
                    self.progress = (report["verified"], time.monotonic())
            else:
                self.final = report

    async def take_sample(self, server):
        """fds and memory between faults. fds: after a settling second, the count most
        often seen over 3 s (a fault's last connections closing, or the load generator
        replacing one, are brief). Memory: the median raw RSS over those 3 s, and the
        RSS in use that the server reports after collecting garbage and trimming
        malloc's free memory (server.memory_in_use), which the verdict judges."""
        async with self.fault_lock:
            await asyncio.sleep(1)
            readings = []
            for _ in range(30):
                readings.append(sample(server.pid))
                await asyncio.sleep(0.1)
            in_use = (await server.command(cmd="memory"))["rss_kib"]
        self.samples.append({"t": round(time.monotonic() - self.t0),
                             "under_load": self.loadgen is not None and self.loadgen.returncode is None,
                             "fds": min(statistics.multimode(r[0] for r in readings)),
                             "rss_raw_kib": statistics.median_low(r[1] for r in readings),
                             "rss_kib": in_use})

    async def sampler(self, server):
        for n in itertools.count(1):
            await asyncio.sleep(self.t0 + n * self.config.sample_every - time.monotonic())
            await self.take_sample(server)

    async def run_fault(self, name, server, client_faults):
        record = self.faults.setdefault(name, {"runs": 0, "completed": 0, "failures": []})
        record["runs"] += 1
        try:
            if name.startswith("chaos:"):
                answer = await server.command(cmd="chaos", name=name[len("chaos:"):])
                if not answer["ok"]:
                    raise faults.FaultFailed(answer["detail"])
                record["last"] = answer["detail"]
            else:
                record["last"] = await asyncio.wait_for(client_faults[name](server.ports),
                                                        FAULT_TIMEOUT)
        except asyncio.TimeoutError:
            record["failures"].append(f"hung for {FAULT_TIMEOUT:.0f} s")
        except (faults.FaultFailed, OSError, asyncio.IncompleteReadError) as exc:
            record["failures"].append(f"{type(exc).__name__}: {exc}")
        record["completed"] += 1

    async def fault_schedule(self, server):
        client_faults = faults.schedule(self.config.storm_size)
        for name in itertools.cycle(SCHEDULE):
            async with self.fault_lock:
                await self.run_fault(name, server, client_faults)
            await asyncio.sleep(self.config.fault_gap)

    async def stop_load(self):
        """Once the time is up and every fault has run, tell the load generator to
        stop (SIGUSR1: it stops sending and drains)."""
        await asyncio.sleep(self.config.duration)
        while any(not self.faults.get(name, {}).get("completed") for name in SCHEDULE):
            await asyncio.sleep(0.5)
        self.loadgen.send_signal(signal.SIGUSR1)

    async def watchdog(self, server):
        while True:
            await asyncio.sleep(1)
            stalled = time.monotonic() - self.progress[1]
            if stalled > self.config.hang_after:
                os.kill(server.pid, signal.SIGUSR1)  # its stacks, into the server log
                await asyncio.sleep(1)
                raise Hang(f"no message verified for {stalled:.0f} s")

    async def quiescent_fds(self, server, want):
        """The server's fd count once the connections are gone (at most 30 s on)."""
        deadline = time.monotonic() + 30
        while True:
            fds = sample(server.pid)[0]
            if fds <= want or time.monotonic() > deadline:
                return fds
            await asyncio.sleep(0.2)

    # -- the run

    async def run(self):
        c = self.config
        server = await Server.start(self.backend, self.cert, self.key, c.nofile, self.log)
        background = []
        try:
            self.t0 = time.monotonic()
            await self.take_sample(server)
            ports = server.ports
            self.loadgen = loadgen = await asyncio.create_subprocess_exec(
                self.loadgen_exe, *(str(ports[k]) for k in ("stream", "protocol", "tls", "udp")),
                str(c.conns), str(c.udp_sockets), str(c.depth), str(c.duration * MAX_OVERRUN),
                stdout=asyncio.subprocess.PIPE, limit=1 << 20)
            self.progress = (0, time.monotonic())
            background = [asyncio.ensure_future(f) for f in (
                self.sampler(server), self.fault_schedule(server), self.stop_load(),
                self.watchdog(server))]
            schedule, watchdog = background[1], background[-1]
            load = asyncio.ensure_future(self.read_loadgen(loadgen))
            await asyncio.wait([load, schedule, watchdog], return_when=asyncio.FIRST_COMPLETED)
            for task in (schedule, watchdog):
                if task.done():  # neither ends but by raising: Hang, or a bug
                    loadgen.kill()
                    task.result()
            await loadgen.wait()
            async with self.fault_lock:  # let the fault under way finish
                for task in background:
                    task.cancel()
            stats = await server.command(cmd="stats")
            end_fds = await self.quiescent_fds(server, self.samples[0]["fds"])
            end_raw = sample(server.pid)[1]
            end_rss = (await server.command(cmd="memory"))["rss_kib"]
            self.samples.append({"t": round(time.monotonic() - self.t0), "fds": end_fds,
                                 "rss_raw_kib": end_raw, "rss_kib": end_rss, "end": True})
            exit_code = await server.stop()
            return self.result(stats, exit_code, loadgen.returncode)
        finally:
            for task in background:
                task.cancel()
            if self.loadgen and self.loadgen.returncode is None:
                self.loadgen.kill()
            server.kill()

    # -- the verdict

    def result(self, stats, server_exit, loadgen_exit):
        problems = []
        final = self.final or {"ok": False, "error": "the load generator printed no result"}
        if not final.get("ok") or loadgen_exit != 0:
            problems.append(f"load generator: exit {loadgen_exit}, {final.get('error')}")
        for name, e in final.get("endpoints", {}).items():
            for what in ("lost", "duplicated", "corrupted", "errors"):
                if e[what]:
                    problems.append(f"{name}: {e[what]} {what} (first: {final['first_error']})")
        if final.get("ok") and not final.get("drained"):
            problems.append("messages still in flight after the drain (counted as lost)")
        if stats["counters"]["bad_frame_count"]:
            problems.append(f"server saw bad frames: {stats['counters']['bad_frames']}")
        unexpected = [h for h in stats["handler"]
                      if not (h["message"] == EXPECTED_HANDLER_MESSAGE
                              and h["text"].startswith(EXPECTED_HANDLER_TEXT))]
        if unexpected:
            problems.append(f"loop exception handler: {unexpected}")
        for name, record in self.faults.items():
            if record["failures"]:
                problems.append(f"fault {name}: {len(record['failures'])} of {record['runs']} "
                                f"failed, first: {record['failures'][0]}")
        missing = [n for n in SCHEDULE if not self.faults.get(n, {}).get("completed")]
        if missing:
            problems.append(f"faults that never completed: {missing}")
        if server_exit != 0:
            problems.append(f"server exited with {server_exit}")
        problems += self.leaks()
        return {"backend": self.backend, "ok": not problems, "problems": problems,
                "duration": self.config.duration, "load": final, "server": stats,
                "faults": self.faults, "samples": self.samples}

    def leaks(self):
        start, end = self.samples[0], self.samples[-1]
        problems = []
        if end["fds"] != start["fds"]:
            problems.append(f"fds: {start['fds']} at the start, {end['fds']} once the "
                            f"connections were gone")
        after_warmup = [s for s in self.samples if s["t"] >= self.config.warmup]
        if not after_warmup:
            return problems + ["no sample after the warm-up (run longer)"]
        base = after_warmup[0]
        if self.config.flat_within is not None:
            for s in after_warmup[1:]:
                if not s.get("under_load"):
                    continue  # the load had stopped: fewer connections, less memory
                for key in ("fds", "rss_kib"):
                    if abs(s[key] - base[key]) > self.config.flat_within * base[key]:
                        problems.append(f"{key} at {s['t']} s: {s[key]}, more than "
                                        f"{self.config.flat_within:.0%} from {base[key]} at "
                                        f"{base['t']} s")
        # At any length: memory that keeps growing by more than a quarter is a leak.
        if end["rss_kib"] > 1.25 * base["rss_kib"] + 16 * 1024:
            problems.append(f"RSS grew from {base['rss_kib']} KiB at {base['t']} s to "
                            f"{end['rss_kib']} KiB at the end")
        return problems


async def soak(backend, config, loadgen, cert, key, log):
    run = Soak(backend, config, loadgen, cert, key, log)
    try:
        return await run.run()
    except (Hang, RuntimeError, asyncio.TimeoutError, OSError) as exc:
        return {"backend": backend, "ok": False, "problems": [f"{type(exc).__name__}: {exc}"],
                "faults": run.faults, "samples": run.samples}


def run_backend(backend, config, loadgen, cert, key):
    """Soak one backend; the result dict, with the tail of the server's stderr."""
    with tempfile.TemporaryFile("w+") as log:
        result = asyncio.run(soak(backend, config, loadgen, cert, key, log))
        log.seek(0)
        result["server_log_tail"] = log.read()[-4000:]
    return result
