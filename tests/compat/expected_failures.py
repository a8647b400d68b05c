"""Expected failures of CPython's test.test_asyncio on ringloop.

Keys are test ids relative to ``test.test_asyncio`` (``module.Class.test``);
a key may be a glob (``*``, ``?``, ``[...]``).  Values are the reason.
A listed test that passes is an *unexpected success* and fails the run, so
entries must be removed as soon as the thing they wait for lands.

Sections:

EXPECTED_FAILURES            fair reasons on every Python and backend: a test of
                             a private asyncio attribute or of the stdlib loop's
                             internals, or a feature of a later issue.
EXPECTED_FAILURES_BY_PYTHON  {"3.13": {...}}: only on that Python.
EXPECTED_FAILURES_BY_BACKEND {"io_uring": {...}, "epoll": {...}}.
ENVIRONMENT(_BY_PYTHON)      fails on the stdlib loop too on this machine (applies
                             to the baseline as well).
KNOWN_BUGS(_BY_PYTHON/_BY_BACKEND)
                             ringloop bugs, reason starting with "BUG:".  Not fair:
                             listed only so the runner stays usable while the
                             core is fixed.  This section must end up empty.
"""

ENVIRONMENT = {
}

ENVIRONMENT_BY_PYTHON = {
}

EXPECTED_FAILURES = {
}

EXPECTED_FAILURES_BY_PYTHON = {
}

EXPECTED_FAILURES_BY_BACKEND = {
}

KNOWN_BUGS = {
}

KNOWN_BUGS_BY_PYTHON = {
}

KNOWN_BUGS_BY_BACKEND = {
}
