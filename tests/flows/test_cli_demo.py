"""`redress demo`'s folder and printed commands (flows/cli_demo.py), and `make clean`:
a second demo replaces only a folder a demo made; the next commands paste as printed."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from flows import cli, cli_demo
from redress.errors import RedressError
from redress.runtime import prefect_server
from redress.settings import load_settings
from scripts import fake_script

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_or_empty_folder_is_made_and_marked(tmp_path):
    for out in (tmp_path / "new" / "demo", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        cli_demo.prepare_folder(out, print)
        assert [p.name for p in out.iterdir()] == [cli_demo.MARKER]


def test_a_folder_a_demo_made_is_replaced_whole(tmp_path):
    said = []
    out = tmp_path / "demo"
    cli_demo.prepare_folder(out, said.append)
    (out / "inbox").mkdir()
    (out / "inbox" / "old.csv").write_text("x")
    cli_demo.prepare_folder(out, said.append)
    assert sorted(p.name for p in out.iterdir()) == [cli_demo.MARKER]
    assert said == [f"replacing the demo made earlier in {out}"]


@pytest.mark.parametrize("case", ["unmarked", "marker-is-a-link", "marker-is-a-folder"])
def test_a_folder_the_demo_did_not_make_is_never_deleted(tmp_path, case):
    out = tmp_path / "data"
    out.mkdir()
    (out / "precious.csv").write_text("keep me")
    if case == "marker-is-a-link":
        (tmp_path / "elsewhere").write_text("")
        (out / cli_demo.MARKER).symlink_to(tmp_path / "elsewhere")
    elif case == "marker-is-a-folder":
        (out / cli_demo.MARKER).mkdir()
    with pytest.raises(RedressError, match="not made by `redress demo`"):
        cli_demo.prepare_folder(out, print)
    assert (out / "precious.csv").read_text() == "keep me"


def test_a_link_to_a_demo_folder_is_refused(tmp_path):
    real = tmp_path / "real"
    cli_demo.prepare_folder(real, print)
    (real / "kept").write_text("x")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(RedressError, match="symbolic link"):
        cli_demo.prepare_folder(tmp_path / "link", print)
    assert (real / "kept").exists()


@pytest.mark.parametrize("where", ["/dev/null/demo", "/proc/redress-demo"])
def test_a_folder_that_cannot_be_made_is_one_line(where):
    with pytest.raises(RedressError,
                       match=rf"^cannot make the demo folder {where}: .+ \(pass another --out or --data-dir\)$"):
        cli_demo.prepare_folder(Path(where), print)


def _no_server(*args, **kwargs):
    raise AssertionError("a Prefect server was started before what a run checks first")


@pytest.mark.parametrize("bad", ["policy", "missing-policy", "run-date", "run-date-past-tomorrow"])
def test_a_bad_policy_or_run_date_is_refused_before_the_folder_is_touched_or_a_server_starts(
        tmp_path, monkeypatch, bad):
    monkeypatch.setattr(prefect_server, "temporary_server", _no_server)
    out = tmp_path / "demo"
    cli_demo.prepare_folder(out, print)  # an earlier demo: a typo must not replace it
    (out / "earlier.txt").write_text("kept")
    policy = tmp_path / "bad.toml"
    if bad == "policy":
        policy.write_text("this is [not valid toml\n")
    dated = bad.startswith("run-date")
    # found by review: a date past tomorrow was refused only by the run, the earlier demo gone
    args = argparse.Namespace(out=str(out), customers=300, seed=7, policy=None if dated else policy,
                              run_date={"run-date": "2025-13-01", "run-date-past-tomorrow": "2030-01-01"}.get(bad))
    with pytest.raises(RedressError) as refused:
        cli.cmd_demo(args, load_settings({}, data_dir=None))
    assert "\n" not in str(refused.value)
    if bad == "run-date-past-tomorrow":
        assert str(refused.value).startswith("run date 2030-01-01 is after tomorrow (")
    assert (out / "earlier.txt").read_text() == "kept"


def test_a_configured_server_that_is_down_is_refused_before_an_earlier_demo_is_replaced(tmp_path, monkeypatch):
    """Found by the fix review: with PREFECT_API_URL at a server that was down, the
    earlier demo was replaced, and only then was the server found missing."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setattr(prefect_server, "temporary_server", _no_server)
    out = tmp_path / "demo"
    cli_demo.prepare_folder(out, print)
    (out / "earlier.txt").write_text("kept")
    args = argparse.Namespace(out=str(out), customers=300, seed=7, policy=None, run_date=None)
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}), pytest.raises(RedressError) as refused:
        cli.cmd_demo(args, load_settings({}, data_dir=None))
    assert str(refused.value).startswith("cannot reach the Prefect server at http://127.0.0.1:9/api (ConnectError")
    assert (out / "earlier.txt").read_text() == "kept"


