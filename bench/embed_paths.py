"""The embedding paths of ``bench/ingest.py --paths`` and ``--ray`` (see that file's docstring)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from engine.datastore.embed import load_embedder, set_torch_threads

PATHS = (("torch", "fp32"), ("torch", "bf16"), ("openvino", "fp32"), ("openvino", "bf16"))
TOP = 100


def sample_values(datastore: Path, n: int) -> list[str]:
    """The first ``n`` distinct non-empty cell texts of every ``*.parquet`` under ``datastore``, in md5 order."""
    import pyarrow.parquet as pq

    seen: set[str] = set()
    for f in sorted(datastore.rglob("*.parquet")):
        table = pq.read_table(f)
        for column in table.columns:
            seen.update(str(v) for v in column.to_pylist() if v is not None and str(v).strip())
    return sorted(seen, key=lambda t: hashlib.md5(t.encode()).hexdigest())[:n]


def queries(tasks: Path) -> list[str]:
    """The 24 task instructions, then the first example input of the first tasks: 30 queries."""
    specs = [json.loads(f.read_text()) for f in sorted(tasks.glob("*.json"))]
    out = [s["instruction"] for s in specs]
    out += [s["examples"][0]["input"] for s in specs[: max(0, 30 - len(out))]]
    return out[:30]


def _items(texts: list[str]) -> list[tuple[int, str]]:
    return list(enumerate(texts, 1))


def _embed_all(embedder, texts: list[str], batch_size: int) -> tuple[np.ndarray, float, float]:
    """Vectors in input order, wall seconds, CPU seconds (one chunk: batches sorted by length)."""
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    c0, t0 = time.process_time(), time.perf_counter()
    for keys, vecs in embedder.stream([_items(texts)], batch_size):
        out[keys.astype(np.int64) - 1] = vecs
    return out, time.perf_counter() - t0, time.process_time() - c0


def overlap(reference: np.ndarray, other: np.ndarray, q: np.ndarray) -> tuple[float, float]:
    """Mean and min share of each query's float32 top-100 that ``other`` keeps."""
    ref = np.argsort(-(reference @ q.T), axis=0)[:TOP].T
    got = np.argsort(-(other @ q.T), axis=0)[:TOP].T
    shares = [len(set(a) & set(b)) / TOP for a, b in zip(ref, got, strict=True)]
    return float(np.mean(shares)), float(np.min(shares))


def _load(backend: str, precision: str, device: str):
    try:
        emb = load_embedder("all-MiniLM-L6-v2", device, precision=precision, backend=backend)
    except Exception as exc:  # noqa: BLE001 - a path this machine cannot run is reported, not fatal
        return None, str(exc)
    emb.encode(["warm up the model once"] * 8, batch_size=8)
    return emb, ""


def _load_sample(args: argparse.Namespace) -> tuple[list[str], np.ndarray, int]:
    threads = set_torch_threads(args.threads)
    texts = sample_values(args.datastore, args.values)
    q = load_embedder("all-MiniLM-L6-v2", "cpu").encode(queries(args.datastore.parent / "tasks"))
    return texts, q, threads


def run_paths(args: argparse.Namespace) -> int:
    """values/s and overlap for every backend × precision this machine runs."""
    texts, q, threads = _load_sample(args)
    mean_chars = sum(map(len, texts)) / len(texts)
    rows, reference, base = [], None, None
    for backend, precision in PATHS:
        emb, why = _load(backend, precision, args.device)
        if emb is None:
            rows.append({"path": f"{backend} {precision}", "skipped": why})
            continue
        vecs, wall, cpu = _embed_all(emb, texts, args.batch_size)
        if reference is None:
            reference, base = vecs, len(texts) / wall
        mean, low = overlap(reference, vecs, q)
        rate = len(texts) / wall
        rows.append({"path": f"{backend} {precision}", "values_per_s": round(rate, 1),
                     "cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "speedup": round(rate / base, 2),
                     "overlap_mean": round(mean, 3), "overlap_min": round(low, 3)})
    result = {"values": len(texts), "mean_chars": round(mean_chars, 1), "threads": threads,
              "batch_size": args.batch_size, "load": os.getloadavg(), "paths": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{len(texts):,} distinct values (mean {mean_chars:.0f} chars), {threads} thread(s), batch "
          f"{args.batch_size}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'path':<16} {'values/s':>9} {'x fp32':>7} {'wall s':>7} {'CPU s':>7} {'overlap':>8} {'min':>6}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['path']:<16} skipped: {r['skipped']}")
            continue
        print(f"{r['path']:<16} {r['values_per_s']:>9.1f} {r['speedup']:>7.2f} {r['wall_s']:>7.1f} "
              f"{r['cpu_s']:>7.1f} {r['overlap_mean']:>8.3f} {r['overlap_min']:>6.2f}")
    return 0


def run_ray(args: argparse.Namespace) -> int:
    """The same values at the same precision: in this process (``--threads`` threads) vs. a local Ray with as
    many CPUs and one single-threaded actor per CPU. Overhead = Ray seconds / in-process seconds."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from engine.datastore.ray_embed import CHUNK_VALUES, RayEmbedder

    texts, q, threads = _load_sample(args)
    chunks = [_items(texts)[i:i + CHUNK_VALUES] for i in range(0, len(texts), CHUNK_VALUES)]
    t0 = time.perf_counter()
    local, _ = _load("torch", args.precision, args.device)
    assert local is not None
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = np.zeros((len(texts), local.dim), dtype=np.float32)
    for keys, vecs in local.stream(chunks, args.batch_size):
        ref[keys.astype(np.int64) - 1] = vecs
    t_local = time.perf_counter() - t0

    ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False)
    try:
        t0 = time.perf_counter()
        remote = RayEmbedder("all-MiniLM-L6-v2", workers=threads, device=args.device, precision=args.precision)
        t_start = time.perf_counter() - t0
        got = np.zeros_like(ref)
        t0 = time.perf_counter()
        for keys, vecs in remote.stream(chunks, args.batch_size):
            got[keys.astype(np.int64) - 1] = vecs
        t_ray = time.perf_counter() - t0
    finally:
        ray.shutdown()
    result = {"values": len(texts), "cpus": threads, "precision": local.precision,
              "in_process_s": round(t_local, 2), "in_process_load_s": round(t_load, 2),
              "ray_s": round(t_ray, 2), "ray_probe_s": round(t_start, 2),
              "overhead": round(t_ray / t_local, 3), "overhead_with_start": round((t_ray + t_start) /
                                                                                (t_local + t_load), 3),
              "max_abs_diff": float(np.abs(got - ref).max()), "load": os.getloadavg()}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{len(texts):,} values, {local.precision}, {threads} CPU(s), load average {os.getloadavg()[0]:.1f}")
    print(f"in-process ({threads} torch threads)   {t_local:7.1f} s   (+ {t_load:.1f} s model load)")
    print(f"Ray ({threads} actors x 1 thread)     {t_ray:7.1f} s   (+ {t_start:.1f} s start and probe; actor "
          "start-up is inside the Ray figure)")
    print(f"overhead                          {result['overhead']:7.3f}   (goal <= 1.3); with start-up "
          f"{result['overhead_with_start']:.3f}")
    print(f"largest difference between the two paths' vectors: {result['max_abs_diff']:.2e}")
    return 0
