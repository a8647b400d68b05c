"""Which kernel backend a loop gets, decided once per process (docs/architecture.md,
"Backends").

Order: the RINGLOOP_BACKEND environment variable (io_uring, epoll, auto); then
/proc/sys/kernel/io_uring_disabled; then a real io_uring set-up with the best flags
(the ring layer drops flags on EINVAL). EPERM, ENOSYS, ENOMEM or missing opcodes mean
epoll, and the reason is kept for backend_info(). A forced io_uring that cannot start
is an error, never a silent fallback.
"""
import os
import sys
import sysconfig

from ringloop import _core

BACKENDS = ("io_uring", "epoll")
_decision = None


class _Decision:
    __slots__ = ("requested", "backend", "reason", "probe")

    def __init__(self, requested, backend, reason, probe):
        self.requested = requested
        self.backend = backend
        self.reason = reason
        self.probe = probe


def _requested_from_env():
    value = os.environ.get("RINGLOOP_BACKEND", "auto").strip().lower() or "auto"
    if value not in BACKENDS + ("auto",):
        raise ValueError(
            f"RINGLOOP_BACKEND={value!r} is not one of io_uring, epoll, auto")
    return value


def _io_uring_disabled_sysctl():
    # 0: enabled, 1: only for the io_uring_group, 2: disabled (Linux 6.6).
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _decide():
    requested = _requested_from_env()
    if requested == "epoll":
        return _Decision(requested, "epoll", "RINGLOOP_BACKEND=epoll", None)
    sysctl = _io_uring_disabled_sysctl()
    probe = _core.probe_io_uring()
    if probe["available"]:
        return _Decision(requested, "io_uring",
                         "io_uring set up with " + (", ".join(probe["setup_flags"]) or "no flags"),
                         probe)
    why = f"io_uring unavailable: {probe['error']}"
    if sysctl:
        why += f" (kernel.io_uring_disabled={sysctl})"
    if requested == "io_uring":
        raise RuntimeError(f"RINGLOOP_BACKEND=io_uring but {why}")
    return _Decision(requested, "epoll", why + "; using epoll", probe)


def decision():
    """The process-wide backend decision (made on first use)."""
    global _decision
    if _decision is None:
        _decision = _decide()
    return _decision


def make_backend(name=None):
    """A backend object for a new loop: `name` if given, else the process default."""
    if name is None or name == "auto":
        name = decision().backend
    if name == "epoll":
        return _core.EpollBackend()
    if name == "io_uring":
        try:
            return _core.UringBackend()
        except OSError as exc:
            raise RuntimeError(f"cannot start the io_uring backend: {exc}") from exc
    raise ValueError(f"unknown backend {name!r}: expected 'io_uring', 'epoll' or 'auto'")


def backend_info():
    d = decision()
    probe = d.probe or _core.probe_io_uring()
    return {
        "backend": d.backend,
        "requested": d.requested,
        "reason": d.reason,
        "io_uring": {
            "available": probe["available"],
            "setup_flags": probe["setup_flags"],
            "features": probe["features"],
            "opcodes": probe["opcodes"],
            "error": probe["error"],
        },
        "free_threading": free_threading_info(),
    }


# The cross-thread paths (call_soon_threadsafe, executor results, signal wake-ups,
# closing a loop from another thread) and the compiled ready queue and timer heap they
# touch take the GIL as their lock. No free-threaded build was at hand to audit and test
# them without it, so both extension modules declare that they need the GIL
# (Py_mod_gil, Cython's freethreading_compatible=False): on a free-threaded Python,
# importing ringloop turns the GIL back on, and Python warns that it did.
GIL_REASON = ("ringloop's compiled core uses the GIL as the lock of its cross-thread paths "
              "(call_soon_threadsafe, executor results, signal wake-ups, close from "
              "another thread); on a free-threaded Python it keeps the GIL enabled")


def free_threading_info():
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return {
        "free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gil_required": True,
        "gil_enabled": True if is_gil_enabled is None else is_gil_enabled(),
        "reason": GIL_REASON,
    }
