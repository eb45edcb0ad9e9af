"""Batch re-encoding of a folder tree: resumable, safe to interrupt, one JSON line per image.

Rooms: :mod:`~sspcodec.batch.run` (the driver, :func:`run_batch`), :mod:`~sspcodec.batch.jobs`
(one image's job and the run's bookkeeping), :mod:`~sspcodec.batch.manifest` (what this batch
wrote, read defensively), :mod:`~sspcodec.batch.workers` (the local process pool) and
:mod:`~sspcodec.batch.ray_engine` (the same contract on Ray actors; optional).
"""
from .jobs import BatchJob, BatchRun, BatchSummary
from .manifest import MANIFEST_NAME, MAX_MANIFEST_LINE, Manifest, make_folders_inside, model_identity, read_output_file
from .run import LOCK_NAME, SCRATCH_NAME, BatchError, batch_key, check_folders, execute, output_names, run_batch
from .workers import Pool, encode_task, local_pool, make_encoder, worker_setup

__all__ = [
    "LOCK_NAME",
    "MANIFEST_NAME",
    "MAX_MANIFEST_LINE",
    "SCRATCH_NAME",
    "BatchError",
    "BatchJob",
    "BatchRun",
    "BatchSummary",
    "Manifest",
    "Pool",
    "batch_key",
    "check_folders",
    "encode_task",
    "execute",
    "local_pool",
    "make_encoder",
    "make_folders_inside",
    "model_identity",
    "output_names",
    "read_output_file",
    "run_batch",
    "worker_setup",
]
