"""Expected failures of CPython's test.test_asyncio on ringloop.

Keys are test ids relative to ``test.test_asyncio`` (``module.Class.test``);
a key may be a glob (``*``, ``?``, ``[...]``) -- ``Ringloop*EventLoopTests`` is
the class the runner puts in place of the selector-loop classes on either
backend (RingloopIoUringEventLoopTests, RingloopEpollEventLoopTests) in
test_events, test_sock_lowlevel and test_sendfile; test_server, test_buffered_proto and test_sslproto get
``Ringloop*StartServerTests``, ``Ringloop*BufferedProtocolTests`` and
``Ringloop*StartTLSTests``.  Values are the reason.

A listed test that passes is an *unexpected success* and fails the run, so an
entry must go as soon as what it waits for lands.  A listed entry that matched
nothing in a full run is reported as a warning (stale entry).

Sections (all are dicts pattern -> reason):

EXPECTED_FAILURES            fair on every Python and backend: a test of a
                             private asyncio attribute or of the stdlib loop's
                             internals.
EXPECTED_FAILURES_BY_PYTHON  {"3.12": {...}, "3.14+": {...}}: only on that Python;
                             "3.14+": on that one and every later one.
EXPECTED_FAILURES_BY_BACKEND {"io_uring": {...}, "epoll": {...}}.
ENVIRONMENT(_BY_PYTHON)      fails on the stdlib loop too on this machine; applies
                             to the baseline as well.
EXPECTED_HANGS(_BY_PYTHON)   tests that would hang on ringloop: not run, counted
                             as expected failures.
TESTLOOP_KEEP                only for the diagnostic --testloop-as-real run
                             (TestLoop replaced by the loop under test): tests
                             that keep their TestLoop there, with the reason.
KNOWN_BUGS(_BY_PYTHON, _BY_BACKEND)
                             ringloop bugs (reason starts with "BUG:").  Not fair:
                             listed only so the runner stays usable while the core
                             is fixed.  These sections must end up empty.
"""

PRIVATE = "tests a private asyncio attribute: "
SELECTOR_SENDFILE = (PRIVATE + "calls loop._sock_sendfile_native_impl and reads "
                     "loop._selector (the selector loop's sendfile internals)")

ENVIRONMENT = {
}

ENVIRONMENT_BY_PYTHON = {
}

EXPECTED_FAILURES = {
    # -- test_events, loop-core class: create_server() internals.
    "test_events.Ringloop*EventLoopTests.test_create_server_multiple_hosts_ipv4":
        PRIVATE + "patches asyncio.base_events.socket (the socket module as "
        "base_events' create_server sees it) and mocks loop._start_serving",
    "test_events.Ringloop*EventLoopTests.test_create_server_multiple_hosts_ipv6":
        PRIVATE + "patches asyncio.base_events.socket (the socket module as "
        "base_events' create_server sees it) and mocks loop._start_serving",
    # -- networking modules.
    # -- test_subprocess / test_unix_events: the stdlib loop's child watchers and
    # sendfile internals.
    "test_subprocess.GenericWatcherTests.test_create_subprocess_fails_with_inactive_watcher":
        PRIVATE + "asserts that subprocess creation enters the policy's child "
        "watcher (asyncio.get_child_watcher()) and refuses an inactive one; "
        "ringloop watches its children itself (pidfd_open(2)) and never asks "
        "the policy's watcher, by design",
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_not_available":
        PRIVATE + "patches asyncio.unix_events.os (the os module as the stdlib "
        "loop's _sock_sendfile_native sees it)",
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_blocking_error":
        SELECTOR_SENDFILE,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_cancel1":
        SELECTOR_SENDFILE,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_cancel2":
        SELECTOR_SENDFILE,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_exception":
        SELECTOR_SENDFILE,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_os_error_first_call":
        SELECTOR_SENDFILE,
    "test_unix_events.SelectorEventLoopUnixSockSendfileTests.test_sock_sendfile_os_error_next_call":
        SELECTOR_SENDFILE,
    # -- test_events, private attributes.
    "test_events.Ringloop*EventLoopTests.test_timeout_rounding":
        PRIVATE + "wraps loop._run_once and reads loop._clock_resolution and "
        "loop._selector (BaseEventLoop internals; ringloop's run_once is C code)",
}

