"""Data files that the ``river`` package ships, found without importing river, and read as CSV rows.

The wheel of ``river`` (online machine learning, BSD-3-Clause) carries small real data sets as files in
``river/datasets/``: ``yeast.csv.gz`` and ``solar-flare.csv.zip`` among them. The lab reads those files
directly: :func:`river_file` asks Python's import system where an installed ``river`` package lies
(``importlib.util.find_spec("river")`` locates the folder and runs none of river's code), so river is not
a dependency and nothing of it is imported. A user who has the file elsewhere passes ``root=DIR``.

:func:`read_csv` reads a comma-separated file with a header line, plain, gzipped, or as the single member
of a zip archive (river's ``solar-flare.csv.zip`` holds one member, itself named ``solar-flare.csv.zip``);
an unreadable archive is an error naming the file.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import zipfile
import zlib
from pathlib import Path

from mtl_lab.data.mnist import check_root

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"


def river_file(name: str) -> Path | None:
    """``river/datasets/<name>`` of an installed river package, or ``None`` (no river, or no such file)."""
    try:
        spec = importlib.util.find_spec("river")
    except ValueError:  # a module called river is loaded without a spec: no package folder to look in
        return None
    folders = spec.submodule_search_locations if spec is not None else None
    for folder in folders or ():
        path = Path(folder) / "datasets" / name
        if path.is_file():
            return path
    return None


def find_data_file(dataset: str, root: str | None, names: tuple[str, ...], shipped: str, layout: str) -> Path:
    """The file to read: the first of ``names`` in ``root`` when given, else river's copy ``shipped``.

    With neither, one error that names both ways to get the file.
    """
    if root is not None:
        folder = check_root(root)
        for name in names:
            if (folder / name).is_file():
                return folder / name
        others = f" (or {', '.join(names[1:])})" if len(names) > 1 else ""
        raise FileNotFoundError(f"{folder}: missing {names[0]}{others}; {layout}")
    path = river_file(shipped)
    if path is None:
        raise FileNotFoundError(
            f"{dataset} reads the copy of {shipped} that the river package ships, and no installed river package "
            f"has river/datasets/{shipped}: install it (`pip install river`; the lab reads the file without "
            f"importing river) or pass root=DIR with the file; {layout}"
        )
    return path


def read_text(path: Path) -> str:
    """The text of ``path``: plain, gzipped, or the single member of a zip archive (detected by content)."""
    raw = path.read_bytes()
    try:
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
        elif raw[:4] == ZIP_MAGIC:
            raw = zip_member(path, raw)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
        kind = "gzip" if raw[:2] == GZIP_MAGIC else "zip"
        raise ValueError(f"{path}: not a readable {kind} file ({err}); the file may be truncated") from err
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err}); expected a comma-separated text file") from err


def zip_member(path: Path, raw: bytes) -> bytes:
    """The bytes of the one file inside a zip archive; an archive with several files is an error."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        names = [info.filename for info in archive.infolist() if not info.is_dir()]
        if len(names) != 1:
            raise ValueError(f"{path}: a zip archive must hold exactly one CSV file, this one holds {names}")
        return archive.read(names[0])


def read_csv(path: Path, columns: tuple[str, ...]) -> list[list[str]]:
    """The data rows of a CSV file whose header is exactly ``columns``, each row a list of strings.

    Errors name the file and what is expected: a header with missing or extra columns, a row with another
    number of values or a blank line inside the data (by line number, the header being line 1), a file with no
    data rows. Blank lines at the end are ignored, so data row ``i`` (from 0) is line ``i + 2`` of the file.
    """
    reader = csv.reader(io.StringIO(read_text(path).rstrip("\r\n") + "\n"))
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: the file is empty; expected a header line with the {len(columns)} columns "
                         f"{columns[0]} … {columns[-1]}")
    header = [name.strip() for name in header]
    if tuple(header) != columns:
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        found = f"missing column(s) {missing}" if missing else ""
        found += ("; " if missing and extra else "") + (f"unexpected column(s) {extra}" if extra else "")
        raise ValueError(f"{path}: the header does not match: {found or 'the columns are out of order'}; "
                         f"expected the {len(columns)} columns {', '.join(columns)}")
    rows = []
    for line, row in enumerate(reader, start=2):
        if len(row) != len(columns):
            found = f"{len(row)} values" if row else "a blank line"
            raise ValueError(f"{path}, line {line}: {found}, expected {len(columns)} values (one per column)")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    return rows
