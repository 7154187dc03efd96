"""Hostile files and folders: what stackdecide deletes, signals, writes for spreadsheets, prints on a
terminal and expands from YAML, when the input was written to make it do harm.

Each case has an id, a family, the input in words and the verdict, and asserts that verdict.
docs/hostile/files.md is the table of these cases; a test below keeps the two the same.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, SequenceNode

import stackdecide
from stackdecide.cli import main
from stackdecide.envs.build import MANIFEST, MANIFEST_SCHEMA, MARKER
from stackdecide.errors import DecisionFileError
from stackdecide.launch.runs import iso, utc_now
from stackdecide.model import _yaml

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "hostile" / "files.md"
ESC = "\x1b"


@dataclass(frozen=True)
class Case:
    id: str
    family: str
    input: str  # the hostile input, in words (docs/hostile/files.md)
    verdict: str  # what stackdecide does with it
    check: Callable[[Path, pytest.MonkeyPatch], None]  # sets the input up and asserts the verdict


def invoke(args: Sequence[str]) -> Result:
    """``stackdecide ARGS`` as on a terminal: ``color=True`` keeps escape sequences in the output
    (click strips them from what is not a terminal, which would hide them from the test)."""
    result = CliRunner().invoke(main, list(args), color=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def one_error_line(result: Result, code: int, *expected: str) -> str:
    """Assert a refusal: exit ``code``, one ``error:`` line holding ``expected``, nothing raw."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(("error: ", "Error: ")), line
    assert ESC not in line, line
    for text in expected:
        assert text in line, (text, line)
    return line


# -- env prune and the env folder ------------------------------------------------------------------

