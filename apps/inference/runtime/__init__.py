"""The inference runtime: ONNX Runtime sessions, providers, tensor codecs and input validation.

Nothing here touches the database: workers, the batching task, batch jobs, pipelines and the performance card
all call it with arrays and paths.
"""
