"""``python -m claude_kernel install``: register the "Claude" kernelspec with Jupyter."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

__all__ = ["install", "main"]


def _kernelspec_dir() -> Path:
    """The kernelspec files: inside the package when installed from a wheel, else the checkout's."""
    for candidate in (Path(__file__).parent / "kernelspec", Path(__file__).parent.parent / "kernelspec"):
        if (candidate / "kernel.json").exists():
            return candidate
    raise FileNotFoundError("the kernelspec/ folder is missing from this installation")


def install(*, user: bool = False, prefix: str | None = None, name: str = "claude") -> str:
    """Install the kernelspec; ``argv`` points at this interpreter, so the kernel finds this package."""
    with tempfile.TemporaryDirectory() as staging:
        source = _kernelspec_dir()
        spec = json.loads((source / "kernel.json").read_text())
        spec["argv"][0] = sys.executable
        (Path(staging) / "kernel.json").write_text(json.dumps(spec, indent=2))
        for logo in source.glob("logo-*.png"):
            shutil.copy(logo, staging)
        return str(KernelSpecManager().install_kernel_spec(staging, name, user=user, prefix=prefix))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m claude_kernel install", description=__doc__)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (this venv)")
    where.add_argument("--prefix", help="install into this prefix")
    args = parser.parse_args(argv)
    prefix = sys.prefix if args.sys_prefix else args.prefix
    path = install(
        user=args.user or (prefix is None and not args.sys_prefix and sys.prefix == sys.base_prefix), prefix=prefix
    )
    print(f"Installed the Claude kernelspec in {path}")
