"""python -m ringloop run [--warn-blocking DURATION] SCRIPT|-m MODULE [args] | doctor | bench SUITE|all|report [opts] | soak [opts]"""
import argparse
import os
import runpy
import sys


def _run(argv):
    # Run any asyncio program unchanged, on ringloop.
    usage = "usage: python -m ringloop run [--warn-blocking DURATION] SCRIPT [args] | -m MODULE [args]"
    if argv[:1] == ["--warn-blocking"]:
        if len(argv) < 2:
            sys.exit(usage)
        from ringloop.monitor import parse_threshold
        try:
            parse_threshold(argv[1])
        except (TypeError, ValueError) as exc:
            sys.exit(f"--warn-blocking: {exc}")
        # Every loop the program creates reads it (docs/blocking.md).
        os.environ["RINGLOOP_WARN_BLOCKING"] = argv[1]
        argv = argv[2:]
    if not argv:
        sys.exit(usage)
    _make_new_loops_ringloops()
    if argv[0] == "-m":
        if len(argv) < 2:
            sys.exit("usage: python -m ringloop run -m MODULE [args]")
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        runpy.run_path(argv[0], run_name="__main__")


def _make_new_loops_ringloops():
    import asyncio

    import ringloop
    from ringloop import _policy

    if not _policy.POLICIES_DEPRECATED:
        ringloop.install()      # also covers asyncio.get_event_loop()'s implicit loop
        return
    # Without policies: asyncio.run() and asyncio.Runner() get ringloop as their default
    # loop_factory (a Runner with a factory leaves asyncio's default-loop machinery,
    # the policy on 3.14, alone: asyncio/runners.py), and asyncio.new_event_loop() is
    # ringloop's.

    class Runner(asyncio.runners.Runner):
        def __init__(self, *, debug=None, loop_factory=None):
            super().__init__(debug=debug, loop_factory=loop_factory or ringloop.new_event_loop)

    asyncio.runners.Runner = asyncio.Runner = Runner        # asyncio.run() uses it too
    asyncio.events.new_event_loop = asyncio.new_event_loop = ringloop.new_event_loop


def _doctor(argv):
    import platform
    import resource

    import ringloop

    info = ringloop.backend_info()
    print(f"ringloop {ringloop.__version__} on Python {platform.python_version()}")
    print(f"kernel: {platform.release()} ({platform.machine()})")
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            print(f"kernel.io_uring_disabled: {f.read().strip()}")
    except OSError:
        print("kernel.io_uring_disabled: (not present)")
    print(f"backend: {info['backend']} (requested: {info['requested']})")
    print(f"reason: {info['reason']}")
    uring = info["io_uring"]
    print(f"io_uring available: {uring['available']}" + (f" ({uring['error']})" if uring["error"] else ""))
    if uring["available"]:
        print(f"  setup flags: {', '.join(uring['setup_flags'])}")
        print(f"  features:    {', '.join(uring['features'])}")
        print(f"  opcodes:     {', '.join(uring['opcodes'])}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(f"open files limit: {soft} (hard {hard})")
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    fmt = lambda v: "unlimited" if v == resource.RLIM_INFINITY else f"{v // 1024} KiB"
    print(f"locked memory limit: {fmt(soft)} (hard {fmt(hard)})")
    loop = ringloop.new_event_loop()
    try:
        loop.run_until_complete(_smoke())
        print(f"smoke test: a {loop.backend_name} loop ran timers and a pipe reader: ok")
    finally:
        loop.close()


async def _smoke():
    import asyncio

    loop = asyncio.get_running_loop()
    r, w = os.pipe()
    try:
        got = loop.create_future()
        loop.add_reader(r, lambda: got.done() or got.set_result(os.read(r, 16)))
        loop.call_later(0.001, os.write, w, b"ok")
        assert await asyncio.wait_for(got, 5) == b"ok"
        loop.remove_reader(r)
    finally:
        os.close(r)
        os.close(w)


def _bench(argv):
    # The harness (bench/run.py: suites core, net, tls, udp, `all`, and `report`)
    # lives in the repository's bench/ folder, beside src/.
    here = os.path.dirname(os.path.abspath(__file__))
    for root in (os.getcwd(), os.path.normpath(os.path.join(here, "..", ".."))):
        runner = os.path.join(root, "bench", "run.py")
        if os.path.exists(runner):
            os.execv(sys.executable, [sys.executable, runner] + list(argv))
    sys.exit("ringloop bench: bench/run.py not found (run from a ringloop checkout)")


def _soak(argv):
    from ringloop._soak import cli

    cli.main(argv)


COMMANDS = {"run": _run, "doctor": _doctor, "bench": _bench, "soak": _soak}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        parser = argparse.ArgumentParser(prog="python -m ringloop")
        parser.add_argument("command", choices=sorted(COMMANDS))
        parser.print_help()
        sys.exit(2)
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
