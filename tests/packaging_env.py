"""Fresh virtualenvs built the way users build them, once per test run (they take minutes).

Shared by the packaging and gateway tests: each builder is cached on the run's base temporary
folder, so whichever test comes first builds and the other reuses.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GATEWAY_VERSION = "3.3.0"
_NODE_TOOLS = frozenset({"node", "nodejs", "npm", "npx", "corepack"})


def _run(*argv: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _venv(path: Path, *requirements: str | Path, python: str | Path = sys.executable) -> Path:
    _run(python, "-m", "venv", path)
    _run(path / "bin/python", "-m", "pip", "install", "--quiet", *requirements)
    return path


@functools.cache
def built_wheel(base: Path) -> Path:
    """The wheel of this checkout, built in an isolated environment as `pip wheel` does."""
    out = base / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", out, REPO)
    (wheel,) = out.glob("claude_kernel-*.whl")
    return wheel


@functools.cache
def kernel_venv(base: Path) -> Path:
    """A new virtualenv with the wheel and its `cli` extra: the pinned CLI from PyPI, no Node."""
    return _venv(base / "kernel-venv", f"{built_wheel(base)}[cli]")


def oldest_python() -> Path | None:
    """A Python 3.10 interpreter, the oldest the package supports: on PATH, or one pyenv built."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    on_path = shutil.which("python3.10")
    for candidate in [*([Path(on_path)] if on_path else []), *sorted(pyenv.glob("3.10.*/bin/python"))]:
        # pyenv puts a shim for every version it knows on PATH; it fails unless that version is selected.
        version = [str(candidate), "-c", "import sys; print(sys.version_info[:2])"]
        probe = subprocess.run(version, capture_output=True, text=True, check=False)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 10)":
            return candidate
    return None


@functools.cache
def oldest_kernel_venv(base: Path, python: Path) -> Path:
    """The wheel and its `cli` extra on Python 3.10, where ipykernel stops at 7.3."""
    return _venv(base / "kernel-venv-3.10", f"{built_wheel(base)}[cli]", python=python)


@functools.cache
def gateway_venv(base: Path) -> Path:
    """Enterprise Gateway in its own virtualenv: it pins jupyter-client<7."""
    return _venv(base / "gateway-venv", f"jupyter_enterprise_gateway=={GATEWAY_VERSION}")


@functools.cache
def gateway_launcher(base: Path) -> Path:
    """The gateway's Python kernel launcher: in its source distribution, not in its wheel."""
    download = base / "gateway-sdist"
    _run(
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
        "--dest", download, f"jupyter_enterprise_gateway=={GATEWAY_VERSION}",
    )  # fmt: skip
    (sdist,) = download.glob("*.tar.gz")
    member = f"jupyter_enterprise_gateway-{GATEWAY_VERSION}/etc/kernel-launchers/python/scripts/launch_ipykernel.py"
    with tarfile.open(sdist) as archive:
        source = archive.extractfile(member)
        assert source is not None
        launcher = base / "launch_ipykernel.py"
        launcher.write_bytes(source.read())
    return launcher


@functools.cache
def nodeless_path(base: Path) -> str:
    """A PATH with every tool of this machine's PATH except Node's (links in one folder)."""
    folder = base / "nodeless-bin"
    folder.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory) or directory.startswith(str(REPO)):
            continue
        for entry in os.scandir(directory):
            target = folder / entry.name
            if entry.name not in _NODE_TOOLS and not target.exists() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(folder)
