"""claude-kernel: a Jupyter kernel and an IPython magic for conversations with Claude Code."""

__version__ = "0.1.0"


def load_ipython_extension(shell: object) -> None:
    """``%load_ext claude_kernel`` registers ``%%claude`` (imported here lazily: the kernel does not need it)."""
    from .magic import load_ipython_extension as load

    load(shell)
