"""Files and folders appear complete or not at all; bad output paths fail before any work."""

import importlib.util
import os
import threading
from pathlib import Path

import pytest

import evsim
import evsim.report
from evsim import EvsimFileError
from evsim.cli import main
from evsim.io.atomic import StagedFolder, atomic_file, check_output_file, check_output_folder
from evsim.models import load_model

UNWRITABLE = Path("/proc/evsim-cannot-write-here")  # refused even to root


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_file_keeps_the_old_content_when_the_writer_fails(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="half way"):
        with atomic_file(target) as stream:
            stream.write(b"new, but")
            raise RuntimeError("half way")
    assert target.read_bytes() == b"old" and _leftovers(tmp_path) == []
    with atomic_file(target) as stream:
        stream.write(b"new")
    assert target.read_bytes() == b"new" and _leftovers(tmp_path) == []


def test_atomic_file_creates_folders_and_respects_the_umask(tmp_path):
    target = tmp_path / "a" / "b" / "data.bin"
    with atomic_file(target) as stream:
        stream.write(b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_save_appends_npz_and_replaces_atomically(tmp_path):
    ann = load_model()
    evsim.save(ann, tmp_path / "net")
    evsim.save(ann, tmp_path / "net")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]
    assert evsim.load(tmp_path / "net.npz").equals(ann)


@pytest.mark.parametrize("where", ["folder", "file_parent", "unwritable"])
def test_save_to_a_bad_path_names_it(tmp_path, where):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder.npz").mkdir()
    path = {"folder": tmp_path / "folder.npz", "file_parent": tmp_path / "file" / "net.npz",
            "unwritable": UNWRITABLE / "net.npz"}[where]
    with pytest.raises(EvsimFileError, match=str(path)):
        evsim.save(load_model(), path)


def test_staged_folder_replaces_the_whole_folder_or_nothing(tmp_path):
    target = tmp_path / "report"
    target.mkdir()
    (target / "old.png").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with StagedFolder(target) as staged:
            (staged / "new.png").write_bytes(b"new")
            raise RuntimeError
    assert sorted(os.listdir(target)) == ["old.png"] and _leftovers(tmp_path) == []
    with StagedFolder(target) as staged:
        (staged / "new.png").write_bytes(b"new")
    assert sorted(os.listdir(target)) == ["new.png"] and _leftovers(tmp_path) == []
    abandoned = StagedFolder(tmp_path / "other")
    del abandoned  # never committed: its temporary folder goes with it
    assert _leftovers(tmp_path) == [] and not (tmp_path / "other").exists()


def test_concurrent_staged_folders_leave_one_complete_folder(tmp_path):
    target = tmp_path / "report"
    errors = []

    def write(writer: int):
        try:
            for round_ in range(30):
                with StagedFolder(target) as staged:
                    for i in range(5):
                        (staged / f"{i}.txt").write_text(f"{writer} {round_}")
        except BaseException as err:  # reported below, in the main thread
            errors.append(err)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    contents = {(target / f"{i}.txt").read_text() for i in range(5)}
    assert len(contents) == 1 and sorted(os.listdir(target)) == [f"{i}.txt" for i in range(5)]
    assert _leftovers(tmp_path) == []


