"""The Python parts of ringloop.Loop, and their contract with the compiled CoreLoop.

ringloop.Loop is CoreLoop (compiled: ringloop/_loop.pxd) plus the parts below, each
a mixin with one job, plus asyncio.AbstractEventLoop. The contract, in one place:

* Each part subclasses LoopPart and has one _init_part() and one _close_part()
  (LoopPart's do nothing). Loop.__init__ calls every part's _init_part() after
  CoreLoop.__init__, in LOOP_PARTS order; CoreLoop.close() calls _close_parts(),
  which calls every part's _close_part() in the same order, before the loop drops its
  queues and closes its kernel objects. A part's state is made in its _init_part()
  and nowhere else; parts do not chain to each other (no super()).
* CORE_HOOKS are the methods CoreLoop calls on the loop that only the parts define.
  Loop checks at class creation that it has every one of them.
"""

# What CoreLoop calls on self that a part defines, and when.
CORE_HOOKS = {
    "_close_parts": "close(): end the parts, before the queues and kernel objects go",
    "_set_coroutine_origin_tracking": "run_forever(): debug mode's coroutine origin "
                                      "tracking on while the loop runs, off after",
    "_asyncgen_firstiter_hook": "run_forever(): installed with sys.set_asyncgen_hooks",
    "_asyncgen_finalizer_hook": "run_forever(): installed with sys.set_asyncgen_hooks",
    "call_exception_handler": "handles, transports and listeners report errors to it",
}


class LoopPart:
    """Base of the parts of ringloop.Loop (see the module docstring)."""

    def _init_part(self):
        """Make this part's state on a new loop."""

    def _close_part(self):
        """Release what this part holds, from loop.close()."""
