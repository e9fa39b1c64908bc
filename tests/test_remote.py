"""The team workflow against a real DVC remote: OpenSSH's sshd on 127.0.0.1 (random port, keys made here), serving
the smoke run's outputs through DVC's SSH remote. `make push`, `make repro` and `dvc pull` are the commands tested."""

import getpass
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import smoke
import yaml
from helpers import make
from smoke import stages_run

pytestmark = pytest.mark.pipeline
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


class SSHServer:
    """sshd with a host key and one client key of its own, accepting only that key, with SFTP (which DVC uses)."""

    def __init__(self, root: Path):
        self.root = root
        self.store = root / "store"
        self.keyfile = root / "client_key"
        self.process = None
        self.port = None

    def start(self):
        if not os.access(SSHD, os.X_OK):
            pytest.skip("needs OpenSSH's sshd (Debian package openssh-server)")
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)  # sshd run as root insists on its privilege-separation directory
        for key in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.root / key], check=True)
        shutil.copy(self.root / "client_key.pub", self.root / "authorized_keys")
        self.store.mkdir()
        for _ in range(5):  # a free port can be taken between finding and binding it
            if self._listening(self._free_port()):
                return self
        raise AssertionError(f"sshd did not start:\n{(self.root / 'sshd.log').read_text()}")

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def _listening(self, port) -> bool:
        config = self.root / "sshd_config"
        config.write_text(f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {self.root / 'host_key'}\n"
                          f"AuthorizedKeysFile {self.root / 'authorized_keys'}\nPidFile {self.root / 'sshd.pid'}\n"
                          "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                          "PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\n"
                          "Subsystem sftp internal-sftp\n")
        log = self.root / "sshd.log"
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", config], stderr=log.open("w"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            if "Server listening" in log.read_text():
                self.port = port
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{self.store}"

    def make_default_remote(self, repo):
        """Commit this server as the project's default remote (as a team would), and the key as this clone's own."""
        smoke.dvc(repo, "remote", "modify", "storage", "url", self.url)
        smoke.git(repo, "commit", "--quiet", "-m", "remote: the test's sshd", ".dvc/config")
        self.use_key(repo)

    def use_key(self, repo):
        smoke.dvc(repo, "remote", "modify", "--local", "storage", "keyfile", str(self.keyfile))


def copy_of(repo, dest) -> Path:
    shutil.copytree(repo, dest, symlinks=True)
    return dest


def clone(repo, dest, server) -> Path:
    smoke.run(dest.parent, "git", "clone", "--quiet", str(repo), str(dest))
    server.use_key(dest)
    return dest


def files_under(root) -> dict:
    """{relative path: (size, mtime_ns)} for every file under `root`."""
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in Path(root).rglob("*") if path.is_file()}


def model_bytes(repo) -> dict:
    """{path: bytes} of every file of the model outputs dvc.lock records (models/search, the tuner's workspace, and
    models/serving, the SavedModel, are not outputs)."""
    lock = yaml.safe_load(Path(repo, "dvc.lock").read_text())
    outputs = [Path(repo, out["path"]) for stage in lock["stages"].values() for out in stage["outs"]
               if out["path"].startswith("models/")]
    files = [path for output in outputs for path in ([output] if output.is_file() else output.rglob("*"))]
    return {str(path.relative_to(repo)): path.read_bytes() for path in files if path.is_file()}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = SSHServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pushed(smoke_run, sshd, tmp_path_factory):
    """A copy of the smoke repository with the test's sshd as its committed default remote, after `make push`."""
    repo, _, env = smoke_run
    copy = copy_of(repo, tmp_path_factory.mktemp("pushed") / "repo")
    sshd.make_default_remote(copy)
    return copy, make(copy, "push").stdout, env


def test_make_push_stores_every_output_and_the_run_cache(pushed, sshd):
    repo, output, _ = pushed
    assert "files pushed" in output
    assert smoke.dvc(repo, "status", "--cloud", "--json").stdout.strip() == "{}"
    assert any((sshd.store / "runs").rglob("*")), "no run-cache entry was pushed"