def test_output_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(EvsimFileError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(EvsimFileError, match="is a file, not a folder"):
        check_output_file(tmp_path / "file" / "deeper" / "net.npz")
    with pytest.raises(EvsimFileError, match="cannot write in"):
        check_output_file(UNWRITABLE / "net.npz")
    assert check_output_file(tmp_path / "new" / "net.npz") == tmp_path / "new" / "net.npz"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(EvsimFileError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(EvsimFileError, match=r"files evsim did not write \(thesis.tex\)"):
        check_output_folder(tmp_path / "mine", ("*.png", "report.md"))
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(EvsimFileError, match="cannot write in"):
            check_output_file(locked / "net.npz")


@pytest.fixture
def nothing_may_run(monkeypatch):
    """Conversion and simulation fail the test if the CLI reaches them."""
    def refuse(*args, **kwargs):
        raise AssertionError("the bad output path should have been refused first")
    monkeypatch.setattr(evsim, "convert", refuse)
    monkeypatch.setattr(evsim.report, "simulate", refuse)
    monkeypatch.setattr(evsim.models, "load_model", refuse)


@pytest.mark.parametrize("command", ["convert", "report", "demo"])
def test_cli_refuses_a_bad_output_path_before_any_work(tmp_path, capsys, command,
                                                       nothing_may_run):
    (tmp_path / "file").write_text("x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    (tmp_path / "folder.npz").mkdir()
    bad = {"convert": [str(tmp_path / "file" / "snn.npz"), str(UNWRITABLE / "snn.npz"),
                       str(tmp_path / "folder.npz")],
           "report": [str(tmp_path / "file"), str(UNWRITABLE / "r"), str(tmp_path / "mine")],
           "demo": [str(tmp_path / "file"), str(tmp_path / "mine")]}[command]
    for path in bad:
        argv = {"convert": ["convert", "ann.npz", "bundled", "-o", path],
                "report": ["report", "snn.npz", "bundled", "-o", path],
                "demo": ["demo", "--report", path]}[command]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and path in err, err
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_report_replaces_its_own_previous_folder(tmp_path):
    from evsim.data import load_bundled_sample
    from evsim.report import write_report
    previous = tmp_path / "r"
    previous.mkdir()
    for name in ("report.md", "index.html", "stale.png"):  # an older report's files
        (previous / name).write_text("from an older run")
    snn = evsim.convert(load_model(), load_bundled_sample("train")[0][:32])
    report = write_report(previous, snn, load_bundled_sample("test")[0][:2], T=2,
                          engine="dense", analysis_images=1)
    explorer = ["explorer.html"] if importlib.util.find_spec("plotly") else []  # evsim[explore]
    assert sorted(p.name for p in previous.iterdir()) == sorted(
        [p.name for p in report.images] + ["index.html", "report.md"] + explorer)
    assert report.markdown.read_text().startswith("# evsim report")
    assert _leftovers(tmp_path) == []


def test_a_staged_folder_is_written_through_a_link_to_a_folder(tmp_path):
    real, link = tmp_path / "real" / "report", tmp_path / "report"
    real.mkdir(parents=True)
    (real / "old.md").write_text("old")
    link.symlink_to(real, target_is_directory=True)
    with StagedFolder(link) as staged:
        (staged / "report.md").write_text("new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert sorted(p.name for p in real.iterdir()) == ["report.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real", "report"]   # no leftovers
    assert sorted(p.name for p in real.parent.iterdir()) == ["report"]


def test_an_atomic_file_is_written_through_a_link(tmp_path):
    real, link = tmp_path / "store" / "snn.npz", tmp_path / "snn.npz"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link.symlink_to(real)
    with atomic_file(link) as stream:
        stream.write(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snn.npz", "store"]


def test_a_full_disk_during_a_report_names_the_folder(tmp_path, monkeypatch, capsys):
    import errno

    from evsim.data import load_bundled_sample

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    snn = evsim.convert(load_model(), load_bundled_sample("train")[0][:32])
    evsim.save(snn, tmp_path / "snn.npz")
    monkeypatch.setattr(Path, "write_text", full)
    out = tmp_path / "r"
    with pytest.raises(EvsimFileError, match=f"{out}: cannot be written .No space left"):
        evsim.report.write_report(out, snn, load_bundled_sample("test")[0][:2], T=2,
                                  engine="dense", analysis_images=1)
    assert main(["report", str(tmp_path / "snn.npz"), "bundled", "-o", str(out), "--images",
                 "2", "--T", "2", "--analysis-images", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{out}: cannot be written (No space left on device)" in err
    assert _leftovers(tmp_path) == [] and not out.exists()