THREADSAFE_HANDLE = (PRIVATE + "asserts isinstance(handle, asyncio.events._ThreadSafeHandle), "
                     "a private class; ringloop's handles are its compiled Handle. What the "
                     "test checks besides (a cancel() or cancelled() from another thread "
                     "waits for the running callback) ringloop does too: "
                     "tests/test_callbacks.py::test_threadsafe_handle_*")
LOOP_WATCHER = (PRIVATE + "reads loop._watcher, the stdlib loop's child watcher (3.14); "
                "ringloop watches its children by pidfd itself")

SERVER_ATTACH_312 = (PRIVATE + "calls Server._attach() and _detach() with no argument "
                     "(3.12's private signature: a bare count of connections); ringloop's "
                     "Server keeps the transports themselves, as asyncio's does from 3.13 on "
                     "(_attach(transport), for close_clients())")

EXPECTED_FAILURES_BY_PYTHON = {
    "3.12": {
        "test_server.TestServer2.test_wait_closed_basic": SERVER_ATTACH_312,
        "test_server.TestServer2.test_wait_closed_race": SERVER_ATTACH_312,
    },
    "3.13+": {
        "test_ssl.TestSSL.test_remote_shutdown_receives_trailing_data_on_slow_socket":
            PRIVATE + "patches write() on the socket transport instance "
            "(mock.patch.object); ringloop's transport is a compiled type whose "
            "methods cannot be replaced per instance",
        "test_sslproto.SslProtoHandshakeTests.test_connection_lost_when_busy":
            PRIVATE + "calls loop._make_socket_transport() with a Mock as the socket; "
            "ringloop's transport needs a real socket (its fd, family and type)",
    },
    "3.14+": {
        "test_events.Ringloop*EventLoopTests.test_call_soon_threadsafe_handle_block_check_cancelled":
            THREADSAFE_HANDLE,
        "test_events.Ringloop*EventLoopTests.test_call_soon_threadsafe_handle_block_cancellation":
            THREADSAFE_HANDLE,
        "test_events.Ringloop*EventLoopTests.test_call_soon_threadsafe_handle_cancel_other_thread":
            THREADSAFE_HANDLE,
        "test_subprocess.SubprocessPidfdWatcherTests.test_watcher_implementation": LOOP_WATCHER,
        "test_subprocess.SubprocessThreadedWatcherTests.test_watcher_implementation": LOOP_WATCHER,
        "test_subprocess.SubprocessThreadedWatcherTests.test_pid_not_reaped_before_exit_published":
            LOOP_WATCHER,
        "test_sslproto.Ringloop*StartTLSTests.test_create_connection_ssl_failed_certificate_no_cycles":
            PRIVATE + "records transports by patching asyncio.sslproto.SSLProtocol."
            "connection_made; ringloop's TLS layer is its compiled SSLProtocol, so "
            "nothing is recorded and the test sees no transport",
    },
}

EXPECTED_FAILURES_BY_BACKEND = {
}

# --testloop-as-real only: tests that keep their test_utils.TestLoop there,
# because they drive it through BaseEventLoop internals that a real loop of
# another class lacks.  (When they ran on ringloop anyway, they failed with an
# AttributeError, and the futures they left behind were logged as "exception
# never retrieved" into a later test's mocked logger.)
TESTLOOP_KEEP = {
    "test_tasks.*.test_log_destroyed_pending_task":
        PRIVATE + "calls loop._run_once() (BaseEventLoop internal)",
    "test_tasks.*GatherTests.test_*":
        PRIVATE + "GatherTestsBase._run_loop() polls loop._ready (BaseEventLoop's "
        "ready deque)",
    "test_unix_events.Unix*PipeTransportTests.test_*":
        PRIVATE + "builds asyncio's own _UnixReadPipeTransport/_UnixWritePipeTransport, "
        "which call loop._add_reader/_remove_reader (BaseSelectorEventLoop internals)",
}

# Tests that would hang on ringloop until --test-timeout: not run, counted as
# expected failures (never silently skipped), with the reason.
EXPECTED_HANGS_BY_PYTHON = {
    "3.14+": {
        "test_unix_events.PidfdChildWatcherTests.test_pidfd_closed_when_waitpid_raises":
            PRIVATE + "patches os.waitpid to raise and loops until the stdlib's pidfd "
            "watcher has called it; ringloop reaps with waitid(P_PIDFD) and never calls "
            "waitpid, so the test's `while not m.called` never ends",
    },
}

KNOWN_BUGS = {
}

KNOWN_BUGS_BY_PYTHON = {
}

KNOWN_BUGS_BY_BACKEND = {
}