def test_settings_a_run_refuses_are_refused_before_the_demo_starts_its_server(tmp_path, monkeypatch):
    monkeypatch.setattr(prefect_server, "temporary_server", _no_server)
    monkeypatch.setattr(cli, "check_before_prefect", lambda *a: (_ for _ in ()).throw(RedressError("refused")))
    args = argparse.Namespace(out=str(tmp_path / "demo"), customers=300, seed=7, policy=None, run_date=None)
    with pytest.raises(RedressError, match="^refused$"):
        cli.cmd_demo(args, load_settings({}, data_dir=None))


def test_the_command_is_redress_when_that_name_on_path_is_this_script(tmp_path):
    script = fake_script(tmp_path / "venv" / "bin")
    assert cli_demo.redress_command(str(script), "/usr/bin/python3", lambda name: str(script)) == "redress"


def test_the_command_is_the_script_as_typed_when_path_finds_another_or_none(tmp_path):
    script = fake_script(tmp_path / "my env" / "bin")
    other = fake_script(tmp_path / "other" / "bin")
    for found in (str(other), None):
        command = cli_demo.redress_command(str(script), "/usr/bin/python3", lambda name: found)
        assert shlex.split(command) == [str(script)]


def test_under_python_m_the_command_is_the_venv_script_beside_python(tmp_path):
    script = fake_script(tmp_path / "venv" / "bin")
    command = cli_demo.redress_command(str(ROOT / "flows" / "cli.py"), str(script.parent / "python"), lambda n: None)
    assert shlex.split(command) == [str(script)]
    bare = cli_demo.redress_command("cli.py", str(tmp_path / "py dir" / "python"), lambda n: None)
    assert shlex.split(bare) == [str(tmp_path / "py dir" / "python"), "-m", "flows.cli"]


def test_next_commands_paste_into_a_shell_as_printed(tmp_path):
    out = tmp_path / "it's a demo; rm -rf ~"
    lines = cli_demo.next_commands(out, "C0000001", "QBWGPFBD", "'/opt/my env/bin/redress'")
    assert shlex.split(lines[1]) == ["/opt/my env/bin/redress", "--data-dir", str(out), "explain", "C0000001"]
    assert shlex.split(lines[2]) == ["/opt/my env/bin/redress", "--data-dir", str(out), "explain", "--by",
                                     "YOUR_STAFF_ID", "QBWGPFBD"]


def test_make_clean_keeps_the_environment_and_distclean_removes_it(tmp_path):
    for folder in (".venv", "demo", "bench"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "f").write_text("x")
    assert shutil.which("make"), "install make (Debian: apt-get install make)"
    make = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path)]
    subprocess.run([*make, "clean"], check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".venv"]
    subprocess.run([*make, "distclean"], check=True, capture_output=True)
    assert list(tmp_path.iterdir()) == []


def test_the_demo_writes_the_folder_data_dir_names(tmp_path, monkeypatch):
    """`redress --data-dir D demo` makes its breach in D, not in ./demo (it used to ignore
    --data-dir, which every command accepts: SPEC "The command line")."""
    monkeypatch.setattr(prefect_server, "temporary_server", _no_server)
    monkeypatch.setattr(cli, "check_before_prefect", lambda *a: (_ for _ in ()).throw(RedressError("stop here")))
    monkeypatch.chdir(tmp_path)
    args = cli.parse(["--data-dir", str(tmp_path / "mine"), "demo", "--customers", "300"])
    with pytest.raises(RedressError, match="^stop here$"):
        cli.cmd_demo(args, load_settings({}, data_dir=args.data_dir))
    assert (tmp_path / "mine" / cli_demo.MARKER).is_file()
    assert (tmp_path / "mine" / "inbox" / "customers").is_dir()
    assert not (tmp_path / "demo").exists()
