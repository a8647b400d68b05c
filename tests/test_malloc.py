"""glibc heap trimming: the first loop raises malloc's thresholds once per process
(src/ringloop/_malloc.pxi), unless RINGLOOP_TUNE_MALLOC=0 or the user set them."""
import os
import platform
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.ringloop_only("ringloop tunes glibc malloc; asyncio does not"),
    pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's heap trimming"),
]

# Thirty 100 KiB blocks made and freed together, as ten connections' StreamReader
# buffers and the bytes copied out of them are: 3 MiB of free heap top. That is over
# glibc's trim threshold, also after importing asyncio raised it a little (freeing
# a large block it read), so each round gives the pages back and faults them in again.
SCRIPT = """
import resource, sys
if sys.argv[1] == "loop":
    import ringloop
    ringloop.new_event_loop().close()

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def rounds(n):
    for _ in range(n):
        blocks = [bytearray(100_000) for _ in range(30)]
        del blocks

rounds(5)
start = faults()
rounds(50)
print(faults() - start)
"""


def page_faults(mode, **env):
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=60, check=True)
    return int(out.stdout)


@pytest.fixture(scope="module")
def untuned_faults():
    faults = page_faults("plain")
    if faults < 1000:
        pytest.skip(f"this glibc does not trim the heap here ({faults} faults in 50 rounds)")
    return faults


def test_loop_stops_trim_and_refault(untuned_faults):
    # Untuned, each round faults in most of its 3 MiB again (about 700 pages).
    assert page_faults("loop") < untuned_faults / 20


def test_opt_out_leaves_malloc_alone(untuned_faults):
    assert page_faults("loop", RINGLOOP_TUNE_MALLOC="0") > untuned_faults / 2


def test_users_own_malloc_setting_wins(untuned_faults):
    # glibc stops adjusting its thresholds once one was set explicitly.
    faults = page_faults("loop", GLIBC_TUNABLES="glibc.malloc.trim_threshold=131072")
    assert faults > untuned_faults / 2
