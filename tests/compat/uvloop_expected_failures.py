"""Expected failures of uvloop's test suite on ringloop (tests/compat/run_uvloop.py).

Keys are test ids ``module.Class.test`` of the ringloop classes the runner makes,
the same names on both backends: ``test_tcp.Test_RL_TCP.test_foo`` (the twin of an
asyncio class: these tests run on uvloop and asyncio alike) and
``test_tcp.Test_RLUV_TCP.test_foo`` (a test that exists only for the uvloop
variant: a UV class body's own test, or a UV class with no asyncio twin).  A key
may be a glob.  Values are the reason.  A listed test that passes is an unexpected
success and fails the run; an entry that matched nothing in a full run is warned
about.

EXPECTED_FAILURES            uvloop-private behaviour: a test of uvloop's own API
                             or of what only uvloop promises (asyncio's loop does
                             as ringloop does).
EXPECTED_HANGS               the same, for tests that would hang on ringloop (as
                             on asyncio's loop) until the per-test timeout: not
                             run, counted as expected failures.
NOT_ON_RINGLOOP              UV-only tests that test uvloop itself whatever loop
                             the test case makes (they would pass on ringloop
                             without testing it): not run, counted as skipped.
EXPECTED_FAILURES_BY_PYTHON  {"3.13": {...}}: only on that Python; "3.13+": on that
                             one and every later one.
EXPECTED_FAILURES_BY_BACKEND {"io_uring": {...}, "epoll": {...}}.
ENVIRONMENT(_BY_PYTHON)      fails on asyncio's loop too (not required).
KNOWN_BUGS(_BY_PYTHON, _BY_BACKEND)
                             ringloop bugs, reason starting with "BUG:".  Not fair;
                             these sections must end up empty.
"""

UVLOOP_API = "uvloop-private API: "
UVLOOP_ONLY = "uvloop-only behaviour, asyncio's loop does as ringloop does: "
DUCK_BUFFERED = (UVLOOP_ONLY + "uvloop treats any protocol with get_buffer() as a "
                 "buffered protocol; the test's protocol subclasses "
                 "asyncio.BaseProtocol only, and asyncio (like ringloop) needs an "
                 "asyncio.BufferedProtocol to call get_buffer(), else it calls "
                 "data_received(), which the protocol lacks")
SOCK_IOREF = (UVLOOP_ONLY + "uvloop holds a reference on a socket passed to the "
              "sock_*() methods (socket._io_refs) so that sock.close() during an "
              "operation, or while the loop still watches it, is deferred; asyncio "
              "and ringloop close the fd at once")

EXPECTED_FAILURES = {
    # -- Tests that exist only for the uvloop variant (UV class bodies and UV
    # classes without an asyncio twin).
    "test_fs_event.Test_RLUV_FS_Event.*":
        UVLOOP_API + "loop._monitor_fs() (libuv's uv_fs_event file watcher)",
    "test_process.Test_RLUV_Process_Delayed.test_process_delayed_stdio__paused__*":
        UVLOOP_API + "passes the test hook __uvloop_sleep_after_fork=True to "
        "subprocess_shell(), which ringloop, like asyncio, hands to subprocess.Popen",
    "test_signals.Test_RLUV_Signals.test_signals_no_SIGCHLD":
        UVLOOP_ONLY + "uvloop refuses add_signal_handler(SIGCHLD) because libuv "
        "owns SIGCHLD; asyncio and ringloop (which watch children by pidfd) accept it",
    "test_sockets.TestRLUVSockets.test_pseudosocket":
        UVLOOP_API + "uvloop's PseudoSocket (its repr names AF_UNIX, its own error "
        "messages); get_extra_info('socket') is asyncio's TransportSocket on "
        "ringloop, as on asyncio's loop",
    "test_sockets.TestRLUVSockets.test_socket_sync_remove":
        UVLOOP_API + "loop._get_backend_id() (libuv's epoll fd)",
    "test_sockets.TestRLUVSockets.test_socket_close_loop_and_close": SOCK_IOREF,
    "test_tcp.Test_RLUV_TCP.test_create_server_buffered_1": DUCK_BUFFERED,
    "test_tcp.Test_RLUV_TCP.test_create_server_buffered_2": DUCK_BUFFERED,
    "test_unix.Test_RLUV_Unix.test_epollhup": DUCK_BUFFERED,
    "test_tcp.Test_RLUV_TCP.test_tcp_handle_abort_in_connection_made":
        UVLOOP_ONLY + "after abort() in connection_made(), uvloop has no socket for "
        "get_extra_info('socket') and returns None; asyncio and ringloop return "
        "the (closed) socket, as the test's own comment says",
    "test_udp.Test_RLUV_UDP.test_udp_sendto_dns":
        UVLOOP_ONLY + "uvloop's sendto() refuses a host name ('DNS lookup' "
        "ValueError); asyncio and ringloop pass it to socket.sendto(), which "
        "resolves it",
}

NOT_ON_RINGLOOP = {
    "test_libuv_api.Test_RLUV_libuv.*":
        "uvloop.loop.libuv_get_loop_t_ptr()/libuv_get_version(): uvloop's C API; "
        "given a ringloop loop, libuv_get_loop_t_ptr() reads a pointer out of an "
        "object that is not a uvloop.Loop, and 'passes'",
    "test_cython.TestCythonIntegration_RLUV.*":
        "uvloop.loop._test_coroutine_1: a coroutine compiled into uvloop (Cython), "
        "no loop involved",
    "test_dealloc.TestDealloc_RLUV.*":
        "runs uvloop.new_event_loop() in a child process and checks uvloop's "
        "__dealloc__ methods print nothing",
    "test_base.TestBaseRLUV.test_default_exc_handler_broken":
        "subclasses uvloop.Loop and runs that loop",
}

EXPECTED_HANGS = {
    "test_sockets.TestRLUVSockets.test_socket_connect_and_close":
        SOCK_IOREF + " (closed during sock_connect(): on epoll the connect never "
        "completes, as on asyncio's loop; on io_uring it fails with EBADF)",
}

EXPECTED_FAILURES_BY_PYTHON = {
    "3.13+": {
        "test_udp.Test_RLUV_UDP.test_create_datagram_endpoint_wrong_sock":
            UVLOOP_ONLY + "matches uvloop's message 'A UDP Socket was expected'; "
            "asyncio says 'A datagram socket was expected' from 3.13 on, and so "
            "does ringloop there (the same ValueError)",
    },
    "3.14+": {
        "test_base.TestBaseRL.test_set_task_name":
            UVLOOP_ONLY + "uvloop's create_task() calls task.set_name(name) after the "
            "task factory; asyncio passes name= to the factory from 3.14 on "
            "(asyncio/base_events.py), and so does ringloop there; the test's factory "
            "passes it on to the Task constructor, so its set_name() override never runs",
    },
}

EXPECTED_FAILURES_BY_BACKEND = {
    # On io_uring the waiting sock_recv is an IORING_OP_RECV, which holds the file
    # until it completes: the close is deferred as with uvloop, and these pass.
    "epoll": {
        "test_sockets.TestRLUVSockets.test_socket_recv_and_close": SOCK_IOREF,
        "test_sockets.TestRLUVSockets.test_socket_recv_into_and_close": SOCK_IOREF,
    },
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