def test_a_fresh_clone_pulls_what_the_remote_holds_and_reruns_nothing(pushed, sshd, tmp_path):
    repo, _, env = pushed
    fresh = clone(repo, tmp_path / "fresh", sshd)
    assert not (fresh / "models" / "tuned").exists()

    output = make(fresh, "repro", env=env).stdout
    [line] = [line for line in output.splitlines() if line.startswith("pull:")]
    assert f"from remote 'storage' ({sshd.url})" in line and "; 0 not stored there" in line
    assert stages_run(output) == []
    assert smoke.dvc(fresh, "status", "--json").stdout.strip() == "{}"
    assert model_bytes(fresh) == model_bytes(repo)


def test_an_older_commit_gets_its_own_model_back_from_the_remote(pushed, sshd, tmp_path):
    repo, _, env = pushed
    work = copy_of(repo, tmp_path / "work")
    old = model_bytes(work)
    smoke.set_params(work, {"baseline": {"dense_units": 32}})
    assert stages_run(smoke.dvc(work, "repro", env=env).stdout) == ["baseline", "evaluate"]
    smoke.git(work, "commit", "--quiet", "-am", "smaller dense layer")
    make(work, "push")
    new = model_bytes(work)
    assert new != old

    fresh = clone(work, tmp_path / "fresh", sshd)
    make(fresh, "repro", env=env)
    assert model_bytes(fresh) == new
    smoke.git(fresh, "checkout", "--quiet", "HEAD~1")
    smoke.dvc(fresh, "pull")
    assert model_bytes(fresh) == old
    assert smoke.dvc(fresh, "status", "--json").stdout.strip() == "{}"


def test_with_the_server_stopped_repro_computes_here_push_fails_and_the_cache_is_untouched(pushed, tmp_path):
    repo, _, env = pushed
    work = copy_of(repo, tmp_path / "work")
    server = SSHServer(tmp_path / "server").start()
    server.make_default_remote(work)
    server.stop()
    cache = files_under(work / ".dvc" / "cache")

    result = make(work, "repro", env=env)
    output = result.stdout
    assert_quiet(result)
    [line] = [line for line in output.splitlines() if line.startswith("pull:")]
    assert f"remote 'storage' ({server.url}) cannot be used" in line and "computing everything here" in line
    assert "Connect call failed" in line
    assert stages_run(output) == [] and "Data and pipelines are up to date" in output

    pushing = make(work, "push", check=False)
    assert pushing.returncode != 0
    assert "ERROR" in pushing.stderr and "Connect call failed" in pushing.stderr
    assert files_under(work / ".dvc" / "cache") == cache


def test_with_no_default_remote_make_repro_says_so_in_one_line(tmp_path):
    smoke.git(tmp_path, "init", "--quiet")
    smoke.dvc(tmp_path, "init", "--quiet")
    result = smoke.run(tmp_path, sys.executable, str(smoke.REPO / "tools" / "pull.py"), check=False)
    assert result.returncode == 1
    assert result.stdout == "pull: no default DVC remote is configured; computing everything here\n"


def flip_a_byte(store: Path, path_in_repo: Path):
    """Damage, in the remote `store`, the object holding the file at `path_in_repo` (DVC names it by its md5)."""
    md5 = hashlib.md5(path_in_repo.read_bytes()).hexdigest()
    stored = store / "files" / "md5" / md5[:2] / md5[2:]
    stored.chmod(0o644)
    damaged = bytearray(stored.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    stored.write_bytes(bytes(damaged))


WEIGHTS = "models/tuned/model.weights.h5"


# What a fresh clone's `make repro` must not print: DVC's missing-cache warnings once pull.py has said in one line what
# the remote holds, and the C++ log lines of TensorFlow, XLA or absl.
NOISE = re.compile(r"Some of the cache files do not exist|Unable to pull data|WARNING|^[IWEF]\d{4} \d\d:\d\d:|"
                   r"absl::InitializeLog|XNNPACK delegate", re.M)


def assert_quiet(result):
    assert not NOISE.search(result.stdout + result.stderr), NOISE.search(result.stdout + result.stderr).group(0)


def test_a_fresh_clone_with_an_empty_remote_computes_everything_quietly(smoke_run, tmp_path):
    repo, _, env = smoke_run
    fresh = tmp_path / "clones" / "fresh"  # its default remote, ../../mnist-dvc-storage, does not exist yet
    smoke.run(fresh.parent.parent, "git", "clone", "--quiet", str(repo), str(fresh))
    result = make(fresh, "repro", env=env)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("pull:")]
    assert line.startswith("pull: 0 output(s) of dvc.lock fetched") and "not stored there, computed here" in line
    # Every stage whose outputs DVC caches ran; the others' outputs (metrics, figures) are in git already.
    assert {"download", "prepare", "baseline", "retrain", "export"} <= set(stages_run(result.stdout))
    # Keras' progress lines and the stages' summaries are kept (one epoch: Keras prints no "Epoch 1/1").
    assert re.search(r"^\d+/\d+ - \d+s - .*accuracy", result.stdout, re.M)
    assert "retrain: train accuracy" in result.stdout
    assert_quiet(result)


