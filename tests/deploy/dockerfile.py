"""What a Dockerfile builds, read without Docker (no engine runs on the test machines).

- ``parse``: the instructions (continuation lines joined, comments dropped) and ``Image``, what
  they add up to: base image, ``ENV`` (as the running container sees it), ``WORKDIR``,
  ``COPY``s, ``RUN``s, final ``USER``, ``EXPOSE``, ``ENTRYPOINT``.
- ``DockerIgnore``: the build context's ``.dockerignore`` with Docker's semantics: patterns
  relative to the context root, ``*``/``?`` within one path element, ``**`` across any number,
  a match on a directory excluding everything below it, ``!`` re-including, the last
  matching pattern deciding.
- ``copied_files``: image path -> context path of every file the ``COPY``s put in the image
  (a directory source copies its contents, not itself; ignored files are not sent).
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array form (``["python", "-m", "webhook"]``), or None for shell form."""
        try:
            value = json.loads(self.args)
        except ValueError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]
    dest: str  # absolute, resolved against the WORKDIR in force
    flags: tuple[str, ...]


@dataclass
class Image:
    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[Copy] = field(default_factory=list)
    runs: list[Instruction] = field(default_factory=list)
    user: str | None = None
    #: Index in ``instructions`` of the last USER (RUNs before it run as root).
    user_at: int | None = None
    expose: list[str] = field(default_factory=list)
    entrypoint: Instruction | None = None
    cmd: Instruction | None = None
    instructions: list[Instruction] = field(default_factory=list)


def instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
        pending = ""
    if pending:
        raise ValueError(f"line {start}: the last instruction ends with a continuation")
    return found


def _env_pairs(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:  # the legacy `ENV KEY value with spaces`
        return {words[0]: " ".join(words[1:])}
    pairs = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"ENV {args!r}: {word!r} is not KEY=value")
        pairs[key] = value
    return pairs


def parse(text: str) -> Image:
    image = Image(instructions=instructions(text))
    for index, ins in enumerate(image.instructions):
        if ins.keyword == "FROM":
            if image.base:
                raise ValueError(f"line {ins.line}: a multi-stage build is not read here")
            image.base = ins.args.split()[0]
        elif ins.keyword == "ENV":
            image.env.update(_env_pairs(ins.args))
        elif ins.keyword == "WORKDIR":
            image.workdir = posixpath.normpath(posixpath.join(image.workdir, ins.args))
        elif ins.keyword in ("COPY", "ADD"):
            words = ins.exec_form() or shlex.split(ins.args)
            flags = tuple(w for w in words if w.startswith("--"))
            paths = [w for w in words if not w.startswith("--")]
            dest = posixpath.join(image.workdir, paths[-1])
            dest = posixpath.normpath(dest) + ("/" if paths[-1].endswith("/") else "")
            image.copies.append(Copy(tuple(paths[:-1]), dest, flags))
        elif ins.keyword == "RUN":
            image.runs.append(ins)
        elif ins.keyword == "USER":
            image.user, image.user_at = ins.args, index
        elif ins.keyword == "EXPOSE":
            image.expose += ins.args.split()
        elif ins.keyword == "ENTRYPOINT":
            image.entrypoint = ins
        elif ins.keyword == "CMD":
            image.cmd = ins
    return image


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


class DockerIgnore:
    """The patterns of a ``.dockerignore``; ``ignored(path)`` for a context-relative path."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            cleaned = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
            self.rules.append((keep, _pattern_regex(cleaned)))

    def ignored(self, path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        verdict = False
        for keep, regex in self.rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                verdict = not keep
        return verdict


def copied_files(image: Image, context: Path, ignore: DockerIgnore) -> dict[str, str]:
    """Image path -> context-relative path of every file the COPYs put in the image."""
    placed: dict[str, str] = {}
    for copy in image.copies:
        if any(flag.startswith("--from") for flag in copy.flags):
            raise ValueError("COPY --from is not read here")
        into_dir = copy.dest.endswith("/") or len(copy.sources) > 1
        for source in copy.sources:
            root = posixpath.normpath(source)
            origin = context / root
            if origin.is_dir():
                files = sorted(p for p in origin.rglob("*") if p.is_file())
                for path in files:
                    relative = path.relative_to(context).as_posix()
                    if not ignore.ignored(relative):
                        inside = path.relative_to(origin).as_posix()
                        placed[posixpath.join(copy.dest, inside)] = relative
            elif origin.is_file() and not ignore.ignored(root):
                name = posixpath.basename(root)
                placed[posixpath.join(copy.dest, name) if into_dir else copy.dest] = root
    return placed
