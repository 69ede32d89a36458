"""CLI conventions shared by every command."""

import subprocess
import sys

from demokit.cli.app import main


def test_unknown_option_is_one_error_line_exit_2(capsys):
    rc = main(["--definitely-not-an-option"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "Traceback" not in err


def test_unknown_command_is_one_error_line_exit_2(capsys):
    rc = main(["frobnicate"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_help_exits_zero(capsys):
    assert main(["--help"]) == 0
    assert "demokit" in capsys.readouterr().out.lower()


def test_cli_py_and_console_script_run_the_same_app(repo_root):
    out = subprocess.run([sys.executable, f"{repo_root}/cli.py", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Usage" in out.stdout
