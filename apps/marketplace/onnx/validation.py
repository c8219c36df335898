"""Run the inspection of a model in a child process with memory and time limits.

``validate_model(directory, main_file, limits)`` starts ``python -m apps.marketplace.onnx.validation
<directory> <main_file> <limits-json> full`` (``precheck_model_file`` the same with ``precheck``: the
upload-time checks of one file). The child caps its own address space (RLIMIT_AS = ``memory_mb``) and
CPU time before it imports ONNX or reads a byte of the model, moves its stdout aside (native libraries print
there) and writes one JSON report to the original stdout. The parent kills the child's whole process group
after ``timeout_s`` seconds of wall clock. Whatever happens to the child (out of memory, a crash in native
code, a timeout, garbage on stdout), the parent returns a report with a clear message and never raises.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from apps.marketplace.onnx.inspection import failure_report
from apps.marketplace.onnx.limits import MIB, Limits

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# Signals a process dies of when an allocation fails under RLIMIT_AS (std::bad_alloc -> abort) or the
# kernel's OOM killer steps in.
_MEMORY_SIGNALS = {signal.SIGABRT, signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS}
_MEMORY_MARKERS = ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory", "failed to allocate")


def out_of_memory_message(limits: Limits) -> str:
    return f"validation ran out of memory (limit {limits.memory_mb} MB): the model needs more memory to check."


def timed_out_message(limits: Limits) -> str:
    return f"validation timed out after {_seconds(limits.timeout_s)} s: the model takes too long to check."


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _child_env() -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MB of address space per thread arena otherwise
        "OMP_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
    }
    for name in ("HOME", "TMPDIR", "LD_LIBRARY_PATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def validate_model(directory: str | Path, main_file: str, limits: Limits | None = None) -> dict[str, Any]:
    """Inspect ``directory/main_file`` in a limited child process; the report (see ``inspection.Report``)."""
    return _run_child([str(directory), main_file], limits or Limits(), mode="full")


def precheck_model_file(path: str | Path, limits: Limits | None = None) -> dict[str, Any]:
    """The upload-time checks of one model file (``inspection.precheck_model``) in a limited child process."""
    path = Path(path)
    return _run_child([str(path.parent), path.name], limits or Limits(), mode="precheck")


def _run_child(arguments: list[str], limits: Limits, *, mode: str) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "apps.marketplace.onnx.validation",
        *arguments,
        json.dumps(limits.as_dict()),
        mode,
    ]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(  # noqa: S603 - our own module, arguments passed as a list
                command,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=str(PROJECT_ROOT),
                env=_child_env(),
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            return failure_report(f"validation could not start its checking process ({exc.strerror}).")
        try:
            returncode = process.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return failure_report(timed_out_message(limits), check="timeout")
        finally:
            _kill_group(process)  # anything the child left behind in its group
        stdout.seek(0)
        output = stdout.read(16 * MIB)
        stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, stderr.tell() - 8192))
        error_tail = stderr.read().decode("utf-8", "replace")
    return _report_from(returncode, output, error_tail, limits)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _report_from(returncode: int, output: bytes, error_tail: str, limits: Limits) -> dict[str, Any]:
    report = None
    if output.strip():
        with contextlib.suppress(ValueError):
            report = json.loads(output.decode("utf-8", "replace"))
    if isinstance(report, dict) and isinstance(report.get("errors"), list) and "ok" in report:
        report["ok"] = bool(report["ok"]) and not report["errors"]
        return report
    if returncode == -signal.SIGXCPU:
        return failure_report(timed_out_message(limits), check="timeout")
    if any(marker in error_tail for marker in _MEMORY_MARKERS) or (returncode < 0 and -returncode in _MEMORY_SIGNALS):
        return failure_report(out_of_memory_message(limits), check="memory")
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else -returncode
        return failure_report(f"validation crashed while reading the model (the checking process died of {name}).")
    last_line = next((line for line in reversed(error_tail.splitlines()) if line.strip()), "no output")
    return failure_report(f"validation stopped without a result (exit status {returncode}): {last_line.strip()[:300]}")


# --- the child -------------------------------------------------------------------------------------------------


def _apply_limits(limits: Limits) -> None:
    memory = int(limits.memory_mb) * MIB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, math.ceil(limits.timeout_s) + 5)  # a backstop for the parent's wall clock
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def child_main(argv: list[str]) -> int:
    """Entry point of the child: limits first, then the inspection; one JSON report on the original stdout."""
    report_fd = os.dup(1)
    os.dup2(2, 1)  # whatever native code prints goes to stderr, not into the report
    if len(argv) not in (3, 4) or (len(argv) == 4 and argv[3] not in ("full", "precheck")):
        os.write(report_fd, json.dumps(failure_report("validation was started with wrong arguments.")).encode())
        return 2
    directory, main_file, limits_json = argv[:3]
    mode = argv[3] if len(argv) == 4 else "full"
    limits = Limits.from_dict(json.loads(limits_json))
    _apply_limits(limits)
    try:
        from apps.marketplace.onnx.inspection import inspect_model, precheck_model

        if mode == "precheck":
            report = precheck_model(Path(directory) / main_file, limits)
        else:
            report = inspect_model(directory, main_file, limits)
    except MemoryError:
        report = failure_report(out_of_memory_message(limits), check="memory")
    except RecursionError:
        report = failure_report("validation gave up: the model is nested too deeply to check.")
    except Exception as exc:
        report = failure_report(f"validation failed unexpectedly: {type(exc).__name__}: {str(exc)[:300]}")
    data = json.dumps(report, ensure_ascii=True).encode()
    view = memoryview(data)
    while view:
        written = os.write(report_fd, view)
        view = view[written:]
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
