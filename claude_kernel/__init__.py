"""claude-kernel: a Jupyter kernel and an IPython magic for conversations with Claude Code."""

__version__ = "0.1.0"
