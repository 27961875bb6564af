"""Protocol conformance of the Claude kernel, checked by jupyter_kernel_test against the message schemas."""

from __future__ import annotations

import os
import tempfile
import unittest

import jupyter_kernel_test

from claude_kernel.install import install


class ClaudeKernelConformance(jupyter_kernel_test.KernelTests):
    kernel_name = "claude"
    language_name = "markdown"
    file_extension = ".md"

    # Magics, their fixed arguments, and help: none of these depend on the CLI having answered.
    completion_samples = [  # noqa: RUF012 - the base class declares them so
        {"text": "%mo", "matches": {"%model"}},
        {"text": "%permissions headless ", "matches": {"deny", "allow"}},
        {"text": "%permissions acc", "matches": {"acceptEdits"}},
        {"text": "%help re", "matches": {"resume", "rerun"}},
        {"text": "no magic here", "matches": set()},
    ]
    code_inspect_sample = "%permissions"

    @classmethod
    def setUpClass(cls) -> None:
        cls._prefix = tempfile.TemporaryDirectory()
        install(prefix=cls._prefix.name)
        cls._previous_path = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.path.join(cls._prefix.name, "share", "jupyter")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        if cls._previous_path is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = cls._previous_path
        cls._prefix.cleanup()


if __name__ == "__main__":
    unittest.main()
