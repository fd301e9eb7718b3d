"""The evsim command never shows a traceback: exit 2 for a user error, 1 for a bug."""

import importlib
import subprocess
import sys

import numpy as np
import pytest
from corrupt import NPZ_DAMAGE
from interruptible import default_sigint

import evsim
from evsim.cli import _failure, main
from evsim.data import load_bundled_sample
from evsim.models import load_model

SIMULATE = importlib.import_module("evsim.simulate")  # the module; evsim.simulate is the function


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_failures")
    images, labels = load_bundled_sample("test")
    evsim.save(evsim.convert(load_model(), load_bundled_sample("train")[0][:32]),
               root / "snn.npz")
    np.savez(root / "labels_10.npz", images=images[:3], labels=np.array([1, 10, 2]))
    np.savez(root / "labels_float.npz", images=images[:3], labels=np.array([1.5, 0, 2]))
    nan = images[:3].copy()
    nan[2, 0, 5, 5] = np.nan
    np.savez(root / "nan.npz", images=nan, labels=labels[:3])
    np.savez(root / "raw_pixels.npz", images=(images[:2] * 255).astype(np.uint8))
    (root / "zlib.npz").write_bytes(NPZ_DAMAGE["zlib.error"]())
    (root / "encrypted.npz").write_bytes(NPZ_DAMAGE["RuntimeError-encrypted"]())
    return root


def _run(capsys, argv) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return code, err


@pytest.mark.parametrize("argv, message", [
    (["run", "{root}/zlib.npz", "bundled"], "zlib.npz: not a readable evsim .npz file"),
    (["run", "{root}/encrypted.npz", "bundled"], "encrypted.npz: not a readable"),
    (["run", "{root}/snn.npz", "{root}/zlib.npz"], "zlib.npz: not a readable .npz file"),
    (["run", "{root}/snn.npz", "{root}/labels_10.npz"],
     r"labels_10.npz: 'labels' must be class indices in [0, 10) (the network has 10 outputs)"),
    (["run", "{root}/snn.npz", "{root}/labels_float.npz"], "the first being 1.5 at index 0"),
    (["report", "{root}/snn.npz", "{root}/nan.npz", "-o", "{root}/r"],
     "nan.npz: images hold 1 NaN and 0 infinite value(s), the first in image 2"),
    (["run", "{root}/snn.npz", "bundled", "--T", "1000000000000"],
     "out of memory: simulating 1000 image(s) for T = 1000000000000 steps needs at least"),
])
def test_user_errors_exit_2_with_one_line(capsys, root, argv, message):
    code, err = _run(capsys, [a.format(root=root) for a in argv])
    assert code == 2 and message in err


@pytest.mark.parametrize("bug", [ZeroDivisionError("division by zero"), IndexError("oops"),
                                 ValueError("operands could not be broadcast")])
def test_internal_errors_exit_1_and_ask_for_a_report(capsys, root, monkeypatch, bug):
    def broken(*args, **kwargs):
        raise bug
    monkeypatch.setattr(SIMULATE, "simulate", broken)
    code, err = _run(capsys, ["run", str(root / "snn.npz"), "bundled", "--T", "2"])
    assert code == 1 and "internal error" in err and "please report this" in err
    assert type(bug).__name__ in err and str(bug) in err


def test_plain_value_errors_of_evsim_s_own_checks_are_user_errors(root):
    snn = evsim.load(root / "snn.npz")
    try:
        evsim.simulate(snn, np.zeros((1, 1, 28, 28)), engine="gpu")
    except ValueError as err:
        code, message = _failure(err)
    assert code == 2 and message.startswith("error: engine must be one of")
    try:
        np.zeros(2) + np.zeros(3)
    except ValueError as err:  # raised by NumPy: a bug if it reaches the command
        assert _failure(err)[0] == 1


def test_a_memory_error_from_below_names_what_to_change():
    code, message = _failure(MemoryError("Unable to allocate 7.3 TiB for an array"))
    assert code == 2 and message == ("out of memory: Unable to allocate 7.3 TiB for an array; "
                                     "use a smaller --T or fewer --images")


def test_no_traceback_from_the_installed_command(root):
    done = subprocess.run([sys.executable, "-m", "evsim", "run", str(root / "zlib.npz"),
                           "bundled"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and "zlib.npz" in done.stderr


def test_warnings_are_one_line_too(capsys, root):
    assert main(["run", str(root / "snn.npz"), str(root / "raw_pixels.npz"), "--T", "2",
                 "--json"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.strip() and not line.startswith(("\r", "simulate:"))]  # no progress bars
    assert len(lines) == 1 and "divide them by 255" in lines[0]
    assert lines[0].startswith("evsim run: warning: inputs range over [0, 255], above 1")


def test_ctrl_c_while_the_command_starts_exits_130_in_one_line(capsys, monkeypatch):
    """Ctrl-C while the command imports evsim (and Numba) is an interruption, not a crash."""
    from evsim.__main__ import main as command

    class Interrupting:
        def find_spec(self, name, path=None, target=None):
            if name == "evsim.cli":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "evsim.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert command() == 130
    assert capsys.readouterr().err == "evsim: interrupted\n"


def test_ctrl_c_while_the_arguments_are_read_exits_130(capsys, monkeypatch):
    import evsim.cli

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(evsim.cli, "build_parser", interrupted)
    assert main(["run", "a.npz", "bundled", "--threads", "1"]) == 130
    assert capsys.readouterr().err == "evsim: interrupted\n"


@pytest.mark.parametrize("delay", [0.0, 0.15])
def test_sigint_during_start_up_of_the_installed_command(root, delay):
    import signal
    import time
    # What the installed script runs (python -m evsim goes through runpy, which turns a
    # caught start-up interrupt back into death by SIGINT). The signal goes once the entry
    # point is imported: before that the interpreter itself is starting, which no program
    # can catch, and on a loaded machine that alone can take longer than a fixed delay.
    launcher = ("import sys; from evsim.__main__ import main; "
                "print('entry point imported', file=sys.stderr, flush=True); sys.exit(main())")
    run = subprocess.Popen([sys.executable, "-c", launcher, "run", str(root / "snn.npz"),
                            "bundled", "--T", "4096"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    assert run.stderr.readline() == "entry point imported\n"
    time.sleep(delay)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] in ("evsim: interrupted", "evsim run: interrupted")


@pytest.mark.parametrize("command", ["convert", "report", "compare", "explore"])
def test_an_empty_output_name_is_refused(capsys, root, monkeypatch, tmp_path, command):
    monkeypatch.chdir(tmp_path)
    inputs = {"convert": ["ann.npz", "bundled"], "report": [str(root / "snn.npz"), "bundled"],
              "compare": ["ann.npz", "bundled", "bundled"],
              "explore": [str(root / "snn.npz"), "bundled"]}[command]
    with pytest.raises(SystemExit) as exit_:
        main([command, *inputs, "-o", " "])
    assert exit_.value.code == 2
    assert "-o/--output: expected a name, got an empty one" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_convert_into_a_folder_name_is_refused(capsys, root, tmp_path):
    evsim.save(load_model(), tmp_path / "ann.npz")
    code, err = _run(capsys, ["convert", str(tmp_path / "ann.npz"), "bundled", "-o",
                              str(tmp_path / "out") + "/"])
    assert code == 2 and "has no file name" in err
    assert not (tmp_path / "out").exists()