def assert_the_damaged_file_is_named_and_its_output_computed(fresh, output, original):
    [line] = [line for line in output.splitlines() if line.startswith("pull: 1 object(s)")]
    url = smoke.dvc(fresh, "config", "remote.storage.url").stdout.strip()
    assert line == (f"pull: 1 object(s) from remote 'storage' ({url}) failed their hash check and were not placed: "
                    f"{WEIGHTS}; what they belong to is computed here")
    assert "retrain" in stages_run(output)
    assert Path(fresh, WEIGHTS).read_bytes() == original  # recomputed, the same bytes; the damaged ones never placed
    assert smoke.dvc(fresh, "status", "--json").stdout.strip() == "{}"


def test_a_corrupt_object_in_the_ssh_remote_is_named_never_placed_and_its_output_computed(pushed, sshd, tmp_path):
    repo, _, env = pushed
    work = copy_of(repo, tmp_path / "work")
    server = SSHServer(tmp_path / "server").start()
    server.make_default_remote(work)
    make(work, "push")
    flip_a_byte(server.store, work / WEIGHTS)
    fresh = clone(work, tmp_path / "fresh", server)
    result = make(fresh, "repro", env=env)
    server.stop()
    assert_the_damaged_file_is_named_and_its_output_computed(fresh, result.stdout, Path(work, WEIGHTS).read_bytes())
    assert_quiet(result)


def test_a_corrupt_object_in_the_default_local_remote_is_named_never_placed_and_its_output_computed(smoke_run,
                                                                                                   tmp_path):
    repo, _, env = smoke_run
    work = copy_of(repo, tmp_path / "clones" / "work")  # the default remote: ../../mnist-dvc-storage from .dvc/
    make(work, "push")
    store = tmp_path / "clones" / "mnist-dvc-storage"
    assert (store / "files" / "md5").is_dir()
    flip_a_byte(store, work / WEIGHTS)
    smoke.git(work, "add", "--all")
    smoke.git(work, "commit", "--quiet", "--allow-empty", "-m", "pushed")
    fresh = tmp_path / "clones" / "fresh"
    smoke.run(fresh.parent, "git", "clone", "--quiet", str(work), str(fresh))
    output = make(fresh, "repro", env=env).stdout
    assert_the_damaged_file_is_named_and_its_output_computed(fresh, output, Path(work, WEIGHTS).read_bytes())


def test_a_remote_that_does_not_verify_is_not_used(pushed, tmp_path):
    repo, _, env = pushed
    work = copy_of(repo, tmp_path / "work")
    smoke.dvc(work, "remote", "modify", "--local", "storage", "verify", "false")
    result = smoke.run(work, sys.executable, "tools/pull.py", check=False)
    assert result.returncode == 1
    assert result.stdout.endswith("does not verify what it sends, so a corrupt object could reach the workspace "
                                  "(`dvc remote modify storage verify true`); computing everything here\n")


def pushed_to_the_default_local_remote(smoke_run, tmp_path):
    """(a copy of the smoke repository after `make push` to its default remote, that remote's directory)."""
    repo, _, env = smoke_run
    work = copy_of(repo, tmp_path / "clones" / "work")  # the default remote: ../../mnist-dvc-storage from .dvc/
    make(work, "push")
    return work, tmp_path / "clones" / "mnist-dvc-storage", env


