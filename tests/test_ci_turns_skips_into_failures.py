"""In CI (``CI=true``) a skipped test fails (tests/parallel.py): every service is there, so a skip hides a break.

Run on a throwaway test file in a pytest subprocess, with only the plugin under test loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SAMPLE = textwrap.dedent(
    """
    import pytest

    def test_needs_a_service_that_is_missing():
        pytest.skip("needs Redis")

    @pytest.mark.skipif(True, reason="needs PostgreSQL")
    def test_marked_to_skip_without_a_service():
        pass

    @pytest.mark.may_skip_in_ci(reason="needs a GPU, which CI never has")
    def test_allowed_to_skip_in_ci():
        pytest.skip("no GPU")

    @pytest.mark.xfail(reason="a known failure")
    def test_expected_to_fail():
        assert False

    def test_that_passes():
        pass
    """
)


def run_sample(tmp_path: Path, *, ci: str | None) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"}}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "pytest", str(tmp_path / "test_sample.py"), "-c", os.devnull,
               "--rootdir", str(tmp_path), "-p", "no:django", "-p", "no:cacheprovider", "-p", "tests.parallel",
               "-q", "-rA"]  # fmt: skip
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_in_ci_a_skip_fails_and_says_why(tmp_path):
    result = run_sample(tmp_path, ci="true")
    assert result.returncode == 1, result.stdout
    # A skip in the call fails the test; one decided at setup (a skipif mark) is an error: both fail the run.
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error" in result.stdout, result.stdout
    assert "skipped in CI (needs Redis)" in result.stdout
    assert "skipped in CI (needs PostgreSQL)" in result.stdout


def test_outside_ci_a_missing_service_still_skips(tmp_path):
    result = run_sample(tmp_path, ci=None)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in result.stdout, result.stdout
