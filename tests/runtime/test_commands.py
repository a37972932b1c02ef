"""The redress command a printed line starts with (redress/runtime/commands.py): the
approve and reject lines of plan.md are copied by finance into a shell in another
folder, so the command is a full path, or `redress` when that is what PATH finds."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from redress.errors import RedressError
from redress.generate import generate
from redress.runtime.commands import decider_name, is_placeholder_name, redress_command, redress_line
from scripts import fake_script

RUN_ID = "R20251201-001"


def test_a_script_started_by_a_relative_path_is_printed_as_its_full_path(tmp_path, monkeypatch):
    script = fake_script(tmp_path / "repo" / ".venv" / "bin")
    monkeypatch.chdir(tmp_path / "repo")
    for found in (None, str(fake_script(tmp_path / "other" / "bin"))):
        command = redress_command(".venv/bin/redress", "/usr/bin/python3", lambda name: found)
        assert shlex.split(command) == [str(script)]
    line = redress_line(Path("data"), "approve", RUN_ID, "--by", "NAME",
                        command=redress_command("./.venv/bin/redress", "/usr/bin/python3", lambda name: None))
    assert shlex.split(line)[:3] == [str(script), "--data-dir", str(tmp_path / "repo" / "data")]


def test_a_path_typed_with_dot_dot_is_printed_without_it(tmp_path, monkeypatch):
    """`../repo/.venv/bin/redress --data-dir ../work/data` from a sibling folder: the
    printed line names both without `..` (found by review: it pasted, but read as a
    riddle). A symbolic link before a `..` is followed, as the shell's cd would not."""
    script = fake_script(tmp_path / "repo" / ".venv" / "bin")
    (tmp_path / "work" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    line = redress_line(Path("../work/data"), "approve", RUN_ID,
                        command=redress_command("../repo/.venv/bin/redress", "/usr/bin/python3", lambda name: None))
    assert shlex.split(line)[:3] == [str(script.resolve()), "--data-dir", str((tmp_path / "work" / "data").resolve())]
    assert ".." not in line
    (tmp_path / "link").symlink_to(tmp_path / "repo" / ".venv" / "bin")
    command = redress_command(str(tmp_path / "link" / ".." / "bin" / "redress"), "/usr/bin/python3", lambda name: None)
    assert shlex.split(command) == [str((tmp_path / "repo" / ".venv" / "bin" / "redress").resolve())]


def test_a_script_started_by_a_relative_path_that_path_finds_is_redress(tmp_path, monkeypatch):
    script = fake_script(tmp_path / "venv" / "bin")
    monkeypatch.chdir(tmp_path / "venv")
    assert redress_command("bin/redress", "/usr/bin/python3", lambda name: str(script)) == "redress"


def test_plan_md_and_the_console_print_the_full_path_of_a_script_typed_relative(tmp_path, prefect_server):
    """The console script as a person starts it from the repository, `.venv/bin/redress`
    (a new interpreter: argv[0] is what counts), with a PATH that does not find it. What
    it prints depends neither on the Prefect server nor on the inbox's quiet time: it
    runs on the session's test server, and reads the files it was just given at once
    (a temporary server of its own and 10 s of quiet were most of its time)."""
    from prefect.settings import get_current_settings

    script = Path(sys.executable).parent / "redress"
    root = script.parent.parent.parent
    data = tmp_path / "data"
    generate(data, 300, 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    env.update(PATH="/usr/bin:/bin", PREFECT_API_URL=str(get_current_settings().api.url),
               REDRESS_INBOX_QUIET_SECONDS="0", REDRESS_HMAC_KEY="0123456789abcdeffedcba9876543210", REDRESS_DEBTOR_NAME="Test Payer Corp.",
               REDRESS_DEBTOR_ACCOUNT="1002003004005", REDRESS_DEBTOR_BANK_CODE="020")
    done = subprocess.run([str(script.relative_to(root)), "--data-dir", str(data), "run", "--run-date", "2025-12-01"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    plan = (data / "reports" / RUN_ID / "plan.md").read_text()
    for verb in ("approve", "reject"):
        expected = [str(script), "--data-dir", str(data), verb, RUN_ID, "--by", "YOUR_NAME"]
        printed = [shlex.split(line) for line in done.stdout.splitlines() if f" {verb} {RUN_ID} " in line]
        in_plan = [shlex.split(line) for line in plan.splitlines() if f" {verb} {RUN_ID} " in line]
        assert in_plan == [expected]
        assert len(printed) == 2 and printed == [expected] * 2  # plan.md as printed, then the line to paste


@pytest.mark.parametrize("name", ["YOUR_NAME", "Your Name", "<your name>", "name", "NAME", "$YOUR_NAME", "your-name",
                                  "YourName", "your full name", "ＹＯＵＲ＿ＮＡＭＥ", "ＮＡＭＥ", "  your   name  "])
def test_a_placeholder_is_no_decider(name):
    """The printed approve line's YOUR_NAME and the ways people spell a placeholder,
    full-width as a Korean keyboard types it too (found by review)."""
    assert is_placeholder_name(name)
    with pytest.raises(RedressError, match="placeholder"):
        decider_name(name)


@pytest.mark.parametrize("name", ["Nam E", "Nam, E.", "Na Me", "NAME1", "Kim Finance", "Namgung Yuna", "남궁 유나",
                                  "Yourn Ame", "Lee Name-ju"])
def test_a_real_name_that_holds_the_letters_of_name_is_a_decider(name):
    """Found by review: `Nam E` (a surname and an initial) was refused when the letters
    were run together."""
    assert not is_placeholder_name(name)
    assert decider_name(f"  {name} ") == " ".join(name.split())


@pytest.mark.parametrize("name, char", [("Kim\x1b[31m Finance", "001B"), ("Kim\u202eecnaniF", "202E"),
                                        ("Kim\u200bFinance", "200B"), ("\u3164", "3164"), ("Kim\x00", "0000")])
def test_a_decider_holding_a_hidden_character_is_refused(name, char):
    """Found by review: an escape sequence and a right-to-left override were recorded in
    every manifest as who decided."""
    with pytest.raises(RedressError, match=f"--by holds an unprintable character U\\+{char}: "):
        decider_name(name)


def test_a_decider_over_100_characters_is_refused_and_100_is_taken():
    assert decider_name("가" * 100) == "가" * 100
    with pytest.raises(RedressError, match="--by is 101 characters: a decider's name is at most 100"):
        decider_name("가" * 101)


@pytest.mark.parametrize("given", ["YOUR_STAFF_ID", "your-staff-id", "STAFF_ID", "staff"])
def test_the_demos_staff_placeholder_is_no_staff_id(given):
    """The demo prints `explain --by YOUR_STAFF_ID CODE`: pasted as it is, every lookup
    would be recorded as no one's, and one placeholder would share everyone's limit of
    codes not found."""
    from redress.customer_service.lookups import staff_id

    with pytest.raises(RedressError, match="placeholder"):
        staff_id(given)
    assert staff_id(" CS0042 ") == "CS0042"


def test_a_note_holding_a_hidden_character_or_over_2000_characters_is_refused_and_line_breaks_are_kept():
    """Found by the fix review: `--note` took an escape sequence and a right-to-left
    override, and 100,000 characters, into every manifest."""
    from redress.runtime.commands import decision_note
    assert decision_note(None) is None and decision_note("  ") is None
    assert decision_note("totals checked\nagainst the bank") == "totals checked\nagainst the bank"
    assert decision_note("pasted:\tfrom an email\r\n") == "pasted:\tfrom an email\r\n"
    assert decision_note("old Mac\rline") == "old Mac\rline"
    assert decision_note("가" * 2000) == "가" * 2000
    for note, char in (("ok\x1b[2J", "001B"), ("ok\u202eko", "202E"), ("ok\u3164", "3164")):
        with pytest.raises(RedressError, match=f"^--note holds an unprintable character U\\+{char}: "):
            decision_note(note)
    with pytest.raises(RedressError, match="^--note is 2,001 characters: a decision's note is at most 2,000$"):
        decision_note("가" * 2001)
