"""Finding datasets on disk: dataset folders, collections, hub caches, single files (cards: :mod:`engine.datastore.cards`).

* A **dataset folder** (like a Hugging Face dataset repository) has a ``README.md`` card at its top and data
  files below. When the card's front matter lists ``configs`` with ``data_files``, they are followed;
  otherwise the first-level subfolder names the config (``default`` for files at the top or under
  ``data/``) and the split comes from a folder or file name (``train``, ``validation``/``valid``/``dev``,
  ``test``, ``train-00000-of-00002`` ...); files without a split name count as ``train``.
* A ``save_to_disk`` folder (``dataset_dict.json`` or ``state.json``) reads its Arrow files per split.
* A **hub cache** folder ``datasets--ORG--NAME`` reads its newest snapshot (``refs/main`` first).
* A **collection** folder holds dataset folders (or hub cache folders) below it; loose files beside them
  (a ``catalog.jsonl``) are not datasets and are ignored with a log line.
* A single data file is a dataset of its own (config ``default``).

Dataset ids come from cards, folder names and file stems (:mod:`engine.datastore.ids`). A file or folder that
cannot be read is reported in ``skipped`` (or the dataset's ``problems``) and the rest is scanned.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.datastore.cards import card_description, card_labels, clean_markdown, cut, parse_card
from engine.datastore.cells import class_labels, storable
from engine.datastore.ids import checked_id, id_from_folder, pretty_id
from engine.datastore.readers import file_format
from engine.datastore.splits import SPLIT_ALIASES, normalize_split, split_of
from engine.errors import EngineError

IGNORED_SUFFIXES = {".md", ".txt", ".py", ".yaml", ".yml", ".lock", ".png", ".jpg", ".jpeg", ".gif", ".svg",
                    ".webp", ".bmp", ".tif", ".tiff", ".pdf", ".wav", ".mp3", ".flac", ".ogg", ".mp4", ".ipynb",
                    ".cfg", ".toml", ".sh", ".html", ".bib", ".tex", ".license", ".rst", ".gitkeep", ""}
METADATA_FILES = {"dataset_infos.json", "dataset_info.json", "dataset_dict.json", "state.json",
                  "dataset_state.json", "readme.md"}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".7z", ".rar", ".bz2", ".xz", ".zst")


@dataclass
class ConfigSource:
    """One config's files of the chosen split."""

    name: str
    split: str
    files: list[Path]


