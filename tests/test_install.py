"""``python -m claude_kernel install``: where the kernelspec goes and what its kernel.json says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from claude_kernel.install import main


def _installed(prefix: Path, name: str = "claude") -> dict[str, object]:
    spec: dict[str, object] = json.loads((prefix / "share/jupyter/kernels" / name / "kernel.json").read_text())
    return spec


def test_prefix_install_runs_this_interpreter_with_the_logos(tmp_path: Path) -> None:
    main(["--prefix", str(tmp_path)])
    spec = _installed(tmp_path)
    assert spec["argv"] == [sys.executable, "-m", "claude_kernel", "-f", "{connection_file}"]
    assert spec["display_name"] == "Claude" and spec["interrupt_mode"] == "signal"
    assert "env" not in spec
    assert {p.name for p in (tmp_path / "share/jupyter/kernels/claude").glob("logo-*.png")} == {
        "logo-32x32.png",
        "logo-64x64.png",
    }


def test_env_interrupt_mode_and_names_are_written(tmp_path: Path) -> None:
    main(
        [
            "--prefix",
            str(tmp_path),
            "--env",
            "ANTHROPIC_BASE_URL=http://127.0.0.1:9/",
            "--env",
            "CLAUDE_CONFIG_DIR=/data/claude=config",  # only the first "=" separates
            "--env",
            "EMPTY=",
            "--interrupt-mode",
            "message",
            "--name",
            "claude-remote",
            "--display-name",
            "Claude (remote)",
        ]
    )
    spec = _installed(tmp_path, "claude-remote")
    assert spec["env"] == {
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/",
        "CLAUDE_CONFIG_DIR": "/data/claude=config",
        "EMPTY": "",
    }
    assert spec["interrupt_mode"] == "message" and spec["display_name"] == "Claude (remote)"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--env", "NOEQUALS"], "expected NAME=VALUE"),
        (["--env", "1BAD=x"], "expected NAME=VALUE"),
        (["--interrupt-mode", "loud"], "invalid choice"),
        (["--user", "--prefix", "/tmp/x"], "not allowed with argument"),
    ],
)
def test_bad_arguments_say_what_is_wrong(
    args: list[str], complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--prefix", str(tmp_path), *args] if "--prefix" not in args else args)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err
    assert not (tmp_path / "share").exists()  # nothing half-installed


def test_module_entry_point_installs(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "claude_kernel", "install", "--prefix", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Installed the Claude kernelspec in" in done.stdout
    assert _installed(tmp_path)["argv"][0] == sys.executable  # type: ignore[index]
