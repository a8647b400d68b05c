"""The cold half of ringloop.Loop: everything that does not run per event.

Exception handling, run_until_complete, async generator hooks, the default executor,
DNS, signals and debug-mode bookkeeping, with asyncio's semantics and messages
(asyncio's documentation and base_events/unix_events are the reference).
"""
import asyncio
import concurrent.futures
import errno
import signal
import socket
import sys
import threading
import traceback
import warnings
import weakref
from asyncio import base_events, constants, futures, tasks

# asyncio.timeouts exists from Python 3.11 on.
from asyncio import timeouts

from ringloop._parts import LoopPart
from ringloop._coroutine_check import is_coroutine_or_coroutine_function


def _stop_loop_when_done(fut):
    # run_until_complete's done-callback. A SystemExit/KeyboardInterrupt result means
    # run_forever already unwound with it (bpo-22429): nothing to stop.
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            return
    futures._get_loop(fut).stop()


def _ignore_signal(signum, frame):
    """Python-level handler for signals the loop handles through the wakeup fd."""


class ColdPathMixin(LoopPart):
    """Python methods of ringloop.Loop; the hot ones live in ringloop._core.CoreLoop."""

    def _timer_handle_cancelled(self, handle):
        # asyncio.TimerHandle.cancel() reports here. The loop's own timers are
        # ringloop TimerHandles that count their cancellations themselves; an
        # asyncio.TimerHandle made by hand for this loop is not in its heap, so there
        # is nothing to update (AbstractEventLoop's version raises NotImplementedError).
        pass

    def _init_part(self):
        self._exception_handler = None
        self._asyncgens = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._default_executor = None
        self._executor_shutdown_called = False
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth = None
        self._signal_handlers = {}
        self._signal_socks = None

    def __repr__(self):
        return (f"<{type(self).__name__} backend={self.backend_name} running={self.is_running()} "
                f"closed={self.is_closed()} debug={self.get_debug()}>")

    def __del__(self, _warn=warnings.warn):
        if not self.is_closed() and hasattr(self, "_signal_handlers"):
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    # ---- running ----------------------------------------------------------------

    def run_until_complete(self, future):
        if self.is_closed():
            raise RuntimeError('Event loop is closed')
        if self.is_running():
            raise RuntimeError('This event loop is already running')
        if asyncio.events._get_running_loop() is not None:
            raise RuntimeError('Cannot run the event loop while another loop is running')
        new_task = not futures.isfuture(future)
        future = tasks.ensure_future(future, loop=self)
        if new_task:
            # The caller cannot see this task: do not log it as destroyed-pending.
            future._log_destroy_pending = False
        future.add_done_callback(_stop_loop_when_done)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                future.exception()   # retrieved: the error propagates from here
            raise
        finally:
            future.remove_done_callback(_stop_loop_when_done)
        if not future.done():
            raise RuntimeError('Event loop stopped before Future completed.')
        return future.result()

    def _close_part(self):
        if self.get_debug():
            base_events.logger.debug("Close %r", self)
        if sys.is_finalizing():
            if self._signal_handlers:
                warnings.warn(f"Closing the loop {self!r} on interpreter shutdown "
                              f"stage, skipping signal handlers removal",
                              ResourceWarning, source=self)
        else:
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        self._close_signal_socks()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)

    # ---- debug --------------------------------------------------------------------

    def set_debug(self, enabled):
        self._debug = enabled
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled):
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(constants.DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(self._coroutine_origin_tracking_saved_depth)
        self._coroutine_origin_tracking_enabled = enabled

    # ---- exception handling -------------------------------------------------------

    def get_exception_handler(self):
        return self._exception_handler

    def set_exception_handler(self, handler):
        if handler is not None and not callable(handler):
            raise TypeError(f'A callable object or None is expected, got {handler!r}')
        self._exception_handler = handler

    def default_exception_handler(self, context):
        message = context.get('message') or 'Unhandled exception in event loop'
        exception = context.get('exception')
        exc_info = (type(exception), exception, exception.__traceback__) if exception is not None else False
        lines = [message]
        for key in sorted(context):
            if key in {'message', 'exception'}:
                continue
            value = context[key]
            if key == 'source_traceback':
                value = ('Object created at (most recent call last):\n'
                         + ''.join(traceback.format_list(value)).rstrip())
            else:
                value = repr(value)
            lines.append(f'{key}: {value}')
        base_events.logger.error('\n'.join(lines), exc_info=exc_info)

    def call_exception_handler(self, context):
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                # A logging failure must not take the loop down.
                base_events.logger.error('Exception in default exception handler', exc_info=True)
            return
        try:
            run_in = _context_of(context)
            if run_in is not None:
                run_in.run(handler, self, context)
            else:
                handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    'message': 'Unhandled error in exception handler',
                    'exception': exc,
                    'context': context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                base_events.logger.error('Exception in default exception handler while handling an '
                                         'unexpected error in custom exception handler', exc_info=True)

    # ---- async generators ---------------------------------------------------------

    def _asyncgen_finalizer_hook(self, agen):
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen):
        if self._asyncgens_shutdown_called:
            warnings.warn(f"asynchronous generator {agen!r} was scheduled after "
                          f"loop.shutdown_asyncgens() call", ResourceWarning, source=self)
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self):
        """Close every async generator still open (asyncio.Runner calls this)."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await tasks.gather(*[ag.aclose() for ag in closing], return_exceptions=True)
        for result, agen in zip(results, closing):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    'message': f'an error occurred during closing of asynchronous generator {agen!r}',
                    'exception': result,
                    'asyncgen': agen,
                })

    # ---- executor -----------------------------------------------------------------

    def run_in_executor(self, executor, func, *args):
        if self.is_closed():
            raise RuntimeError('Event loop is closed')
        if self.get_debug():
            self._check_callback_for_executor(func)
        if executor is None:
            executor = self._default_executor
            if self._executor_shutdown_called:
                raise RuntimeError('Executor shutdown has been called')
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix='asyncio')
                self._default_executor = executor
        return futures.wrap_future(executor.submit(func, *args), loop=self)

    def _check_callback_for_executor(self, func):
        if is_coroutine_or_coroutine_function(func):
            raise TypeError("coroutines cannot be used with run_in_executor()")
        if not callable(func):
            raise TypeError(f'a callable object was expected by run_in_executor(), got {func!r}')

    def set_default_executor(self, executor):
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError('executor must be ThreadPoolExecutor')
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout=None):
        """Join the default executor's threads without blocking the loop."""
        self._executor_shutdown_called = True
        if self._default_executor is None:
            return
        future = self.create_future()
        thread = threading.Thread(target=self._join_default_executor, args=(future,))
        thread.start()
        try:
            async with timeouts.timeout(timeout):
                await future
        except TimeoutError:
            warnings.warn("The executor did not finishing joining "
                          f"its threads within {timeout} seconds.", RuntimeWarning, stacklevel=2)
            self._default_executor.shutdown(wait=False)
        else:
            thread.join()

    def _join_default_executor(self, future):
        try:
            self._default_executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(futures._set_result_unless_cancelled, future, None)
        except Exception as ex:
            if not self.is_closed() and not future.cancelled():
                self.call_soon_threadsafe(future.set_exception, ex)

    # ---- DNS ----------------------------------------------------------------------

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        if self.is_closed():
            raise RuntimeError('Event loop is closed')
        resolved = _resolve_numeric(host, port, family, type, proto, flags)
        if resolved is not None:
            return resolved
        return await self.run_in_executor(None, socket.getaddrinfo, host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        if self.is_closed():
            raise RuntimeError('Event loop is closed')
        numeric = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        if flags & numeric == numeric:
            # Both parts numeric: getnameinfo(3) only formats, no lookup can block.
            return socket.getnameinfo(sockaddr, flags)
        return await self.run_in_executor(None, socket.getnameinfo, sockaddr, flags)

    # ---- signals ------------------------------------------------------------------

    def _check_signal(self, sig):
        if not isinstance(sig, int):
            raise TypeError(f'sig must be an int, not {sig!r}')
        if sig not in signal.valid_signals():
            raise ValueError(f'invalid signal number {sig}')

    def _open_signal_socks(self):
        # Python's C-level signal handler writes each signal number to this socket
        # (signal.set_wakeup_fd); the loop reads them and runs the handlers.
        if self._signal_socks is None:
            rsock, wsock = socket.socketpair()
            rsock.setblocking(False)
            wsock.setblocking(False)
            self._signal_socks = (rsock, wsock)
            self.add_reader(rsock.fileno(), self._read_signals)
        return self._signal_socks

    def _close_signal_socks(self):
        if self._signal_socks is not None:
            rsock, wsock = self._signal_socks
            self._signal_socks = None
            self.remove_reader(rsock.fileno())
            rsock.close()
            wsock.close()

    def _read_signals(self):
        rsock = self._signal_socks[0]
        while True:
            try:
                data = rsock.recv(4096)
            except InterruptedError:
                continue
            except BlockingIOError:
                return
            if not data:
                return
            for signum in data:
                handle = self._signal_handlers.get(signum)
                if handle is None:
                    continue
                if handle.cancelled():
                    self.remove_signal_handler(signum)
                else:
                    self._add_callback(handle)

    def add_signal_handler(self, sig, callback, *args):
        if is_coroutine_or_coroutine_function(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        if self.is_closed():
            raise RuntimeError('Event loop is closed')
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError('set_wakeup_fd only works in main thread of the main interpreter')
        wsock = self._open_signal_socks()[1]
        try:
            signal.set_wakeup_fd(wsock.fileno(), warn_on_full_buffer=False)
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc))
        from ringloop._core import Handle
        self._signal_handlers[sig] = Handle(callback, args, self, None)
        try:
            signal.signal(sig, _ignore_signal)
            # Restart interrupted syscalls: the wakeup fd, not EINTR, tells the loop.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    base_events.logger.info('set_wakeup_fd(-1) failed: %s', nexc)
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f'sig {sig:d} cannot be caught')
            raise

    def remove_signal_handler(self, sig):
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f'sig {sig:d} cannot be caught')
            raise
        if not self._signal_handlers:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                base_events.logger.info('set_wakeup_fd(-1) failed: %s', exc)
        return True


def _context_of(report):
    """The contextvars context a custom exception handler runs in: that of the task,
    future or handle the report is about (asyncio does this from Python 3.12, gh-96704)."""
    for key in ("task", "future", "handle"):
        thing = report.get(key)
        if thing is not None:
            get_context = getattr(thing, "get_context", None)
            ctx = get_context() if get_context is not None else None
            return ctx if hasattr(ctx, "run") else None
    return None


def _resolve_numeric(host, port, family, type, proto, flags):
    """getaddrinfo without a thread when host and port are numeric (or host is None).

    AI_NUMERICHOST|AI_NUMERICSERV make getaddrinfo(3) parse only, never query a
    resolver, so it cannot block. Anything else returns None: use the executor.
    """
    if isinstance(port, (bytes, str)):
        try:
            port = int(port)
        except ValueError:
            return None
    if port is not None and not isinstance(port, int):
        return None
    if host is not None and not isinstance(host, (str, bytes)):
        return None
    try:
        return socket.getaddrinfo(host, port, family, type, proto,
                                  flags | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
    except (socket.gaierror, UnicodeError):
        return None
