"""Online serving: synchronous predictions with no per-request database write (docs/operator/inference.md).

* ``access``: the web process's short-lived decisions (which deployment or version a route names and whether the
  caller may run it), computed by ``restrict()`` on a miss (apps/core/shortlived.py gives the bound);
* ``messages``: a request and its answer on the wire (a JSON header and the tensors' raw bytes) and the Redis keys;
* ``gateway``: the web side: push the request onto its queue's Redis list, wait on its own reply key, tell a dead
  worker from a slow one, answer 503 with ``Retry-After`` when no answer can come;
* ``loop``: the worker side: a thread in each inference worker process that takes requests off the list, merges
  them into batches (up to the deployment's ``max_batch_size``, waiting up to its ``max_delay_ms`` only while busy),
  runs one ONNX Runtime call per batch and answers each request on its reply key.

Durable jobs (``?async=1``, ``Prefer: respond-async``, webhooks, batch jobs, pipelines) keep the Job row path.
"""