def _marked(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(json.dumps({"made_by": "stackdecide test"}))
    return folder


def _complete(folder: Path, lock: str) -> Path:
    """A folder that reads as a complete environment (manifest and interpreter)."""
    (folder / "bin").mkdir(parents=True, exist_ok=True)
    (folder / "bin" / "python").write_text("")
    (folder / MANIFEST).write_text(json.dumps({"schema": MANIFEST_SCHEMA, "lock_sha256": lock,
                                               "python_version": "3.11", "distributions": []}))
    return folder


def _prune(tmp: Path, *args: str) -> Result:
    return invoke(["env", "prune", "--env-dir", str(tmp / "envs"), *args])


def _kept(result: Result, path: Path, why: str) -> None:
    assert result.exit_code == 0, result.output
    assert f"removed {path}" not in result.stdout
    assert f"kept {path}: " in result.stdout and why in result.stdout, result.stdout


def prune_keeps_a_users_venv(tmp: Path, _: pytest.MonkeyPatch) -> None:
    venv = tmp / "envs" / "my-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    _kept(_prune(tmp), venv, "not made by stackdecide")
    assert (venv / "pyvenv.cfg").is_file()


def prune_all_keeps_a_folder_of_results(tmp: Path, _: pytest.MonkeyPatch) -> None:
    results = tmp / "envs" / "results"
    results.mkdir(parents=True)
    (results / "results.csv").write_text("a,b\n1,2\n")
    _kept(_prune(tmp, "--all"), results, "not made by stackdecide")
    assert (results / "results.csv").read_text() == "a,b\n1,2\n"


def prune_all_keeps_a_foreign_folder_named_as_a_build(tmp: Path, _: pytest.MonkeyPatch) -> None:
    folder = tmp / "envs" / ".building-0123456789abcdef-999999999-abcdef"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    _kept(_prune(tmp, "--all"), folder, "not made by stackdecide")
    assert (folder / "notes.txt").is_file()


def prune_never_follows_a_link(tmp: Path, _: pytest.MonkeyPatch) -> None:
    target = _complete(_marked(tmp / "elsewhere"), "ab" * 32)  # looks like ours, behind a link
    link = tmp / "envs" / ("ab" * 8)
    link.parent.mkdir()
    link.symlink_to(target)
    result = _prune(tmp, "--all")
    _kept(result, link, "a symbolic link")
    assert link.is_symlink() and (target / MANIFEST).is_file()


def prune_keeps_a_dangling_link(tmp: Path, _: pytest.MonkeyPatch) -> None:
    link = tmp / "envs" / "gone"
    link.parent.mkdir()
    link.symlink_to(tmp / "nowhere")
    _kept(_prune(tmp, "--all"), link, "a symbolic link")
    assert link.is_symlink()


def prune_does_not_trust_a_linked_marker(tmp: Path, _: pytest.MonkeyPatch) -> None:
    real_marker = tmp / "marker"
    real_marker.write_text("{}")
    folder = tmp / "envs" / "theirs"
    folder.mkdir(parents=True)
    (folder / MARKER).symlink_to(real_marker)
    _kept(_prune(tmp, "--all"), folder, "not made by stackdecide")
    assert folder.is_dir()


def _refused_prefix(prefix: str) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def check(tmp: Path, _: pytest.MonkeyPatch) -> None:
        env = _complete(_marked(tmp / "envs" / ("cd" * 8)), "cd" * 32)
        one_error_line(_prune(tmp, prefix), 2, "is not a lock hash", "--all")
        assert (env / MANIFEST).is_file()
    return check


def prune_keeps_an_environment_from_before_the_marker(tmp: Path, _: pytest.MonkeyPatch) -> None:
    env = _complete(tmp / "envs" / ("ef" * 8), "ef" * 32)
    result = _prune(tmp, "ef")
    _kept(result, env, f"built before stackdecide marked its folders (no {MARKER})")
    assert f"rm -rf {env}" in result.stdout
    assert (env / MANIFEST).is_file()


def prune_removes_its_own_stale_build(tmp: Path, _: pytest.MonkeyPatch) -> None:
    stale = _marked(tmp / "envs" / ".building-0123456789abcdef-999999999-abcdef")
    env = _complete(_marked(tmp / "envs" / ("12" * 8)), "12" * 32)
    result = _prune(tmp)
    assert result.exit_code == 0 and result.stdout == f"removed {stale}\n"
    assert not stale.exists() and env.is_dir()


def prune_shows_an_odd_folder_name_escaped(tmp: Path, _: pytest.MonkeyPatch) -> None:
    odd = tmp / "envs" / "x\x1b[2Jwinner"
    odd.mkdir(parents=True)
    for result in (invoke(["env", "list", "--env-dir", str(tmp / "envs")]), _prune(tmp, "--all")):
        assert result.exit_code == 0 and ESC not in result.stdout
        assert "x\\x1b[2Jwinner" in result.stdout
    assert odd.is_dir()


def _env_dir_refused(make: Callable[[Path], Path], *expected: str
                     ) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def check(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("STACKDECIDE_ENV_DIR", str(make(tmp)))
        for command in (["env", "list"], ["env", "prune", "--all"]):
            one_error_line(invoke(command), 2, "$STACKDECIDE_ENV_DIR", *expected)
    return check


def _file(tmp: Path) -> Path:
    (tmp / "envs").write_text("not a folder")
    return tmp / "envs"


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "envs")
    return tmp / "envs"


def _loop(tmp: Path) -> Path:
    (tmp / "a").symlink_to(tmp / "b")
    (tmp / "b").symlink_to(tmp / "a")
    return tmp / "a"


def _dangling(tmp: Path) -> Path:
    (tmp / "envs").symlink_to(tmp / "missing")
    return tmp / "envs"


def _under_a_file(tmp: Path) -> Path:
    (tmp / "file").write_text("")
    return tmp / "file" / "envs"


def env_dir_option_that_is_a_file(tmp: Path, _: pytest.MonkeyPatch) -> None:
    result = invoke(["env", "list", "--env-dir", str(_file(tmp))])
    assert result.exit_code == 2 and "is a file" in result.stderr


# -- run files: stop and ps -----------------------------------------------------------------------

@contextmanager
def _server(argv: Sequence[str] = ("sleep", "300")) -> Iterator[subprocess.Popen[bytes]]:
    """A process group standing in for a server (or for someone else's process)."""
    process = subprocess.Popen(list(argv), start_new_session=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def _run_file(tmp: Path, name: str, **outcome: object) -> Path:
    run_dir = tmp / ".stackdecide" / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / "outcome.json").write_text(json.dumps({"ok": True, "candidate_id": "c",
                                                      "stop": None, **outcome}))
    return run_dir


def _alive(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is None


def _stop_leaves_it(make: Callable[[Path, subprocess.Popen[bytes]], Path], why: str
                    ) -> Callable[[Path, pytest.MonkeyPatch], None]:
    """``stop --all`` and ``stop RUN`` against a forged run file leave its process alone."""
    def check(tmp: Path, _: pytest.MonkeyPatch) -> None:
        with _server() as victim:
            run_dir = make(tmp, victim)
            listed = invoke(["ps"])
            assert listed.exit_code == 0 and "no server of a run here is running" in listed.stdout
            assert invoke(["stop", "--all"]).exit_code == 0
            one_error_line(invoke(["stop", run_dir.name]), 2, why)
            assert _alive(victim)
    return check


def _no_argv(tmp: Path, victim: subprocess.Popen[bytes]) -> Path:
    return _run_file(tmp, "forged-no-argv", pid=victim.pid, pgid=victim.pid,
                     started_at=iso(utc_now()))


def _another_group(tmp: Path, victim: subprocess.Popen[bytes]) -> Path:
    own = subprocess.Popen(["sleep", "301"], start_new_session=True)
    _owned.append(own)
    return _run_file(tmp, "forged-other-group", pid=own.pid, pgid=victim.pid,
                     argv=["sleep", "301"], started_at=iso(utc_now()))


def _copied_argv_other_time(tmp: Path, victim: subprocess.Popen[bytes]) -> Path:
    return _run_file(tmp, "forged-old-time", pid=victim.pid, pgid=victim.pid,
                     argv=["sleep", "300"], started_at="2020-01-01T00:00:00Z")


def _boolean_pid(tmp: Path, victim: subprocess.Popen[bytes]) -> Path:
    return _run_file(tmp, "forged-bool", pid=True, pgid=True, argv=["sleep", "300"],
                     started_at=iso(utc_now()))


_owned: list[subprocess.Popen[bytes]] = []  # processes a case starts besides its victim


@pytest.fixture(autouse=True)
def _reap_owned() -> Iterator[None]:
    yield
    while _owned:
        process = _owned.pop()
        process.kill()
        process.wait(timeout=10)


def run_file_that_is_not_a_mapping(tmp: Path, _: pytest.MonkeyPatch) -> None:
    run_dir = tmp / ".stackdecide" / "runs" / "forged-list"
    run_dir.mkdir(parents=True)
    (run_dir / "outcome.json").write_text("[1, 2, 3]")
    listed = invoke(["ps"])
    assert listed.exit_code == 0 and "no server" in listed.stdout
    one_error_line(invoke(["stop", "forged-list"]), 2, "is not a launch outcome")


def run_file_text_is_shown_escaped(tmp: Path, _: pytest.MonkeyPatch) -> None:
    started_at = iso(utc_now())
    with _server() as server:
        _run_file(tmp, "live", pid=server.pid, pgid=server.pid, argv=["sleep", "300"],
                  started_at=started_at, candidate_id="c\x1b[2J\nwinner: x",
                  url="http://h\u202e:1")
        listed = invoke(["ps"])
        assert listed.exit_code == 0 and ESC not in listed.stdout
        assert "c\\x1b[2J\\nwinner: x" in listed.stdout and "http://h\\u202e:1" in listed.stdout
        assert not any(line.startswith("winner:") for line in listed.stdout.splitlines())


# -- CSV -------------------------------------------------------------------------------------------

def decision(title: str = "Hostile", name: str = "A", criterion_name: str = "Speed",
             source: str | None = None, candidate_id: str = "a", criterion_id: str = "speed",
             model_id: str | None = None) -> str:
    """A valid two-candidate decision; the strings are written as JSON, which YAML reads with its
    escapes (``\\u001b``), so control characters reach the loader as the file means them."""
    quoted = json.dumps
    meta = {"title": title, **({"source": source} if source is not None else {}),
            **({"model": {"id": model_id}} if model_id is not None else {})}
    return f"""schema: stackdecide/v1
decision: {quoted(meta)}
criteria:
  - {{id: {quoted(criterion_id)}, name: {quoted(criterion_name)}, weight: 0.6}}
  - {{id: stability, weight: 0.4}}
candidates:
  - {{id: {quoted(candidate_id)}, name: {quoted(name)},
     scores: {{{quoted(criterion_id)}: 7, stability: 9}}}}
  - {{id: b, scores: {{{quoted(criterion_id)}: 9, stability: 5}}}}
"""


def _score(tmp: Path, text: str, *args: str) -> Result:
    (tmp / "d.yaml").write_text(text, encoding="utf-8")
    return invoke(["score", "d.yaml", *args])


def _csv_name(name: str, cell: str) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def check(tmp: Path, _: pytest.MonkeyPatch) -> None:
        result = _score(tmp, decision(name=name), "--format", "csv")
        assert result.exit_code == 0, result.output
        row = next(line for line in result.stdout.splitlines() if line.startswith("1,a,"))
        assert row.split(",")[2] == cell, row
    return check


def csv_evidence_export_is_escaped(tmp: Path, _: pytest.MonkeyPatch) -> None:
    added = invoke(["evidence", "add", "--evidence", "e.db", "--candidate", "a", "--metric",
                    "decode_tok_s", "--value", "1", "--source", "=cmd|' /C calc'!A0",
                    "--gpu", "@SUM(1+1)"])
    assert added.exit_code == 0, added.output
    exported = invoke(["evidence", "export", "--evidence", "e.db", "--format", "csv"])
    assert exported.exit_code == 0
    row = exported.stdout.splitlines()[1]
    assert ",'@SUM(1+1)," in row and ",'=cmd|' /C calc'!A0," in row, row


# -- names on a terminal, ids at load --------------------------------------------------------------

def _shown_escaped(raw: str, escaped: str, command: str = "score",
                   formats: Sequence[str] = ("table", "markdown"), **fields: str
                   ) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def check(tmp: Path, _: pytest.MonkeyPatch) -> None:
        (tmp / "d.yaml").write_text(decision(**fields), encoding="utf-8")
        for fmt in formats:
            args = [command, "d.yaml"] + (["--format", fmt] if command == "score" else [])
            result = invoke(args)
            assert result.exit_code == 0, result.output
            assert raw not in result.stdout and escaped in result.stdout, result.stdout
            lines = result.stdout.splitlines()
            assert sum(line.startswith("winner:") for line in lines) <= 1, result.stdout
    return check


def _id_refused(where: str, escaped: str, **fields: str
                ) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def check(tmp: Path, _: pytest.MonkeyPatch) -> None:
        line = one_error_line(_score(tmp, decision(**fields)), 2, where, escaped,
                              "an id cannot hold")
        assert re.match(r"error: d\.yaml:\d+:\d+ ", line), line
    return check


def error_quoting_a_key_is_escaped(tmp: Path, _: pytest.MonkeyPatch) -> None:
    text = decision().replace("stability: 9}", 'stability: 9, "sp\\e[2Jeed": 1}')
    one_error_line(_score(tmp, text), 2, "no criterion 'sp\\x1b[2Jeed'")


# -- YAML bombs ------------------------------------------------------------------------------------

def flatten_mapping_6_0_2(self: yaml.SafeLoader, node: MappingNode) -> None:
    """PyYAML 6.0.2's merge resolution (``SafeConstructor.flatten_mapping``), which the
    dependency range allows: every merged pair is copied, repeats included, so merges of merges
    grow geometrically. 6.0.3 and later drop repeated keys."""
    merge: list[tuple[yaml.Node, yaml.Node]] = []
    index = 0
    while index < len(node.value):
        key_node, value_node = node.value[index]
        if key_node.tag == "tag:yaml.org,2002:merge":
            del node.value[index]
            if isinstance(value_node, MappingNode):
                self.flatten_mapping(value_node)
                merge.extend(value_node.value)
            elif isinstance(value_node, SequenceNode):
                submerge = []
                for subnode in value_node.value:
                    if not isinstance(subnode, MappingNode):
                        raise ConstructorError("while constructing a mapping", node.start_mark,
                                               f"expected a mapping for merging, but found "
                                               f"{subnode.id}", subnode.start_mark)
                    self.flatten_mapping(subnode)
                    submerge.append(subnode.value)
                submerge.reverse()
                for value in submerge:
                    merge.extend(value)
            else:
                raise ConstructorError("while constructing a mapping", node.start_mark,
                                       f"expected a mapping or list of mappings for merging, "
                                       f"but found {value_node.id}", value_node.start_mark)
        elif key_node.tag == "tag:yaml.org,2002:value":
            key_node.tag = "tag:yaml.org,2002:str"
            index += 1
        else:
            index += 1
    if merge:
        node.value = merge + node.value


def merge_bomb(levels: int, width: int = 9) -> str:
    """Mappings that merge the one before ``width`` times, all inside one merge: 6 levels are 400
    bytes that PyYAML 6.0.2 expands to 9**7 pairs before any value is built."""
    items = ["&l0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9}"]
    items += [f"&l{n} {{<<: [{', '.join([f'*l{n - 1}'] * width)}]}}" for n in range(1, levels + 1)]
    return "x-bomb: {<<: [" + ", ".join(items) + "]}\n" + decision()


def merge_chain(levels: int) -> str:
    """Each mapping merges the one before and adds a key: quadratic in pairs, in any PyYAML."""
    items = ["&l0 {k0: 0}"] + [f"&l{n} {{<<: *l{n - 1}, k{n}: {n}}}" for n in range(1, levels + 1)]
    return "x-chain: {<<: [" + ", ".join(items) + "]}\n" + decision()


def _yaml_refused(text: Callable[[], str], *expected: str, peak_mb: float = 16.0,
                  pyyaml_6_0_2: bool = False) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def check(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        if pyyaml_6_0_2:
            monkeypatch.setattr(_yaml._SafeComposer, "flatten_mapping", flatten_mapping_6_0_2)
        written = text()
        tracemalloc.start()
        try:
            with pytest.raises(DecisionFileError) as refused:
                stackdecide.parse(written, "bomb.yaml")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        message = str(refused.value)
        assert message.startswith("bomb.yaml:"), message
        for part in expected:
            assert part in message, message
        assert peak < peak_mb * 2**20, f"{peak / 2**20:.0f} MiB before refusing"
    return check


def alias_bomb(levels: int) -> str:
    """Lists of ten aliases of the list before: 10**(levels + 1) values from a few hundred bytes."""
    lines = ["x-a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"x-{n}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 10)}]"
              for n in range(levels)]
    return "\n".join(lines) + "\n" + decision()


