"""python -m ringloop run / doctor."""
import json
import os
import textwrap

import pytest

pytestmark = [pytest.mark.ringloop_only("ringloop CLI"), pytest.mark.timeout(60)]

SCRIPT = textwrap.dedent("""
    import asyncio, json, sys

    async def main():
        loop = asyncio.get_running_loop()
        print(json.dumps({
            "module": type(loop).__module__,
            "type": type(loop).__name__,
            "backend": getattr(loop, "backend_name", None),
            "argv": sys.argv,
            "name": __name__,
        }))

    asyncio.run(main())
""")


def _last_json(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def test_run_script(py, tmp_path):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    r = py.run(None, "run", str(script), "arg1", "--flag", module="ringloop")
    assert r.returncode == 0, r.stderr
    out = _last_json(r.stdout)
    assert out["module"].split(".")[0] == "ringloop"
    assert out["argv"] == [str(script), "arg1", "--flag"]
    assert out["name"] == "__main__"


@pytest.mark.parametrize("backend", ["io_uring", "epoll"])
def test_run_script_respects_backend_env(py, tmp_path, backend):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    r = py.run(None, "run", str(script), module="ringloop",
               env={"RINGLOOP_BACKEND": backend})
    assert r.returncode == 0, r.stderr
    assert _last_json(r.stdout)["backend"] == backend


def test_run_module(py, tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "app.py").write_text(SCRIPT)
    r = py.run(None, "run", "-m", "mypkg.app", "x", "y", module="ringloop",
               env={"PYTHONPATH": os.pathsep.join(
                   p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)})
    assert r.returncode == 0, r.stderr
    out = _last_json(r.stdout)
    assert out["module"].split(".")[0] == "ringloop"
    assert out["argv"][1:] == ["x", "y"]
    assert out["argv"][0].endswith(os.path.join("mypkg", "app.py"))
    assert out["name"] == "__main__"


def test_run_script_exit_code(py, tmp_path):
    script = tmp_path / "exits.py"
    script.write_text("import asyncio, sys\n"
                      "async def main():\n    sys.exit(3)\n"
                      "asyncio.run(main())\n")
    r = py.run(None, "run", str(script), module="ringloop")
    assert r.returncode == 3, r.stderr


def test_run_script_exception(py, tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import asyncio\n"
                      "async def main():\n    raise ZeroDivisionError('in script')\n"
                      "asyncio.run(main())\n")
    r = py.run(None, "run", str(script), module="ringloop")
    assert r.returncode != 0
    assert "ZeroDivisionError" in r.stderr and "in script" in r.stderr


def test_run_missing_script(py, tmp_path):
    r = py.run(None, "run", str(tmp_path / "nope.py"), module="ringloop")
    assert r.returncode != 0


def test_doctor(py):
    info = py.run("import json, ringloop; print(json.dumps(ringloop.backend_info()))")
    assert info.returncode == 0, info.stderr
    backend = _last_json(info.stdout)["backend"]
    r = py.run(None, "doctor", module="ringloop")
    assert r.returncode == 0, r.stderr
    assert backend in r.stdout
    assert "io_uring" in r.stdout


def test_doctor_with_epoll_forced(py):
    r = py.run(None, "doctor", module="ringloop", env={"RINGLOOP_BACKEND": "epoll"})
    assert r.returncode == 0, r.stderr
    assert "epoll" in r.stdout


def test_unknown_command_is_usage_error(py):
    r = py.run(None, "no-such-command", module="ringloop")
    assert r.returncode != 0
