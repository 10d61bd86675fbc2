"""`pip install bindings/python` into a fresh venv (no network: Debian's
cffi and setuptools come from the system site packages), version
metadata, and type information an installed package's users see."""
import os
import pathlib
import shutil
import subprocess

import pytest

import aetherium

HERE = pathlib.Path(__file__).resolve().parents[1]  # bindings/python
PY = "/usr/bin/python3"


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, "%s failed (%d):\n%s\n%s" % (
        " ".join(map(str, cmd)), r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return r


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    for mod in ("venv", "pip", "setuptools", "mypy"):
        r = subprocess.run([PY, "-c", "import " + mod], capture_output=True)
        if r.returncode != 0:
            pytest.fail("%s lacks the module %s: run scripts/setup.sh "
                        "(python3-venv, python3-pip, python3-setuptools, "
                        "python3-mypy)" % (PY, mod), pytrace=False)
    tmp = tmp_path_factory.mktemp("pkg")
    # pip builds in the source tree (build/, *.egg-info): build a copy
    src = tmp / "src"
    shutil.copytree(HERE, src, ignore=shutil.ignore_patterns(
        "tests", "build", "*.egg-info", "__pycache__", "_install.py"))
    env_dir = tmp / "venv"
    _run([PY, "-m", "venv", "--system-site-packages", str(env_dir)])
    _run([str(env_dir / "bin" / "pip"), "install", "--no-index",
          "--no-build-isolation", "--no-deps", str(src)])
    yield env_dir


def _venv_python(venv, code, **kw):
    env = dict(os.environ, AETH_LIBRARY=aetherium.LIBRARY_PATH)
    env.pop("PYTHONPATH", None)  # the installed copy, not this checkout
    return _run([str(venv / "bin" / "python"), "-c", code], env=env,
                cwd=str(venv), **kw)


def test_installed_package_imports_and_has_version_metadata(venv):
    r = _venv_python(venv, (
        "import importlib.metadata as m, aetherium, json; print(json.dumps(["
        "m.version('aetherium'), aetherium.__version__, aetherium.version(),"
        " aetherium.__file__, m.requires('aetherium')]))"))
    import json
    meta, pkg, lib, path, requires = json.loads(r.stdout)
    assert meta == pkg == lib == aetherium.version()
    assert path.startswith(str(venv)), path
    assert any(req.startswith("cffi") for req in requires), requires


def test_installed_package_ships_its_type_information(venv):
    """py.typed is installed: mypy checks a user's code against the
    binding's hints (a wrong type is reported, a right one passes)."""
    site = _venv_python(venv, "import aetherium, os; "
                              "print(os.path.dirname(aetherium.__file__))").stdout.strip()
    assert os.path.isfile(os.path.join(site, "py.typed"))
    user = venv / "user_code.py"
    user.write_text(
        "import aetherium\n"
        "def f(vm: aetherium.VM) -> int:\n"
        "    r = vm.exec(['true'])\n"
        "    return r.exit_code\n"
        "x: int = aetherium.version()\n")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "mypy", "--strict",
                        "--no-incremental", "--cache-dir", os.devnull, str(user)],
                       capture_output=True, text=True, env=env, cwd=str(venv))
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'user_code.py:5: error: Incompatible types in assignment' in r.stdout, r.stdout
    assert "user_code.py:4" not in r.stdout, r.stdout


def test_version_follows_the_headers():
    from aetherium import _cdef
    assert _cdef.VERSION == _cdef.STR_CONSTANTS["AETH_VERSION_STRING"]
    assert aetherium.__version__ == _cdef.VERSION
    want = os.environ.get("AETH_PROJECT_VERSION")
    if want:  # from meson: the project's version
        assert _cdef.VERSION == want
