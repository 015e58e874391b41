"""Usage errors through the installed ``steward`` console script, as a user meets them.

Every class of bad command line (unknown option, unknown command, a value of the wrong type, a
value out of range, a missing argument, a path that is a folder or does not exist) must end with
exactly one line on stderr, exit code 2, and no traceback; errors the tools raise keep their code
(1, or 2 for invalid_input).  The script is the one pip installed next to this interpreter
(``[project.scripts] steward``), run with this checkout first on PYTHONPATH.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("steward")


def steward(ws: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"the console script {SCRIPT} is missing: install the project (make install)"
    full = {**os.environ, "STEWARD_HOME": str(ws), "PYTHONPATH": str(REPO), **(env or {})}
    for k in ("STEWARD_DATABASE_URL", "STEWARD_LOG_DIR", "STEWARD_DEBUG"):
        full.pop(k, None)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=120, cwd=ws.parent)


def assert_one_line(p: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    lines = p.stderr.strip().splitlines()
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, (p.returncode, p.stderr)
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


USAGE_ERRORS = {
    "unknown option": (["--bogus"], ["No such option: --bogus", "steward --help"]),
    "unknown command": (["usecsae", "list"], ["No such command 'usecsae'", "usecase"]),
    "unknown subcommand option": (["usecase", "list", "--color"], ["No such option: --color",
                                                                   "steward usecase list --help"]),
    "not a number": (["usecase", "add", "x", "--description", "d", "--budget-usd", "abc"], ["--budget-usd"]),
    "below its minimum": (["eval", "--use-case", "x", "--candidate", "y", "--samples", "-1"], ["--samples"]),
    "above its maximum": (["serve", "--port", "99999"], ["--port", "65535"]),
    "not an integer": (["approvals", "approve", "abc"], ["integer"]),
    "missing argument": (["usecase", "add"], ["Missing argument"]),
    "missing option": (["usecase", "add", "x"], ["Missing option", "--description"]),
    "no subcommand": (["usecase"], ["steward usecase", "needs a command"]),
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_error_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    args, needles = USAGE_ERRORS[case]
    line = assert_one_line(steward(tmp_path / "ws", *args), 2, *needles)
    assert line.startswith("error (usage): ")


def test_a_folder_or_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert_one_line(steward(ws, "logs", "import", str(tmp_path)), 2, "is a directory", str(tmp_path))
    missing = tmp_path / "nope.jsonl"
    assert_one_line(steward(ws, "logs", "import", str(missing)), 2, "does not exist", str(missing))


def test_tool_errors_keep_their_code(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert steward(ws, "init").returncode == 0
    line = assert_one_line(steward(ws, "usecase", "show", "nope"), 1, "not_found", "nope")
    assert line.startswith("error (not_found): ")
    assert_one_line(steward(ws, "usecase", "add", "x", "--description", "d", "--weights", "quality"), 2,
                    "invalid_input", "key=value")


def test_no_arguments_prints_help_and_one_error_line(tmp_path: Path) -> None:
    p = steward(tmp_path / "ws")
    assert_one_line(p, 2, "needs a command")
    assert "usecase" in p.stdout  # the help itself, on stdout


def test_help_still_exits_0(tmp_path: Path) -> None:
    p = steward(tmp_path / "ws", "usecase", "add", "--help")
    assert p.returncode == 0 and "--golden-set" in p.stdout and p.stderr == ""


def test_serve_on_a_busy_port_says_so_before_any_banner(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        p = steward(tmp_path / "ws", "serve", "--port", str(port))
    line = assert_one_line(p, 1, "conflict", f"127.0.0.1:{port}", "in use")
    assert "--port" in line
    assert p.stdout == ""  # no "Model Steward on http://..." banner for a server that never ran


def test_an_unexpected_exception_is_one_line_unless_debugging(tmp_path: Path) -> None:
    code = ("import typer\nfrom modelsteward.cli.common import run_cli\n"
            "app = typer.Typer()\n@app.command()\ndef x() -> None:\n    raise RuntimeError('boom\\nsecond line')\n"
            "@app.command()\ndef y() -> None:\n    pass\nrun_cli(app)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("STEWARD_DEBUG", None)
    p = subprocess.run([sys.executable, "-c", code, "x"], capture_output=True, text=True, env=env, timeout=60)
    line = assert_one_line(p, 1, "error (internal)", "RuntimeError: boom second line", "STEWARD_DEBUG=1")
    assert line
    p = subprocess.run([sys.executable, "-c", code, "x"], capture_output=True, text=True,
                       env={**env, "STEWARD_DEBUG": "1"}, timeout=60)
    assert p.returncode == 1 and "Traceback" in p.stderr and "RuntimeError: boom" in p.stderr


def test_a_bad_golden_set_fails_when_given_naming_the_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert steward(ws, "init").returncode == 0
    missing = tmp_path / "nonexistent.jsonl"
    notjson = tmp_path / "golden.txt"
    notjson.write_text("what is 2+2?\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    for i, (path, needle) in enumerate([(missing, "does not exist"), (notjson, "not valid JSON"),
                                        (empty, "holds no prompts")]):
        line = assert_one_line(steward(ws, "usecase", "add", f"uc{i}", "--description", "d", "--golden-set", str(path)),
                               2, "golden_set", path.name, needle)
        assert line.startswith("error (invalid_input): ")
    assert "uc0" not in steward(ws, "usecase", "list", "--json").stdout  # nothing was created
    good = tmp_path / "good.jsonl"
    good.write_text('{"prompt": "what is 2+2?", "reference": "4"}\n')
    p = steward(ws, "usecase", "add", "ok", "--description", "d", "--golden-set", "good.jsonl")  # cwd: tmp_path
    assert p.returncode == 0, p.stderr