@dataclass
class DatasetSource:
    """A dataset found on disk: its id, where it is, its card and the configs of the chosen split."""

    name: str
    root: Path
    card: str | None = None
    description: str = ""
    configs: list[ConfigSource] = field(default_factory=list)
    labels: dict[str, list[str]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # unreadable / unknown files
    other_splits: set[str] = field(default_factory=set)


# -- discovery -----------------------------------------------------------------------------------
def _hidden(p: Path) -> bool:
    return p.name.startswith(".") or p.name == "__pycache__"


def _subdirs(d: Path) -> list[Path]:
    try:
        return sorted(c for c in d.iterdir() if c.is_dir() and not _hidden(c))
    except OSError:
        return []


def _is_marked_dataset(d: Path) -> bool:
    """A folder that certainly is one dataset (card, save_to_disk manifest, hub cache entry)."""
    return ((d / "README.md").is_file() or (d / "dataset_dict.json").is_file() or (d / "state.json").is_file()
            or (d.name.startswith("datasets--") and (d / "snapshots").is_dir()))


def _has_data(d: Path, depth: int = 4) -> bool:
    _entering(d)
    try:
        entries = list(d.iterdir())
    except OSError:
        return False
    for e in entries:
        if _hidden(e):
            continue
        if e.is_file() and file_format(e):
            return True
        if e.is_dir() and depth > 0 and _has_data(e, depth - 1):
            return True
    return False


def _is_collection(d: Path, depth: int = 2) -> bool:
    _entering(d)
    if _is_marked_dataset(d) or depth <= 0:
        return False
    for c in _subdirs(d):
        if c.name.startswith(("models--", "spaces--")):
            continue
        if _is_marked_dataset(c) or _is_collection(c, depth - 1):
            return True
    return False


def _hub_snapshot(d: Path) -> Path | None:
    snaps = d / "snapshots"
    ref = d / "refs" / "main"
    if ref.is_file():
        target = snaps / ref.read_text(encoding="utf-8").strip()
        if target.is_dir():
            return target
    candidates = [s for s in _subdirs(snaps)] if snaps.is_dir() else []
    return max(candidates, key=lambda s: s.stat().st_mtime) if candidates else None


@dataclass
class Discovery:
    """What a set of paths holds: datasets, and paths that are no dataset (with the reason)."""

    datasets: list[DatasetSource] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_on_folder: ContextVar[Callable[[Path], None] | None] = ContextVar("on_folder", default=None)
"""Called with every folder the walk enters (what :func:`discover`'s ``on_folder`` was given)."""


def _entering(folder: Path) -> None:
    hook = _on_folder.get()
    if hook is not None:
        hook(folder)


def discover(paths: Sequence[str | Path], split: str = "train", dataset_id: str | None = None, *,
             on_folder: Callable[[Path], None] | None = None) -> Discovery:
    """Find every dataset below ``paths`` and the files of its configs' ``split``.

    ``dataset_id`` (``ingest --id``) names the one dataset found instead of its card or folder; paths
    holding several are an EngineError (one id cannot name them all). ``on_folder`` is called with each
    folder entered (progress; an exception it raises ends the walk).
    """
    split = normalize_split(split)
    given = checked_id(dataset_id) if dataset_id is not None else None
    token = _on_folder.set(on_folder)
    try:
        found = _discover(paths, split)
    finally:
        _on_folder.reset(token)
    for ds in found.datasets:  # a file or folder name that is not UTF-8: the id keeps U+FFFD
        ds.name = storable(ds.name)[0]
    if given is not None:
        if len(found.datasets) > 1:
            names = ", ".join(ds.name for ds in found.datasets[:3]) + (", ..." if len(found.datasets) > 3 else "")
            raise EngineError(f"--id {given} names one dataset, but the path(s) hold {len(found.datasets)} "
                              f"({names})", fix="pass that one dataset's folder or file with --id, or leave --id out")
        for ds in found.datasets:
            ds.name = given
    return found


def _discover(paths: Sequence[str | Path], split: str) -> Discovery:
    found = Discovery()
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            if not path.exists():
                found.skipped.append((str(path), "no such file or directory"))
                continue
            path = path.resolve()
            if path == Path(path.anchor):  # walking the whole file system (and /proc) takes hours, never datasets
                found.skipped.append((str(path), "the root of the file system — pass the folder that holds your "
                                                 "datasets"))
                continue
            if path.is_file():
                _add_file_dataset(path, split, found)
            elif path.is_dir():
                _scan_dir(path, split, found, top=True)
            else:
                found.skipped.append((str(path), "not a regular file or directory"))
        except OSError as exc:  # an unreadable folder is one more bad input, never the end of the run
            found.skipped.append((str(path), os_reason(exc)))
    return found


def os_reason(exc: OSError) -> str:
    """Why a file or folder could not be read, as a skipped entry says it."""
    if isinstance(exc, PermissionError):
        return "permission denied — make it readable"
    return f"cannot read it ({exc.strerror or type(exc).__name__})"


def _add_file_dataset(path: Path, split: str, found: Discovery) -> None:
    fmt = file_format(path)
    if fmt is None:
        why = ("an archive — unpack it first" if path.name.lower().endswith(ARCHIVE_SUFFIXES)
               else "unknown format (expected .parquet, .arrow, .jsonl, .json, .csv or .tsv)")
        found.skipped.append((str(path), why))
        return
    file_split = split_of(path.name) or "train"
    stem = path.name.split(".")[0]
    name = path.parent.name if split_of(stem) == stem.lower() or stem.lower() in SPLIT_ALIASES else stem
    ds = DatasetSource(name=name, root=path)
    if file_split == split:
        ds.configs.append(ConfigSource("default", split, [path]))
    else:
        ds.other_splits.add(file_split)
    found.datasets.append(ds)


def _scan_dir(d: Path, split: str, found: Discovery, top: bool = False) -> None:
    _entering(d)
    if d.name.startswith("datasets--") and (d / "snapshots").is_dir():
        snap = _hub_snapshot(d)
        if snap is None:
            found.skipped.append((str(d), "hub cache folder without a snapshot"))
            return
        found.datasets.append(_dataset_folder(snap, split, id_from_folder(d.name)))
        return
    if _is_marked_dataset(d):
        found.datasets.append(_dataset_folder(d, split, id_from_folder(d.name)))
        return
    if _is_collection(d):
        for c in _subdirs(d):
            if c.name.startswith(("models--", "spaces--")):
                continue
            try:
                if _is_marked_dataset(c) or _is_collection(c) or _has_data(c):
                    _scan_dir(c, split, found)
            except OSError as exc:  # one unreadable dataset folder: report it, scan its siblings
                found.skipped.append((str(c), os_reason(exc)))
        loose = sorted(f.name for f in d.iterdir() if f.is_file() and not _hidden(f) and file_format(f))
        if loose:
            found.notes.append(f"{d}: loose files beside the dataset folders are not datasets, ignored: "
                               + ", ".join(loose[:5]) + (" ..." if len(loose) > 5 else ""))
        return
    if _has_data(d):
        found.datasets.append(_dataset_folder(d, split, id_from_folder(d.name)))
    elif top:
        found.skipped.append((str(d), "no dataset found (no data files, no dataset card)"))


def _data_files_spec(spec: Any) -> dict[str, list[str]]:
    """HF ``data_files`` (str, list of str, list of {split, path}, or {split: path(s)}) → {split: patterns}."""
    out: dict[str, list[str]] = {}

    def add(split: str, pats: Any) -> None:
        pats = [pats] if isinstance(pats, str) else [p for p in (pats or []) if isinstance(p, str)]
        out.setdefault(normalize_split(str(split)), []).extend(pats)

    if isinstance(spec, str):
        add("train", spec)
    elif isinstance(spec, dict):
        for split, pats in spec.items():
            add(split, pats)
    elif isinstance(spec, list):
        for item in spec:
            if isinstance(item, str):
                add("train", item)
            elif isinstance(item, dict) and "path" in item:
                add(item.get("split", "train"), item["path"])
    return out


def _glob(root: Path, pattern: str) -> list[Path]:
    pattern = pattern.lstrip("/")
    return sorted(p for p in root.glob(pattern) if p.is_file())


def _dataset_folder(root: Path, split: str, folder_id: str) -> DatasetSource:
    card_path = root / "README.md"
    card = meta = None
    body = ""
    problems: list[tuple[str, str]] = []
    if card_path.is_file():
        try:
            card = card_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            card = None
            problems.append((str(card_path), f"{os_reason(exc)}; the card was left out"))
        if card is not None:
            meta, body = parse_card(card)
    meta = meta or {}
    ds = DatasetSource(name=pretty_id(meta) or folder_id, root=root, card=card, problems=problems)
    if card:
        ds.description = card_description(body)
    infos = _read_json_file(root / "dataset_infos.json")
    if not ds.description and isinstance(infos, dict):
        for info in infos.values():
            if isinstance(info, dict) and str(info.get("description") or "").strip():
                ds.description = cut(clean_markdown(str(info["description"])))
                break
    if isinstance(infos, dict):
        for info in infos.values():
            if isinstance(info, dict) and info.get("features"):
                ds.labels.update(class_labels(info["features"]))
    ds.labels.update(card_labels(meta))

    configs_meta = meta.get("configs")
    if isinstance(configs_meta, list) and any(isinstance(c, dict) and c.get("data_files") for c in configs_meta):
        for c in configs_meta:
            if not isinstance(c, dict) or not c.get("data_files"):
                continue
            name = str(c.get("config_name") or "default")
            splits = _data_files_spec(c["data_files"])
            for s in splits:
                if s != split:
                    ds.other_splits.add(s)
            files: list[Path] = []
            for pat in splits.get(split, []):
                matched = _glob(root, pat)
                if not matched:
                    ds.problems.append((str(root / pat), "the card's data_files pattern matches no file"))
                files += matched
            files = [f for f in dict.fromkeys(files)]
            if files:
                ds.configs.append(ConfigSource(name, split, files))
        return ds
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        _save_to_disk_configs(root, split, ds)
        return ds
    _layout_configs(root, split, ds)
    return ds


def _read_json_file(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _save_to_disk_configs(root: Path, split: str, ds: DatasetSource) -> None:
    manifest = _read_json_file(root / "dataset_dict.json")
    if isinstance(manifest, dict) and isinstance(manifest.get("splits"), list):
        split_dirs = {normalize_split(str(s)): root / str(s) for s in manifest["splits"]}
    else:
        split_dirs = {"train": root}
    for s, sdir in split_dirs.items():
        if s != split:
            ds.other_splits.add(s)
            continue
        state = _read_json_file(sdir / "state.json")
        files = []
        if isinstance(state, dict) and isinstance(state.get("_data_files"), list):
            files = [sdir / f["filename"] for f in state["_data_files"] if isinstance(f, dict) and "filename" in f]
        if not files:
            files = sorted(sdir.glob("*.arrow"))
        info = _read_json_file(sdir / "dataset_info.json")
        if isinstance(info, dict):
            ds.labels.update(class_labels(info.get("features") or {}))
            if not ds.description and str(info.get("description") or "").strip():
                ds.description = cut(clean_markdown(str(info["description"])))
        if files:
            ds.configs.append(ConfigSource("default", split, files))


def _files_below(root: Path, ds: DatasetSource) -> list[Path]:
    """Every regular file below ``root``, sorted; a subfolder that cannot be listed is noted in
    ``ds.problems`` (``Path.rglob`` passes over it in silence, and its files would be lost unsaid)."""
    def unreadable(exc: OSError) -> None:
        ds.problems.append((str(exc.filename or root), os_reason(exc)))

    files = []
    for folder, dirs, names in os.walk(root, onerror=unreadable):  # symlinked folders are not followed
        _entering(Path(folder))
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in names:
            path = Path(folder) / name
            try:
                if path.is_file():
                    files.append(path)
            except OSError as exc:  # a folder that may be listed but not searched
                unreadable(exc)
    return sorted(files)


def _layout_configs(root: Path, split: str, ds: DatasetSource) -> None:
    by_config: dict[str, list[Path]] = {}
    for path in _files_below(root, ds):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.name.lower() in METADATA_FILES:
            continue
        fmt = file_format(path)
        if fmt is None:
            lower = path.name.lower()
            if lower.endswith(ARCHIVE_SUFFIXES):
                ds.problems.append((str(path), "an archive — unpack it first"))
            elif path.suffix.lower() not in IGNORED_SUFFIXES and not lower.startswith(("license", "copying")):
                ds.problems.append((str(path), "unknown format (expected .parquet, .arrow, .jsonl, .json, "
                                               ".csv or .tsv)"))
            continue
        parts = rel.parts
        if len(parts) == 1 or parts[0] == "data":
            config, middle = "default", parts[1:-1] if parts[0] == "data" else ()
        else:
            config, middle = parts[0], parts[1:-1]
        file_split = None
        for folder in middle:
            file_split = split_of(folder) if split_of(folder) == normalize_split(folder) else None
            if file_split:
                break
        file_split = file_split or split_of(path.name) or "train"
        if file_split != split:
            ds.other_splits.add(file_split)
            continue
        by_config.setdefault(config, []).append(path)
    for config in sorted(by_config):
        ds.configs.append(ConfigSource(config, split, by_config[config]))
