"""Expected failures of uvloop's test suite on ringloop (tests/compat/run_uvloop.py).

Keys are test ids ``module.Class.test`` of the ringloop classes the runner makes
(``test_tcp.Test_RL_TCP.test_foo``, the same name on both backends); a key may be a
glob.  Values are the reason.  A listed test that passes is an unexpected success
and fails the run; an entry that matched nothing in a full run is warned about.

EXPECTED_FAILURES            uvloop-private behaviour: a test of uvloop's own API
                             or of what only uvloop promises.
EXPECTED_FAILURES_BY_PYTHON  {"3.13": {...}}: only on that Python.
EXPECTED_FAILURES_BY_BACKEND {"io_uring": {...}, "epoll": {...}}.
ENVIRONMENT(_BY_PYTHON)      fails on asyncio's loop too (not required).
KNOWN_BUGS(_BY_PYTHON, _BY_BACKEND)
                             ringloop bugs, reason starting with "BUG:".  Not fair;
                             these sections must end up empty.
"""

EXPECTED_FAILURES = {
}

EXPECTED_FAILURES_BY_PYTHON = {
}

EXPECTED_FAILURES_BY_BACKEND = {
}

ENVIRONMENT = {
}

ENVIRONMENT_BY_PYTHON = {
}

KNOWN_BUGS = {
}

KNOWN_BUGS_BY_PYTHON = {
}

KNOWN_BUGS_BY_BACKEND = {
}
