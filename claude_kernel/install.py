"""``python -m claude_kernel install``: register the "Claude" kernelspec with Jupyter."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

__all__ = ["install", "main"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _kernelspec_dir() -> Path:
    """The kernelspec files: inside the package in a wheel (see pyproject.toml), else the checkout's."""
    package = Path(__file__).parent
    for candidate in (package / "kernelspec", package.parent / "kernelspec"):
        if (candidate / "kernel.json").exists():
            return candidate
    raise FileNotFoundError(
        f"the kernelspec is missing from this installation (looked in {package / 'kernelspec'}); "
        "reinstall claude-kernel from a wheel or a checkout"
    )


def install(
    *,
    user: bool = False,
    prefix: str | None = None,
    name: str = "claude",
    display_name: str | None = None,
    env: Mapping[str, str] | None = None,
    interrupt_mode: str | None = None,
) -> str:
    """Install the kernelspec; its ``argv`` runs this interpreter, so the kernel finds this package.

    ``env`` is written into kernel.json (Jupyter adds it to the kernel's environment);
    ``interrupt_mode`` is ``signal`` (the default) or ``message`` (for hosts that cannot signal
    the kernel's process). Returns the folder the kernelspec went to.
    """
    source = _kernelspec_dir()
    spec = json.loads((source / "kernel.json").read_text())
    spec["argv"][0] = sys.executable
    if display_name:
        spec["display_name"] = display_name
    if env:
        spec["env"] = {**spec.get("env", {}), **env}
    if interrupt_mode:
        spec["interrupt_mode"] = interrupt_mode
    with tempfile.TemporaryDirectory() as staging:
        (Path(staging) / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        for logo in source.glob("logo-*.png"):
            shutil.copy(logo, staging)
        return str(KernelSpecManager().install_kernel_spec(staging, name, user=user, prefix=prefix))


def _env_pair(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not _ENV_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE with NAME a variable name, got {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m claude_kernel install",
        description="Register the Claude kernelspec with Jupyter. Without --user, --sys-prefix or "
        "--prefix it goes into the active virtualenv, or the user's folder outside one.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument("--sys-prefix", action="store_true", help="install into sys.prefix (this venv)")
    where.add_argument("--prefix", help="install into this prefix (PREFIX/share/jupyter/kernels)")
    parser.add_argument("--name", default="claude", help="the kernelspec's name (default: claude)")
    parser.add_argument("--display-name", help="the name shown in launchers (default: Claude)")
    parser.add_argument(
        "--env",
        action="append",
        type=_env_pair,
        default=[],
        metavar="NAME=VALUE",
        help="set a variable in the kernel's environment (repeatable). Anyone who can read kernel.json "
        "can read it: prefer the kernel host's own configuration for keys",
    )
    parser.add_argument(
        "--interrupt-mode",
        choices=["signal", "message"],
        help="how Jupyter interrupts the kernel (default: signal; message works without signals)",
    )
    args = parser.parse_args(argv)
    in_venv = sys.prefix != sys.base_prefix
    prefix = sys.prefix if args.sys_prefix or (in_venv and not args.user and not args.prefix) else args.prefix
    path = install(
        user=prefix is None,
        prefix=prefix,
        name=args.name,
        display_name=args.display_name,
        env=dict(args.env),
        interrupt_mode=args.interrupt_mode,
    )
    print(f"Installed the Claude kernelspec in {path}")
