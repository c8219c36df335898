"""Batch jobs: a JSONL, CSV or NPZ file of rows in, a file of results out, run as ONE job in chunks of rows.

Upload side (``start_batch_inference``): the file is checked for what can be checked up front without loading it
(its size, that it is not empty, that its content is the format named, that a CSV header or the first JSON row
names the model's inputs, that an NPZ's arrays are the model's inputs with one length along axis 0) and its rows
are counted by streaming it; then the Job (kind ``inference.batch``) and its ``BatchInference`` row are written and
the task is sent when the transaction commits. Each of those refusals is a Django ``ValidationError`` naming the
field (``file``, ``format``, ``file.<array>``): a 400.

Worker side (``run_batch_inference``, called by ``apps.inference.batch_tasks``): the rows are read again from the
stored file, ``chunk_size`` at a time. A chunk's rows are validated one by one (a row that fails is that row's
error, ``rows_failed`` + 1, and the job goes on), merged into one model run (``merge_batch``) when the model has a
batch axis, else run one by one, split back and post-processed row by row. The chunk's results are written as one
*part* of the results file, then ``rows_done`` (and the job's progress and heartbeat) are saved in one transaction,
conditional on this attempt still owning the job. A part is named after its chunk's number, and chunks always start
at multiples of ``chunk_size``: an attempt that restarts after a crash resumes at ``rows_done``, rewrites the part a
crashed attempt may have left half-written, and no row is ever in the results twice. When every row is done, the
parts are joined into one results file (``BatchInference.output_file``) and removed.

Results: JSONL inputs and CSV inputs give JSON Lines, one line per row in row order: ``{"row": i, "outputs": {...},
"answer": ...}`` or ``{"row": i, "error": {"<field>": ["<message>"]}}``. NPZ inputs give an ``.npz`` of each tensor
output stacked over the rows (rows that failed hold NaN, 0, False or ""), ``row_failed`` (bool per row),
``failed_rows`` and ``failed_errors`` (the JSON error of each failed row). ``open_results`` gives what is done so
far at any time: partial results while the job runs and after it failed.

Test hook: ``GPUX_BATCH_CHUNK_DELAY_SECONDS`` in a worker's environment makes it sleep that long before each chunk,
so that a test can kill a worker mid-job. It is not a setting; leave it unset anywhere else.
"""

from __future__ import annotations

from apps.inference.batch.formats import max_batch_file_bytes
from apps.inference.batch.inspection import InspectedFile, inspect_batch_file, resolve_format
from apps.inference.batch.results import Results, open_results, part_name, results_name
from apps.inference.batch.start import BATCH_KIND, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, start_batch_inference
from apps.inference.batch.worker import CHUNK_DELAY_ENV, run_batch_inference

__all__ = [
    "BATCH_KIND",
    "CHUNK_DELAY_ENV",
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "InspectedFile",
    "Results",
    "inspect_batch_file",
    "max_batch_file_bytes",
    "open_results",
    "part_name",
    "resolve_format",
    "results_name",
    "run_batch_inference",
    "start_batch_inference",
]
