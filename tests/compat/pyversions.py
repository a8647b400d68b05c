"""Which entries of an expected-failure table keyed by Python version apply here.

A key is "3.13" (that minor version only) or "3.13+" (that one and every later one),
so a difference that asyncio introduced in some release is listed once for all the
Pythons that have it.
"""
import sys


def applies(key, version=sys.version_info[:2]):
    if key.endswith("+"):
        return tuple(version) >= tuple(int(x) for x in key[:-1].split("."))
    return "%d.%d" % tuple(version) == key


def for_this_python(by_python):
    """Merge the tables of every key that applies to the running Python."""
    merged = {}
    for key, table in sorted(by_python.items()):
        if applies(key):
            merged.update(table)
    return merged
