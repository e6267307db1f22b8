"""Scale out on Ray: ``detect`` over a Ray Dataset of paths.

Two stages, streamed by Ray Data. Decoding and face tracking (``pipeline.decode_stretches``,
about 98 % of a file's CPU time) run in CPU tasks, one file at a time; their output is
small (lip landmarks and log-mel, no pixels). The model half (``pipeline.measure_stretches``:
scoring, offsets, calibration, the record) runs in a pool of actors that each load the model
once, on a GPU each where the cluster has them. An actor scores one file per call, the file's
chunks in forward passes of ``batch_size``; chunks of different files are not mixed in one
forward pass. Both halves are the code ``detect`` runs, so a record is the same as the
local path's. Needs the ``ray`` extra: ``pip install 'fcnsync[ray]'``.
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

from .batch import WorkerSettings, guarded
from .errors import FcnsyncError
from .pipeline import DEFAULT_MAX_LAG, Result, TrackResult

FILES_PER_BLOCK = 1  # files per decode task: a file that kills its task takes no others along
DECODE_RETRIES = 1  # a decode task whose process dies is tried again once (a lost node), no more
LISTING_BLOCKS = 10_000  # at most this many blocks of paths are made on the driver; Ray splits
# them further as it goes (a million one-path blocks up front would be a million objects)
FILES_PER_MODEL_CALL = 1  # files per model-actor call: records stream back as files finish
CPU_FILES_PER_MODEL_ACTOR = 32  # without GPUs: one model actor per this many decoding CPUs
# CPU slots a model actor holds without a GPU: none, since scoring is ~2 % of a file's CPU time
# and a slot held by a mostly idle actor would keep a decode task from running
MODEL_ACTOR_CPUS = 0.0
PATH_COLUMNS = ("path", "text", "item")  # a path column of the input, first found wins


class RayMissingError(FcnsyncError):
    """The Ray engine was asked for but Ray is not installed."""


def require_ray() -> Any:
    """The ``ray`` module, or ``RayMissingError`` saying how to install it."""
    try:
        import ray  # noqa: PLC0415
        import ray.data  # noqa: F401, PLC0415
    except ImportError as exc:
        raise RayMissingError(
            "the Ray engine needs the ray extra: pip install 'fcnsync[ray]'"
        ) from exc
    return ray


def init(num_cpus: int | None = None, quiet: bool = False) -> None:
    """Connect to the Ray cluster named by ``RAY_ADDRESS``, or start a local one (with
    ``num_cpus`` CPUs, default all) if there is none. No-op if Ray is already initialised."""
    ray = require_ray()
    if ray.is_initialized():
        return
    import logging  # noqa: PLC0415

    ray.init(num_cpus=num_cpus, logging_level=logging.WARNING, log_to_driver=not quiet)
    ray.data.DataContext.get_current().enable_progress_bars = not quiet


def _process_setup() -> None:
    """In a Ray worker process (idempotent): one torch thread (Ray gives each task its CPUs), the
    landmark library's native log lines kept off the driver's console."""
    import torch  # noqa: PLC0415

    from .faces import silence_native_stderr  # noqa: PLC0415

    silence_native_stderr()
    torch.set_num_threads(1)


def _decode_file(path: str, max_lag: int) -> list[Any]:
    from .faces import FaceTracker  # noqa: PLC0415
    from .pipeline import decode_stretches  # noqa: PLC0415

    return list(decode_stretches(path, FaceTracker(), max_lag))


DecodeFile = Callable[[str, int], list[Any]]


def _decode_batch(
    batch: dict[str, Any], max_lag: int, decode_file: DecodeFile
) -> dict[str, list[Any]]:
    """CPU stage: each path's stretches (``decode_stretches``), or its error ``Result``,
    pickled, with the seconds spent."""
    _process_setup()
    paths = [str(p) for p in batch["path"]]
    payloads, seconds = [], []
    for path in paths:
        t0 = time.perf_counter()
        decoded = guarded(path, partial(decode_file, path, max_lag))
        payloads.append(pickle.dumps(decoded, protocol=pickle.HIGHEST_PROTOCOL))
        seconds.append(time.perf_counter() - t0)
    return {"path": paths, "stretches": payloads, "decode_s": seconds}


class _Scorer:
    """Model stage: an actor that loads the model once and makes each file's record from its
    stretches (``measure_stretches``)."""

    def __init__(self, settings: WorkerSettings):
        from .calibration import load_calibration  # noqa: PLC0415
        from .model import load_model  # noqa: PLC0415

        _process_setup()
        self.settings = settings
        self.model = load_model(settings.weights, device=settings.device)
        self.calibration = load_calibration(settings.calibration)

    def __call__(self, batch: dict[str, Any]) -> Any:
        import pyarrow as pa  # noqa: PLC0415

        from .pipeline import measure_stretches  # noqa: PLC0415
        from .writers import record_schema  # noqa: PLC0415

        s = self.settings
        records = []
        for path, payload, decode_s in zip(
            batch["path"], batch["stretches"], batch["decode_s"], strict=True
        ):
            path = str(path)
            decoded = pickle.loads(payload)
            if not isinstance(decoded, Result):
                t0 = time.perf_counter() - float(decode_s)  # elapsed_s counts both stages
                measure = partial(
                    measure_stretches,
                    path,
                    decoded,
                    self.model,
                    self.calibration,
                    s.max_lag,
                    s.batch_size,
                    t0,
                )
                decoded = guarded(path, measure)
            records.append(decoded.to_dict())
        return pa.Table.from_pylist(records, schema=record_schema())


def _with_path_column(ds: Any) -> Any:
    names = ds.schema().names
    for name in PATH_COLUMNS:
        if name in names:
            return ds if name == "path" else ds.rename_columns({name: "path"})
    raise FcnsyncError(f"the dataset has no path column (one of {', '.join(PATH_COLUMNS)})")


def detect_dataset(
    ds: Any,
    weights: str | None = None,
    calibration: str | None = None,
    device: str | None = None,
    max_lag: int = DEFAULT_MAX_LAG,
    batch_size: int = 16,
    model_actors: int | None = None,
    num_gpus: float | None = None,
    decode_file: DecodeFile = _decode_file,
) -> Any:
    """``detect`` on every path of the Ray Dataset ``ds`` (a column ``path``, or the ``text``
    column of ``ray.data.read_text``). Returns a lazy Ray Dataset of records, the objects of
    ``detect``'s JSON output without evidence (``writers.record_schema()``); a file that fails
    is an error record. ``batch_size``: chunks per forward pass, as in ``detect``. A file whose
    decoding kills its process (a native crash) fails its task; with Ray Data's
    ``DataContext.max_errored_blocks`` set, the job goes on without that file's record.

    ``num_gpus``: GPUs per model actor (default 1 if the cluster has GPUs, else 0);
    ``model_actors``: how many (default: one per GPU, or one per
    ``CPU_FILES_PER_MODEL_ACTOR`` CPUs without GPUs)."""
    ray = require_ray()
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    if num_gpus is None:
        num_gpus = 1.0 if gpus else 0.0
    if model_actors is None:
        per_actor = max(num_gpus, 1e-9)
        model_actors = int(gpus / per_actor) if num_gpus else 1 + cpus // CPU_FILES_PER_MODEL_ACTOR
    if device is None and not num_gpus:
        device = "cpu"
    settings = WorkerSettings(weights, calibration, device, max_lag, batch_size)
    paths = (
        _with_path_column(ds)
        .select_columns(["path"])
        .repartition(target_num_rows_per_block=FILES_PER_BLOCK)
    )
    with warnings.catch_warnings():
        # Ray Data's default is to retry a task whose process died for ever, which a file that
        # crashes the decoder would do; max_retries has no named parameter yet (ray < 2.64)
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        decoded = paths.map_batches(
            _decode_batch,
            fn_kwargs={"max_lag": max_lag, "decode_file": decode_file},
            num_cpus=1,
            batch_size=None,
            max_retries=DECODE_RETRIES,
        )
    return decoded.map_batches(
        _Scorer,
        fn_constructor_args=(settings,),
        batch_size=FILES_PER_MODEL_CALL,
        compute=ray.data.ActorPoolStrategy(size=max(1, model_actors)),
        num_cpus=MODEL_ACTOR_CPUS if not num_gpus else 1,
        num_gpus=num_gpus,
        batch_format="numpy",
    )


def result_from_record(record: dict[str, Any]) -> Result:
    """A record (as in the dataset ``detect_dataset`` returns) back as a ``Result``."""
    tracks = [TrackResult(**t) for t in record.get("tracks") or []]
    return Result(**{**record, "tracks": tracks})


def run_paths(
    paths: list[str],
    settings: WorkerSettings,
    on_result: Callable[[int, Result], None],
    model_actors: int | None = None,
    decode_file: DecodeFile = _decode_file,
) -> None:
    """The Ray counterpart of ``batch.run_parallel``: measure ``paths`` on the Ray cluster
    (``init`` first) and call ``on_result(index, Result)`` on this process as records stream
    back, in completion order. A file whose decoding crashes its process gets an error record
    once the others are done."""
    from .pipeline import error_result  # noqa: PLC0415

    ray = require_ray()
    ray.data.DataContext.get_current().max_errored_blocks = -1  # one block is one file
    blocks = max(1, min(LISTING_BLOCKS, len(paths) // FILES_PER_BLOCK))
    ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
    results = detect_dataset(
        ds,
        settings.weights,
        settings.calibration,
        settings.device,
        settings.max_lag,
        settings.batch_size,
        model_actors=model_actors,
        decode_file=decode_file,
    )
    where: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        where.setdefault(p, []).append(i)
    try:
        for batch in results.iter_batches(batch_format="pyarrow", batch_size=None):
            for record in batch.to_pylist():
                on_result(where[record["path"]].pop(0), result_from_record(record))
    except ray.exceptions.RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FcnsyncError(f"the Ray job failed: {first}") from exc
    for path, left in where.items():  # no record: its decode task died, retried or not
        for i in left:
            on_result(i, error_result(path, "the decoder crashed, or its Ray task died"))
