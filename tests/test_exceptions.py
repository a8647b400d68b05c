"""Exception handler API and what happens to exceptions raised in callbacks."""
import asyncio
import logging

import pytest


class Boom(Exception):
    pass


def test_exception_handler_get_set(loop):
    assert loop.get_exception_handler() is None

    def handler(lp, ctx):
        pass

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


@pytest.mark.parametrize("bad", [1, "handler", object()])
def test_exception_handler_not_callable(loop, bad):
    with pytest.raises(TypeError):
        loop.set_exception_handler(bad)
    assert loop.get_exception_handler() is None


def test_exception_in_callback_goes_to_handler_and_loop_continues(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append((lp, ctx)))
    err = Boom("in callback")

    def bad():
        raise err

    got = []
    h = loop.call_soon(bad)
    loop.call_soon(got.append, "after")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == ["after"]
    assert len(contexts) == 1
    lp, ctx = contexts[0]
    assert lp is loop
    assert {"message", "exception", "handle"} <= set(ctx)
    assert ctx["exception"] is err
    assert ctx["handle"] is h
    assert ctx["message"].startswith("Exception in callback")


def test_exception_in_timer_callback(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        raise Boom("timer")

    h = loop.call_later(0.001, bad)
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], Boom)
    assert contexts[0]["handle"] is h


def test_base_exception_subclass_goes_to_handler(loop):
    class MyBase(BaseException):
        pass

    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def bad():
        raise MyBase()

    loop.call_soon(bad)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert isinstance(contexts[0]["exception"], MyBase)


def test_exception_in_callback_without_handler_is_logged(loop, caplog):
    def bad():
        raise Boom("logged")

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_soon(bad)
        loop.call_soon(loop.stop)
        loop.run_forever()
    recs = [r for r in caplog.records if r.name == "asyncio"]
    assert len(recs) == 1
    assert recs[0].levelno == logging.ERROR
    assert "Exception in callback" in recs[0].getMessage()
    assert recs[0].exc_info and recs[0].exc_info[0] is Boom


def test_default_exception_handler_logs(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        try:
            raise Boom("x")
        except Boom as e:
            exc = e
        loop.default_exception_handler({"message": "custom message", "exception": exc,
                                        "extra_key": "extra value"})
    recs = [r for r in caplog.records if r.name == "asyncio"]
    assert len(recs) == 1
    msg = recs[0].getMessage()
    assert "custom message" in msg
    assert "extra_key" in msg and "extra value" in msg
    assert recs[0].exc_info[1] is exc


def test_default_exception_handler_without_message(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.default_exception_handler({})
    recs = [r for r in caplog.records if r.name == "asyncio"]
    assert len(recs) == 1
    assert "Unhandled exception in event loop" in recs[0].getMessage()


def test_call_exception_handler_uses_custom_handler(loop, caplog):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    ctx = {"message": "hello", "custom": 1}
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler(ctx)
    assert contexts == [ctx]
    assert not [r for r in caplog.records if r.name == "asyncio"]


def test_call_exception_handler_default(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "via default"})
    recs = [r for r in caplog.records if r.name == "asyncio"]
    assert len(recs) == 1 and "via default" in recs[0].getMessage()


def test_handler_that_raises_is_logged_and_loop_continues(loop, caplog):
    def handler(lp, ctx):
        raise RuntimeError("handler broke")

    loop.set_exception_handler(handler)
    got = []

    def bad():
        raise Boom()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_soon(bad)
        loop.call_soon(got.append, "after")
        loop.call_soon(loop.stop)
        loop.run_forever()
    assert got == ["after"]
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any("Unhandled error in exception handler" in m for m in msgs), msgs


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_keyboardinterrupt_systemexit_propagate(loop, exc_type):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    got = []

    def bad():
        raise exc_type()

    loop.call_soon(bad)
    loop.call_soon(got.append, "queued-after")
    with pytest.raises(exc_type):
        loop.run_forever()
    assert contexts == []
    assert not loop.is_running()
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    # The loop is still usable; nothing queued was lost.
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == ["queued-after"]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_keyboardinterrupt_from_timer_propagates(loop, exc_type):
    def bad():
        raise exc_type()

    loop.call_later(0.001, bad)
    with pytest.raises(exc_type):
        loop.run_forever()
    assert not loop.is_running()


def test_keyboardinterrupt_in_coroutine_propagates_from_run_until_complete(loop):
    async def main():
        await asyncio.sleep(0)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(main())
    assert not loop.is_running()
