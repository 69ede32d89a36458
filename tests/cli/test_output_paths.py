"""Hostile output paths and values against every command that writes (issue 15).

Every refusal: one ``error:`` line on stderr, exit 2, nothing written, nothing lost.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import il_data
from demokit.cli.app import main

SEED_2_63 = str(2**63)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile-cli")
    il_data.write_cartpole(d / "cp.h5", 2, seed=1)
    il_data.save_controller(d / "expert.pt")
    return d


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(capsys, argv: list[str], needle: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    return lines[0]


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.fixture
def work(data: Path, tmp_path: Path) -> Path:
    """A fresh copy of the dataset and the expert in tmp_path."""
    for name in ("cp.h5", "expert.pt"):
        (tmp_path / name).write_bytes((data / name).read_bytes())
    return tmp_path


# --- hostile item 1: an output that is an input, or a file of another kind -------------------------------------


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_bc_train_refuses_its_dataset_as_out(work, capsys, how):
    ds = work / "cp.h5"
    before = _digest(ds)
    out = ds
    if how == "symlink":
        out = work / "link.pt"
        out.symlink_to(ds)
    elif how == "hardlink":
        out = work / "hard.pt"
        os.link(ds, out)
    _refused(capsys, ["bc-train", str(ds), "--out", str(out), "--epochs", "1"], "is the input")
    assert _digest(ds) == before


def test_train_expert_refuses_to_replace_a_dataset(work, capsys):
    ds = work / "cp.h5"
    before = _digest(ds)
    _refused(capsys, ["train-expert", "--env", "CartPole-v1", "--timesteps", "64", "--out", str(ds)],
             "not a checkpoint")
    assert _digest(ds) == before


def test_gail_refuses_its_expert_data_as_out(work, capsys):
    ds = work / "cp.h5"
    before = _digest(ds)
    _refused(capsys, ["gail", "--expert", str(ds), "--out", str(ds), "--timesteps", "64"], "is the input")
    assert _digest(ds) == before


def test_dagger_refuses_out_equal_to_dataset_out(work, capsys):
    target = work / "x"
    _refused(capsys, ["dagger", "--expert", str(work / "expert.pt"), "--out", str(target), "--dataset-out",
                      str(target), "--rounds", "1"], "same file")
    assert not target.exists()


def test_dagger_refuses_its_expert_as_dataset_out(work, capsys):
    expert = work / "expert.pt"
    before = _digest(expert)
    _refused(capsys, ["dagger", "--expert", str(expert), "--out", str(work / "d.pt"), "--dataset-out",
                      str(expert), "--rounds", "1"], "is the input")
    assert _digest(expert) == before


def test_collect_refuses_its_policy_checkpoint_as_out(work, capsys):
    expert = work / "expert.pt"
    before = _digest(expert)
    _refused(capsys, ["collect", "--policy", str(expert), "--env", "CartPole-v1", "--episodes", "1", "--out",
                      str(expert), "--force"], "is the input")
    assert _digest(expert) == before


def test_collect_force_refuses_a_file_of_another_kind_without_force_and_keeps_it(work, capsys):
    notes = work / "notes.h5"
    notes.write_text("my notes\n")
    _refused(capsys, ["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "1", "--out",
                      str(notes), "--append"], "did not write")
    assert notes.read_text() == "my notes\n"


# --- hostile item 2: special files are never replaced -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "chardev"])
def test_force_never_replaces_special_files(tmp_path, capsys, kind):
    node = tmp_path / "node.h5"
    if kind == "fifo":
        os.mkfifo(node)
    else:
        try:
            os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # like /dev/null
        except PermissionError:
            pytest.skip("mknod needs root")
    _refused(capsys, ["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "1", "--out",
                      str(node), "--force"], "never replaces")
    mode = os.lstat(node).st_mode
    assert (stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISCHR(mode))


def test_convert_never_replaces_a_fifo(data, tmp_path, capsys):
    node = tmp_path / "node.h5"
    os.mkfifo(node)
    _refused(capsys, ["convert", str(data / "cp.h5"), str(node), "--force"], "never replaces")
    assert stat.S_ISFIFO(os.lstat(node).st_mode)


# --- hostile item 9: symlinks are written through ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--append", "--force"])
def test_collect_writes_through_a_symlink(work, capsys, mode):
    from demokit.data.dataset import load_dataset

    target = work / "real.h5"
    assert main(["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "2", "--out",
                 str(target)]) == 0
    link = work / "link.h5"
    link.symlink_to(target)
    assert main(["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "3", "--seed", "10",
                 "--out", str(link), mode]) == 0, capsys.readouterr().err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert load_dataset(target).num_episodes == (5 if mode == "--append" else 3)


def test_collect_to_a_dangling_symlink_creates_its_target(work, capsys):
    from demokit.data.dataset import load_dataset

    target = work / "later.h5"
    link = work / "dangling.h5"
    link.symlink_to(target)
    assert main(["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "2", "--out",
                 str(link)]) == 0, capsys.readouterr().err
    assert link.is_symlink() and load_dataset(target).num_episodes == 2


def test_checkpoint_written_through_a_symlink_with_the_mode_of_a_plain_file(work):
    from demokit.paths import atomic_write_bytes

    target = work / "ck.pt"
    link = work / "ck-link.pt"
    link.symlink_to(target)
    atomic_write_bytes(link, b"PK\x03\x04data")
    assert link.is_symlink() and target.read_bytes() == b"PK\x03\x04data"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask  # as datasets (h5py), not 0600


# --- hostile item 10: read-only files stay untouched ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--append", "--force"])
def test_collect_respects_a_read_only_dataset(work, capsys, mode):
    ds = work / "cp.h5"
    before = _digest(ds)
    ds.chmod(0o444)
    _refused(capsys, ["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "1", "--out",
                      str(ds), mode], "read-only")
    assert _digest(ds) == before and stat.S_IMODE(ds.stat().st_mode) == 0o444


# --- hostile item 5: values checked before anything starts ---------------------------------------------------------


@pytest.mark.parametrize("argv,needle", [
    (["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "2", "--seed", SEED_2_63], "2**63"),
    (["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "5", "--seed", str(2**63 - 2)],
     "seed + 4"),
    (["eval", "--policy", "{expert}", "--seed", "-1"], "non-negative"),
    (["train-expert", "--env", "CartPole-v1", "--seed", SEED_2_63], "2**63"),
    (["train-expert", "--env", "CartPole-v1", "--num-envs", "100000"], "between 1 and 1024"),
    (["bc-train", "{cp}", "--hidden", "100000000"], "too wide"),
    (["bc-train", "{cp}", "--seed", "-3"], "non-negative"),
    (["gail", "--expert", "{cp}", "--seed", SEED_2_63], "--seed"),
])
def test_bad_values_refused_before_work(work, capsys, argv, needle):
    argv = [a.format(expert=work / "expert.pt", cp=work / "cp.h5") for a in argv]
    before = _listing(work)
    _refused(capsys, argv, needle)
    assert _listing(work) == before


def test_output_parent_is_a_file(work, capsys):
    _refused(capsys, ["bc-train", str(work / "cp.h5"), "--out", str(work / "cp.h5" / "x.pt")], "is a file")
    _refused(capsys, ["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "1", "--out",
                      str(work / "expert.pt" / "d.h5")], "is a file")


def test_output_name_too_long_for_temp_and_lock_files(work, capsys):
    name = "d" * 240 + ".h5"  # legal alone, too long once ".<name>.tmp-<pid>" is made of it
    before = _listing(work)
    _refused(capsys, ["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "1", "--out",
                      str(work / name)], "shorter name")
    assert _listing(work) == before


@pytest.mark.parametrize("value,needle", [("abc", "positive integer"), ("0", "between 1 and")])
def test_demokit_threads_is_checked(monkeypatch, capsys, value, needle):
    monkeypatch.setenv("DEMOKIT_THREADS", value)
    _refused(capsys, ["inspect", "nothing.h5"], needle)


def test_bare_demokit_prints_help_without_an_error(capsys):
    assert main([]) == 0
    cap = capsys.readouterr()
    assert "Usage" in cap.out and "error" not in cap.err


def test_dataset_id_refused_where_it_would_be_ignored(data, tmp_path, capsys):
    _refused(capsys, ["convert", str(data / "cp.h5"), str(tmp_path / "o.h5"), "--dataset-id", "x-v0"],
             "--dataset-id")
    assert not (tmp_path / "o.h5").exists()


# --- hostile item 8: nothing left behind after an error -------------------------------------------------------------


def test_dagger_cuda_without_cuda_writes_nothing(work, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    before = _listing(work)
    _refused(capsys, ["dagger", "--expert", str(work / "expert.pt"), "--device", "cuda", "--out",
                      str(work / "d.pt"), "--dataset-out", str(work / "d.h5"), "--rounds", "1"], "cuda")
    assert _listing(work) == before


# --- warnings and interrupts ----------------------------------------------------------------------------------------


def test_python_warnings_become_warning_lines(work, capsys):
    il_data.write_cartpole(work / "one.h5", 1, seed=3)
    rc = main(["bc-train", str(work / "one.h5"), "--epochs", "1", "--eval-episodes", "0", "--out",
               str(work / "one.pt")])
    err = capsys.readouterr().err
    assert rc == 0, err
    warned = [ln for ln in err.splitlines() if "single episode" in ln]
    assert warned and all(ln.startswith("warning: ") for ln in warned) and "UserWarning" not in err


def test_ctrl_c_while_the_commands_load_ends_without_a_traceback(repo_root):
    code = ("import signal, os, builtins\n"
            "real = builtins.__import__\n"
            "def imp(name, *a, **k):\n"
            "    if name == 'demokit.cli.app': os.kill(os.getpid(), signal.SIGINT)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n"
            "import sys; sys.argv = ['demokit', '--help']\n"
            "from demokit.cli import run; run()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert out.returncode == 130 and "Traceback" not in out.stderr and "error: interrupted" in out.stderr


def test_pipeline_that_fails_on_an_option_leaves_no_folder(work, capsys):
    before = _listing(work)
    rc = main(["pipeline", "--env", "Pendulum-v1", "--expert-algo", "dqn", "--workdir", str(work / "runs"),
               "--episodes", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error:") and "dqn" in err and "Traceback" not in err
    assert _listing(work) == before  # no empty runs/Pendulum-v1/


def test_filter_and_split_refuse_their_input_as_output(work, capsys):
    ds = work / "cp.h5"
    before = _digest(ds)
    _refused(capsys, ["filter", str(ds), "--out", str(ds), "--top-k", "1", "--force"], "is the input")
    os.link(ds, work / "train.h5")
    _refused(capsys, ["split", str(ds), "--val-fraction", "0.5", "--out", str(work), "--force"], "is the input")
    assert _digest(ds) == before


def test_unsafe_checkpoint_refusal_is_whole(work, capsys):
    import torch

    class Runs:
        def __reduce__(self):
            return (os.system, ("true",))

    evil = work / "evil.pt"
    torch.save([Runs()], evil)
    line = _refused(capsys, ["eval", "--policy", str(evil), "--env", "CartPole-v1"], "posix.system")
    assert line.rstrip().endswith(("run", "."))


def test_unreadable_sources_are_one_error_line(work, capsys):
    fifo = work / "pipe.pkl"
    os.mkfifo(fifo)
    _refused(capsys, ["convert", str(fifo), str(work / "o.h5")], "FIFO")
    _refused(capsys, ["bc-train", str(work), "--out", str(work / "x.pt")], "directory")
    _refused(capsys, ["inspect", str(work / ("n" * 300 + ".h5"))], "")
    assert not (work / "o.h5").exists() and not (work / "x.pt").exists()


def test_ctrl_c_while_the_interpreter_shuts_down_is_quiet(repo_root):
    code = ("import atexit, os, signal, sys, time\n"
            "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2)))\n"
            "sys.argv = ['demokit', '--help']\n"
            "from demokit.cli import run; run()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert out.returncode == 0 and "Traceback" not in out.stderr and "KeyboardInterrupt" not in out.stderr
