"""Event loop implementations the benchmarks run against.

Each implementation is a name and a zero-argument factory returning a fresh,
not-running event loop. Imports happen inside the factories so that a worker
process only imports the implementation it measures.
"""
import asyncio
import importlib
import sys

# Order is the order of columns in reports and of measurements within a round.
IMPLEMENTATIONS = [
    "asyncio",
    "uvloop",
    "rloop",
    "ringloop-io_uring",
    "ringloop-epoll",
]

# Names accepted by --loops that stand for several implementations.
ALIASES = {
    "ringloop": ["ringloop-io_uring", "ringloop-epoll"],
}

# What ringloop is compared with, in the order of the reports' ratio columns.
BASELINES = ("asyncio", "uvloop", "rloop")


def expand(names):
    """Expand a list of --loops names (aliases allowed) into implementation names,
    in canonical order, without duplicates."""
    wanted = set()
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name in ALIASES:
            wanted.update(ALIASES[name])
        elif name in IMPLEMENTATIONS:
            wanted.add(name)
        else:
            known = ", ".join(IMPLEMENTATIONS + list(ALIASES))
            raise ValueError(f"unknown loop implementation {name!r} (known: {known})")
    return [name for name in IMPLEMENTATIONS if name in wanted]


# Prefix of a column measured with another build of ringloop (--base: before/after).
BASE = "base:"


def is_ringloop(name):
    return name.removeprefix(BASE).startswith("ringloop-")


def _import(module):
    """Import a baseline's module. A virtualenv without it (one made without the
    `bench` extra) falls back to the site-packages of the interpreter the venv was
    made from, which is the same CPython build."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if sys.prefix == sys.base_prefix:
            raise
        import sysconfig

        base = sysconfig.get_paths(vars={"base": sys.base_prefix,
                                         "platbase": sys.base_exec_prefix})
        extra = [p for p in (base["purelib"], base["platlib"]) if p not in sys.path]
        if not extra:
            raise
        sys.path.extend(extra)
        return importlib.import_module(module)


def factory(name):
    """Return a zero-argument callable creating a new loop of implementation `name`."""
    if name == "asyncio":
        return asyncio.new_event_loop
    if name in ("uvloop", "rloop"):
        return _import(name).new_event_loop
    if is_ringloop(name):
        import ringloop

        backend = name.split("-", 1)[1]
        return lambda: ringloop.new_event_loop(backend=backend)
    raise ValueError(f"unknown loop implementation {name!r}")


def describe(name, loop):
    """Version and backend facts about an implementation, for the report."""
    info = {"impl": name, "loop_type": f"{type(loop).__module__}.{type(loop).__qualname__}"}
    module = {"asyncio": None, "uvloop": "uvloop", "rloop": "rloop"}.get(name, "ringloop")
    if module:
        mod = importlib.import_module(module)
        info["version"] = getattr(mod, "__version__", "?")
    if is_ringloop(name):
        info["backend"] = getattr(loop, "backend_name", "?")
    elif name == "asyncio":
        selector = getattr(loop, "_selector", None)
        info["backend"] = type(selector).__name__ if selector is not None else "?"
    return info