def test_a_listing_that_would_place_a_file_outside_its_output_is_refused_and_nothing_is_placed(smoke_run, tmp_path):
    """A hash-consistent .dir listing whose members climb out of models/tuned (../../../escaped.txt, and one aimed
    at the library's own source), in the remote and in dvc.lock, as a one-line change a review could wave through:
    pull names it in one line, writes nothing outside the output, and the output is computed instead."""
    work, store, env = pushed_to_the_default_local_remote(smoke_run, tmp_path)
    lock = yaml.safe_load((work / "dvc.lock").read_text())
    [out] = [out for out in lock["stages"]["retrain"]["outs"] if out["path"] == "models/tuned"]
    listing = json.loads((store / "files/md5" / out["md5"][:2] / out["md5"][2:]).read_text())
    planted = b"planted by a hostile listing\n"
    planted_md5 = hashlib.md5(planted).hexdigest()
    (store / "files/md5" / planted_md5[:2]).mkdir(parents=True, exist_ok=True)
    (store / "files/md5" / planted_md5[:2] / planted_md5[2:]).write_bytes(planted)
    listing += [{"md5": planted_md5, "relpath": "../../../escaped.txt"},
                {"md5": planted_md5, "relpath": "../../src/mnist_pipeline/errors.py"}]
    content = json.dumps(sorted(listing, key=lambda entry: entry["relpath"])).encode()
    hostile = hashlib.md5(content).hexdigest() + ".dir"
    (store / "files/md5" / hostile[:2]).mkdir(parents=True, exist_ok=True)
    (store / "files/md5" / hostile[:2] / hostile[2:]).write_bytes(content)
    text = (work / "dvc.lock").read_text()
    (work / "dvc.lock").write_text(text.replace(out["md5"], hostile))
    smoke.git(work, "commit", "--quiet", "-am", "a new model (the lock line a review waves through)")
    fresh = tmp_path / "clones" / "fresh"
    smoke.run(fresh.parent, "git", "clone", "--quiet", str(work), str(fresh))
    errors_before = (fresh / "src/mnist_pipeline/errors.py").read_bytes()

    result = smoke.run(fresh, sys.executable, "tools/pull.py", env=env)
    [line] = [line for line in result.stdout.splitlines() if "directory listing" in line]
    assert line.startswith("pull: 1 directory listing(s) from remote 'storage'") and "models/tuned" in line
    assert "leads outside its output" in line and "nothing of them was placed" in line
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "clones" / "escaped.txt").exists()
    assert (fresh / "src/mnist_pipeline/errors.py").read_bytes() == errors_before
    assert not (fresh / "models/tuned").exists()  # computed by dvc repro, not placed from the listing


def test_a_remote_holding_a_fifo_is_not_used_and_nothing_hangs(smoke_run, tmp_path):
    work, store, env = pushed_to_the_default_local_remote(smoke_run, tmp_path)
    victim = next(path for path in (store / "files/md5").rglob("*") if path.is_file())
    victim.unlink()
    os.mkfifo(victim)
    fresh = tmp_path / "clones" / "fresh"
    smoke.run(fresh.parent, "git", "clone", "--quiet", str(work), str(fresh))
    start = time.monotonic()
    result = smoke.run(fresh, sys.executable, "tools/pull.py", env=env, check=False)
    assert time.monotonic() - start < 60 and result.returncode == 1
    assert "holds 1 object(s) that are not regular files" in result.stdout and "not used" in result.stdout


def _wait_for_child(pid, word, seconds=60) -> bool:
    """Whether a child of process `pid` with `word` in its command line appeared within `seconds`."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if any(word.encode() in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                   for child in children.read_text().split()):
                return True
        except FileNotFoundError:  # a child ended between the reads, or the process itself
            pass
        time.sleep(0.02)
    return False


def test_ctrl_c_during_pull_is_one_line_not_a_traceback(smoke_run, tmp_path):
    work, _, env = pushed_to_the_default_local_remote(smoke_run, tmp_path)
    fresh = tmp_path / "clones" / "fresh"
    smoke.run(fresh.parent, "git", "clone", "--quiet", str(work), str(fresh))
    # As from a terminal: a shell without job control starts background jobs (a CI script's `&`) with SIGINT ignored,
    # and Python keeps an ignored SIGINT ignored.
    process = subprocess.Popen([sys.executable, "tools/pull.py"], cwd=fresh, env=smoke.environment(env),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert _wait_for_child(process.pid, "fetch"), "pull never ran `dvc fetch`"
    process.send_signal(signal.SIGINT)  # inside the fetch: its child takes a second to start, let alone finish
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("pull: interrupted")
