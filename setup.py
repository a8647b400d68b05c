"""Build of the compiled core: ringloop._core, from Cython plus a small C file over
liburing (linked statically against liburing.a), and ringloop._transport_bases, the
C bases that make the Cython transports instances of asyncio's transport classes."""
import os
import sys

from setuptools import Extension, setup

LIBURING_CANDIDATES = [
    "/usr/lib/x86_64-linux-gnu/liburing.a",
    "/usr/lib/aarch64-linux-gnu/liburing.a",
    "/usr/lib64/liburing.a",
    "/usr/lib/liburing.a",
    "/usr/local/lib/liburing.a",
]


def find_liburing():
    override = os.environ.get("RINGLOOP_LIBURING_A")
    for path in ([override] if override else []) + LIBURING_CANDIDATES:
        if path and os.path.exists(path) and os.path.exists("/usr/include/liburing.h"):
            return path
    sys.exit(
        "ringloop: liburing (static library and headers) not found.\n"
        "  On Debian/Ubuntu: apt-get install liburing-dev\n"
        "  (or set RINGLOOP_LIBURING_A to the path of liburing.a)"
    )


def extensions():
    from Cython.Build import cythonize

    core = Extension(
        "ringloop._core",
        sources=["src/ringloop/_core.pyx", "src/ringloop/_backend/ring.c",
                 "src/ringloop/_monitor/watchdog.c"],
        include_dirs=["src/ringloop/_backend", "src/ringloop/_transports",
                      "src/ringloop/_monitor"],
        extra_objects=[find_liburing()],
        extra_compile_args=["-O2", "-Wno-unused-function"],
        define_macros=[("_GNU_SOURCE", "1")],
    )
    # asyncio's transport classes as extension-type bases (see transport_bases.c).
    transport_bases = Extension(
        "ringloop._transport_bases",
        sources=["src/ringloop/_transports/transport_bases.c"],
        include_dirs=["src/ringloop/_transports"],
        extra_compile_args=["-O2"],
    )
    return [transport_bases] + cythonize(
        [core],
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
            # Keeps the GIL on free-threaded Pythons: see backend_info()["free_threading"].
            "freethreading_compatible": False,
        },
    )


if sys.platform.startswith("linux"):
    setup(ext_modules=extensions())
else:  # elsewhere ringloop falls back to the standard loop (DESIGN §1)
    setup()