def _nested_merges(depth: int) -> str:
    return "x-deep: " + "{<<: " * depth + "{k: 1}" + "}" * depth + "\n" + decision()


# -- package names ---------------------------------------------------------------------------------

def _package_refused(name: str, extras: Sequence[str] = ()
                     ) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def check(tmp: Path, _: pytest.MonkeyPatch) -> None:
        stack = {"vllm": "0.30.0", "extras": list(extras)} if extras else {"packages": {name: "1.0"}}
        text = decision().replace("- {id: b, ", f"- {{id: b, stack: {json.dumps(stack)}, ")
        (tmp / "d.yaml").write_text(text)
        result = invoke(["env", "resolve", "d.yaml", "--candidate", "b"])
        assert result.exit_code == 1, result.output
        assert "b: cannot be installed as pinned" in result.stdout
        assert "is not a package or extra name" in result.stdout, result.stdout
        assert "pins: -" in result.stdout  # nothing is handed to the resolver
    return check


CASES = [
    Case("prune-user-venv", "env prune",
         "a user's virtual environment (no marker) in the env folder",
         "kept and named; never removed", prune_keeps_a_users_venv),
    Case("prune-all-results", "env prune", "`env prune --all` with a folder holding results.csv",
         "kept and named; results.csv intact", prune_all_keeps_a_folder_of_results),
    Case("prune-fake-build-name", "env prune", "an unmarked folder named like an unfinished build",
         "kept and named", prune_all_keeps_a_foreign_folder_named_as_a_build),
    Case("prune-link-to-env", "env prune", "a symlink to a marked environment elsewhere",
         "kept as a link, never followed; target intact", prune_never_follows_a_link),
    Case("prune-dangling-link", "env prune", "a symlink to nothing", "kept as a link",
         prune_keeps_a_dangling_link),
    Case("prune-linked-marker", "env prune", "a folder whose `.stackdecide-env` is a symlink",
         "not a marker: kept", prune_does_not_trust_a_linked_marker),
    Case("prune-empty-prefix", "env prune", "`env prune ''` (would match every lock)",
         "refused, exit 2; nothing removed", _refused_prefix("")),
    Case("prune-blank-prefix", "env prune", "`env prune '   '`",
         "refused, exit 2; nothing removed", _refused_prefix("   ")),
    Case("prune-glob-prefix", "env prune", "`env prune '*'`",
         "refused, exit 2; nothing removed", _refused_prefix("*")),
    Case("prune-legacy-env", "env prune",
         "an environment built before markers, named by its lock",
         "kept, with the `rm -rf` that removes it by hand",
         prune_keeps_an_environment_from_before_the_marker),
    Case("prune-own-stale-build", "env prune", "a marked unfinished build of a dead process",
         "removed (and only it)", prune_removes_its_own_stale_build),
    Case("prune-escape-name", "env prune", "a folder named `x<ESC>[2Jwinner` in the env folder",
         "listed and kept with the name escaped", prune_shows_an_odd_folder_name_escaped),
    Case("env-dir-file", "env folder", "`STACKDECIDE_ENV_DIR` naming a file",
         "one error line, exit 2", _env_dir_refused(_file, "is a file, not a folder")),
    Case("env-dir-fifo", "env folder", "`STACKDECIDE_ENV_DIR` naming a FIFO",
         "one error line, exit 2, no blocking", _env_dir_refused(_fifo, "FIFO")),
    Case("env-dir-link-loop", "env folder", "`STACKDECIDE_ENV_DIR` naming a symlink loop",
         "one error line, exit 2", _env_dir_refused(_loop, "cannot be used")),
    Case("env-dir-dangling", "env folder", "`STACKDECIDE_ENV_DIR` naming a symlink to nothing",
         "one error line, exit 2", _env_dir_refused(_dangling, "does not exist")),
    Case("env-dir-under-file", "env folder", "`STACKDECIDE_ENV_DIR` below a file (`file/envs`)",
         "one error line, exit 2", _env_dir_refused(_under_a_file, "cannot be used")),
    Case("env-dir-option-file", "env folder", "`--env-dir FILE`",
         "refused by the option, exit 2", env_dir_option_that_is_a_file),
    Case("run-no-argv", "run files", "a run file naming a live process group, without `argv`",
         "not listed; `stop` refuses it, the process lives",
         _stop_leaves_it(_no_argv, "records no command")),
    Case("run-other-group", "run files",
         "a run file whose process matches but whose `pgid` is another group",
         "not listed; the other group lives",
         _stop_leaves_it(_another_group, "leads its own process group")),
    Case("run-copied-argv", "run files",
         "a run file copying a live process's argv, with another start time",
         "not listed; the process lives",
         _stop_leaves_it(_copied_argv_other_time, "did not start when")),
    Case("run-boolean-pid", "run files", "a run file with `pid: true`",
         "not listed; nothing signalled",
         _stop_leaves_it(_boolean_pid, "leads its own process group")),
    Case("run-not-mapping", "run files", "`outcome.json` holding a JSON list",
         "no traceback; not a run", run_file_that_is_not_a_mapping),
    Case("run-escapes-in-ps", "run files",
         "a live run whose candidate id and url hold ESC, newline, U+202E",
         "`ps` shows them escaped", run_file_text_is_shown_escaped),
    Case("csv-equals", "CSV", "a candidate named `=HYPERLINK(\"http://x\")`",
         "cell written `'=HYPERLINK(...)`",
         _csv_name('=HYPERLINK("http://x")', '"\'=HYPERLINK(""http://x"")"')),
    Case("csv-plus", "CSV", "a candidate named `+1+cmd`", "cell written `'+1+cmd`",
         _csv_name("+1+cmd", "'+1+cmd")),
    Case("csv-minus", "CSV", "a candidate named `-2+3`", "cell written `'-2+3`",
         _csv_name("-2+3", "'-2+3")),
    Case("csv-at", "CSV", "a candidate named `@SUM(A1)`", "cell written `'@SUM(A1)`",
         _csv_name("@SUM(A1)", "'@SUM(A1)")),
    Case("csv-number", "CSV", "a candidate named `-5`", "a number: written as is",
         _csv_name("-5", "-5")),
    Case("csv-evidence", "CSV",
         "evidence with source `=cmd...!A0` and GPU `@SUM(1+1)`, exported as CSV",
         "both cells start with `'`", csv_evidence_export_is_escaped),
    Case("name-fake-winner", "terminal text", "a candidate named `A<LF>winner: b`",
         "shown `A\\nwinner: b`; one `winner:` line",
         _shown_escaped("A\nwinner", "A\\nwinner: b", name="A\nwinner: b")),
    Case("name-csi-clear", "terminal text", "a candidate named `A<ESC>[2J`",
         "shown `A\\x1b[2J`", _shown_escaped(ESC, "A\\x1b[2J", name="A\x1b[2J")),
    Case("name-c1-csi", "terminal text", "a candidate named `A<U+009B>2J` (one-byte CSI)",
         "shown `A\\x9b2J`", _shown_escaped("\x9b", "A\\x9b2J", name="A\x9b2J")),
    Case("name-rlo", "terminal text", "a candidate named `A<U+202E>b`", "shown `A\\u202eb`",
         _shown_escaped("\u202e", "A\\u202eb", name="A\u202eb")),
    Case("name-zero-width", "terminal text", "a candidate named `A<U+200B>`",
         "shown `A\\u200b`", _shown_escaped("\u200b", "A\\u200b", name="A\u200b")),
    Case("name-line-separator", "terminal text", "a candidate named `A<U+2028>b`",
         "shown `A\\u2028b`", _shown_escaped("\u2028", "A\\u2028b", name="A\u2028b")),
    Case("title-osc", "terminal text", "a title `T<ESC>]0;pwned<BEL>` (sets the window title)",
         "shown `T\\x1b]0;pwned\\x07`",
         _shown_escaped(ESC, "T\\x1b]0;pwned\\x07", title="T\x1b]0;pwned\x07")),
    Case("source-isolate", "terminal text", "a source `s<U+2066>x`", "shown `s\\u2066x`",
         _shown_escaped("\u2066", "s\\u2066x", source="s\u2066x")),
    Case("criterion-name-sensitivity", "terminal text",
         "a criterion named `Sp<LF>eed`, in `sensitivity`", "shown `Sp\\need`",
         _shown_escaped("Sp\need", "Sp\\need", "sensitivity", ("table",),
                        criterion_name="Sp\need")),
    Case("id-zero-width", "ids", "a candidate id `a<U+200B>`",
         "refused at load, located, naming `\\u200b`",
         _id_refused("candidates[0].id", "\\u200b", candidate_id="a\u200b")),
    Case("id-rlo", "ids", "a criterion id `sp<U+202E>eed`",
         "refused at load, located, naming `\\u202e`",
         _id_refused("criteria[0].id", "\\u202e", criterion_id="sp\u202eeed")),
    Case("id-escape", "ids", "a candidate id `a<ESC>[31m`", "refused at load; no ESC in the error",
         _id_refused("candidates[0].id", "\\x1b", candidate_id="a\x1b[31m")),
    Case("model-id-escape", "ids", "a model id `org/m<ESC>[2J`", "refused at load, located",
         _id_refused("decision.model.id", "\\x1b", model_id="org/m\x1b[2J")),
    Case("key-escape-error", "ids", "a score key `sp<ESC>[2Jeed` (an unknown criterion)",
         "the error quotes it escaped", error_quoting_a_key_is_escaped),
    Case("yaml-merge-bomb", "YAML bombs",
         "400 bytes of merges of merges (9**7 pairs under PyYAML 6.0.2)",
         "refused before expanding, under 16 MiB",
         _yaml_refused(lambda: merge_bomb(6), "merge keys (<<) expand", pyyaml_6_0_2=True)),
    Case("yaml-merge-bomb-new-pyyaml", "YAML bombs", "the same merges under the installed PyYAML",
         "refused the same way", _yaml_refused(lambda: merge_bomb(6), "merge keys (<<) expand")),
    Case("yaml-merge-chain", "YAML bombs", "700 mappings each merging the one before (quadratic)",
         "refused before expanding",
         _yaml_refused(lambda: merge_chain(700), "merge keys (<<) expand")),
    Case("yaml-merge-self", "YAML bombs", "`&a {k: 1, <<: *a}` (a mapping merging itself)",
         "refused, located",
         _yaml_refused(lambda: "x-self: &a {k: 1, <<: *a}\n" + decision(), "merges itself")),
    Case("yaml-merge-deep", "YAML bombs", "merges nested 60 deep", "refused, located",
         _yaml_refused(lambda: _nested_merges(60), "nest deeper than")),
    Case("yaml-alias-bomb", "YAML bombs", "a billion-laughs alias bomb (10**7 values)",
         "refused (more than 200000 values), under 64 MiB",
         _yaml_refused(lambda: alias_bomb(6), "more than 200000 values", peak_mb=64)),
    Case("yaml-recursive-alias", "YAML bombs", "`&a [*a]` (a list inside itself)",
         "refused (nesting)",
         _yaml_refused(lambda: "x-r: &a [*a]\n" + decision(), "nesting deeper than")),
    Case("pkg-file-url", "package names", "`packages: {'evil @ file:///tmp/e.whl#': '1.0'}`",
         "bad pin, exit 1; nothing resolved or installed",
         _package_refused("evil @ file:///tmp/e.whl#")),
    Case("pkg-https-url", "package names", "`packages: {'evil@https://x/e.whl#': '1.0'}`",
         "bad pin, exit 1", _package_refused("evil@https://x/e.whl#")),
    Case("pkg-marker", "package names", "`packages: {\"evil; python_version>'0'\": '1.0'}`",
         "bad pin, exit 1", _package_refused("evil; python_version>'0'")),
    Case("pkg-option", "package names", "`packages: {'evil --index-url https://x': '1.0'}`",
         "bad pin, exit 1", _package_refused("evil --index-url https://x")),
    Case("pkg-extra-url", "package names", "`extras: ['x] @ file:///tmp/e.whl#']`",
         "bad pin, exit 1", _package_refused("", extras=("x] @ file:///tmp/e.whl#",))),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case.check(tmp_path, monkeypatch)


def table_row(case: Case) -> str:
    return f"| `{case.id}` | {case.family} | {case.input} | {case.verdict} |"


def test_the_table_of_cases_is_the_list_tested() -> None:
    """docs/hostile/files.md lists exactly these cases, in this order."""
    assert len(CASES) >= 35 and len({case.id for case in CASES}) == len(CASES)
    rows = [line for line in TABLE.read_text().splitlines() if line.startswith("| `")]
    assert rows == [table_row(case) for case in CASES]
