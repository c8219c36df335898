"""ONNX model inspection for the marketplace: pure functions, no Django models.

* ``validation.validate_model(directory, main_file, limits)`` runs every check in a child process with memory
  and time limits and returns a report dict (``ok``, ``errors``, ``signature``, ``onnx_info``,
  ``detected_task``, ``manifest``); the child is ``python -m apps.marketplace.onnx.validation``.
* ``inspection.inspect_model`` is what the child runs (never call it in a worker on untrusted files).
* ``signature`` turns graph inputs and outputs into JSON; ``task_detection`` guesses the task;
  ``manifest`` parses, validates and writes ``gpux.yml``.

See docs/user/onnx-validation.md and docs/user/gpux-yml.md.
"""
