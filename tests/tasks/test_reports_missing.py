"""tasks/report.py `_reports_missing`: why no report page can be written when the data
folder's reports/ itself is not there, a thing repeating a decision cannot change (found
by the recovery review: the approval said "FileNotFoundError", again at every repeat)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tasks.report import _reports_missing


@pytest.mark.parametrize("reports, said", [
    ("folder", None),
    ("gone", "the data folder's reports/ is not there (deleted, or a share not mounted?): mount it or create it"),
    ("broken link", "the data folder's reports/ is a link to a folder that is not there now (a share not mounted?): "
                    "mount it or create it"),
    ("link", "the run's folder reports/R20251201-001 is not there, and reports/ is a link (to a share?): mount the "
             "share if it is not, or, if that folder was deleted, create it empty"),
    ("link with the run's folder", None),
    ("file", "the data folder's reports/ is not a folder: move that file away and create the folder"),
])
def test_a_missing_reports_folder_is_said_as_such(tmp_path, reports, said):
    data = tmp_path / "data"
    data.mkdir()
    if reports == "folder":
        (data / "reports").mkdir()
    elif reports.startswith("link") or reports == "broken link":
        share = tmp_path / "share"
        if reports.startswith("link"):
            share.mkdir()
        if reports == "link with the run's folder":
            (share / "R20251201-001").mkdir()
        (data / "reports").symlink_to(share)
    elif reports == "file":
        (data / "reports").write_text("not a folder")
    assert _reports_missing(SimpleNamespace(report_dir=data / "reports" / "R20251201-001",
                                            run_id="R20251201-001")) == said
