"""A serving process works out where a published version's session comes from once (``execution.load_version``):
later requests ask nothing of the database or the disk before the session cache; a version that may still change
is worked out each time; a session dropped from the cache, its folder removed, loads again. And the resident set
each run reads twice comes from a descriptor the process keeps open (``runtime.sessions.resident_bytes``)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from apps.inference import execution

pytestmark = pytest.mark.django_db

IRIS_ROW = {"float_input": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)}


@pytest.fixture
def counted(monkeypatch):
    calls = {"providers": 0, "folder": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(execution, "choose_providers", counting("providers", execution.choose_providers))
    monkeypatch.setattr(execution, "version_directory", counting("folder", execution.version_directory))
    return calls


def test_a_published_version_is_placed_once_then_served_from_the_cache(runnable, tmp_path, counted,
                                                                        django_assert_num_queries):  # fmt: skip
    version = runnable.iris(tmp_path)
    assert version.is_frozen
    first = execution.load_version(version)
    assert counted["providers"] == 1 and counted["folder"] == 2  # worked out, and checked again by the loader
    with django_assert_num_queries(0):
        again = execution.load_version(version)
    assert again.session is first.session and again.key == first.key and again.directory == first.directory
    assert counted["providers"] == 1 and counted["folder"] == 2  # nothing worked out again
    assert execution.run_version(again, IRIS_ROW, readable=True).answer is not None


def test_a_dropped_session_whose_folder_was_removed_loads_again(runnable, tmp_path, counted):
    version = runnable.iris(tmp_path)
    first = execution.load_version(version)
    execution.session_cache().clear()
    shutil.rmtree(first.directory)  # an operator cleaned the version cache
    again = execution.load_version(version)
    assert again.session is not first.session
    assert first.directory.is_dir()  # copied from storage again, by the loader
    assert execution.run_version(again, IRIS_ROW).outputs


def test_each_provider_asked_for_is_worked_out_on_its_own(runnable, tmp_path, counted):
    version = runnable.iris(tmp_path)
    execution.load_version(version, provider="auto")
    execution.load_version(version, provider="cpu")
    execution.load_version(version, provider="cpu")
    assert counted["providers"] == 2


def test_a_version_not_yet_published_is_worked_out_every_time(runnable, tmp_path, counted):
    from apps.marketplace.models import ModelVersion

    version = runnable.iris(tmp_path)
    ModelVersion.objects.filter(pk=version.pk).update(status="draft")
    version.refresh_from_db()
    assert not version.is_frozen
    execution.load_version(version)
    execution.load_version(version)
    assert counted["providers"] == 2 and counted["folder"] == 3  # twice, and once by the first load's loader


def test_the_resident_set_is_read_from_a_kept_descriptor_and_anew_after_a_fork():
    """``resident_bytes`` keeps /proc/self/statm open (two reads a run); a forked child reads its own, not its
    parent's (``/proc/self`` is resolved when the file is opened)."""
    import os

    from apps.inference.runtime import sessions

    before = sessions.resident_bytes()
    assert before > 0
    ballast = bytearray(64 * 1024 * 1024)  # 64 MiB touched: the resident set grows
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert sessions.resident_bytes() >= before + 60 * 1024 * 1024
    kept = sessions._statm
    assert kept is not None and kept[0] == os.getpid()
    assert sessions.resident_bytes() and sessions._statm == kept  # the same descriptor again
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: drop the ballast; its own resident set is read, not the parent's
        try:
            os.close(reader)
            inherited = sessions._statm
            del ballast[:]
            import gc

            gc.collect()
            own = sessions.resident_bytes()
            mine = sessions._statm
            ok = inherited is None and mine is not None and mine[0] == os.getpid()
            os.write(writer, f"{int(ok)} {own}".encode())
        finally:
            os._exit(0)
    os.close(writer)
    answer = os.read(reader, 100).decode().split()
    os.close(reader)
    os.waitpid(child, 0)
    assert answer[0] == "1"  # the child forgot the parent's descriptor and opened its own
    assert int(answer[1]) < sessions.resident_bytes() - 32 * 1024 * 1024  # without the parent's 64 MiB ballast
    del ballast
