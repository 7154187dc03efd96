"""Real wheels for offline tests: tiny pure-Python packages written into a folder (a wheelhouse)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = (),
               files: int = 1) -> Path:
    """Write ``name-version-py3-none-any.whl`` with ``files`` modules; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    contents: dict[str, bytes] = {}
    for index in range(files):
        contents[f"{module}/m{index}.py" if files > 1 else f"{module}/__init__.py"] = \
            f"VALUE = {index}\n".encode()
    if files > 1:
        contents[f"{module}/__init__.py"] = b""
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    contents[f"{info}/METADATA"] = metadata.encode()
    contents[f"{info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: stackdecide-tests\n"
                                 b"Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = [_record_line(path, data) for path, data in contents.items()]
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in contents.items():
            archive.writestr(member, data)
    return path


def stack_decision(path: Path, *candidates: str, measure: str = "") -> Path:
    """A CPU decision file with one criterion ``c`` (measured by ``measure`` when given) and these
    candidates, each the inside of a YAML flow mapping (``id: new, stack: {...}``), all judged 5."""
    criterion = "{id: c, weight: 1" + (f", measure: {measure}" if measure else "") + "}"
    lines = "".join(f"  - {{{candidate}, scores: {{c: 5}}}}\n" for candidate in candidates)
    path.write_text("schema: stackdecide/v1\ndecision: {title: t, hardware: {gpu: cpu}}\n"
                    f"criteria: [{criterion}]\ncandidates:\n{lines}")
    return path
