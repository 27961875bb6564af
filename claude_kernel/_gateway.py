"""What remote kernel launchers (Enterprise Gateway, JupyterHub's spawners) tell a kernel."""

from __future__ import annotations

import os

__all__ = ["default_cwd"]


def default_cwd() -> str:
    """The CLI's working directory when none is given: the notebook's folder if the launcher says.

    Gateways pass the notebook's folder as ``KERNEL_WORKING_DIR`` but start remote kernels in a
    login or gateway directory. The folder is used only when it exists on this host: a kernel on
    another machine may not share the notebook server's file system.
    """
    folder = os.path.expanduser(os.environ.get("KERNEL_WORKING_DIR", ""))
    return os.path.abspath(folder) if folder and os.path.isdir(folder) else os.getcwd()
