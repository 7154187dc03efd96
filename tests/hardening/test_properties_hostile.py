"""Issue #27 as properties: whatever a decision file, an export, an SQLite file or an env folder
from someone else holds, stackdecide answers with a result or a located error, writes and removes
nothing outside the folder it was pointed at, hands vLLM no option but those the engine keys name,
and shows no secret in any output.

Each example runs in a sandbox of its own: ``work/`` is what stackdecide is pointed at (the
current folder, the store it is given, the run folders, the env folder), ``outside/`` holds
everything else (the file it reads, another application's SQLite file, a folder a link points at)
and must end as it began, byte for byte, with nothing added. Settings
as in test_properties.py: derandomized, a deadline per example and an alarm per test;
``STACKDECIDE_FUZZ=N`` searches N times deeper with fresh random choices.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import sqlite3
import string
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import stackdecide
from engine_inputs import SPEC, plan, write_decision
from stackdecide.envs.build import MANIFEST, MARKER
from stackdecide.errors import DecisionFileError
from stackdecide.evidence.importers import RunContext
from stackdecide.evidence.store import APPLICATION_ID
from stackdecide.launch.plan import LaunchOptions, LaunchRefused
from stackdecide.launch.runs import COMMAND_FILE, OUTCOME_FILE
from stackdecide.launch.server import start_server
from stackdecide.model.problems import Problem
from stackdecide.model.stack import option_name
from stackdecide.report.data import build_report
from stackdecide.report.launch import render_plan
from stackdecide.report.markdown import render_markdown
from stackdecide.report.page import render_html
from stackdecide.vllm.args import VllmArgSpec
from stackdecide.vllm.render import RenderedCommand, render, serve_command

from .conftest import cli, decision_text, vllm_result
from .test_properties import (
    EXPORT,
    check_evidence_text,
    fuzz_settings,
    mutated,
    no_hang,  # noqa: F401  (autouse: a hang fails the test instead of stalling CI)
    spliced,
)

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
GUIDELLM = json.loads((EXPORTS / "guidellm-0.5-benchmarks.json").read_text(encoding="utf-8"))
AIPERF = json.loads((EXPORTS / "aiperf-0.10-concurrency-profile_export_aiperf.json")
                    .read_text(encoding="utf-8"))


# -- the sandbox -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sandbox:
    work: Path  # what stackdecide is pointed at
    outside: Path  # everything else

    def unchanged(self, before: dict[str, str]) -> None:
        after = snapshot(self.outside)
        changed = sorted(name for name in before.keys() | after.keys()
                         if before.get(name) != after.get(name))
        assert not changed, f"written outside {self.work}: {changed}"


@contextlib.contextmanager
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A fresh ``work/`` (the current folder) and ``outside/``, removed afterwards. ``$HOME`` and
    the caches are a third folder, not checked: what matplotlib (the HTML report) caches there is
    the user's machine's, not something a file from someone else chose."""
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    box = Sandbox(root / "work", root / "outside")
    home = root / "home"
    for folder in (box.work, box.outside, home):
        folder.mkdir()
    for variable in ("HOME", "XDG_CACHE_HOME", "STACKDECIDE_CACHE_DIR", "STACKDECIDE_ENV_DIR"):
        monkeypatch.setenv(variable, str(home / variable.lower()))
    with contextlib.chdir(box.work):
        yield box
    shutil.rmtree(root)


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``, links not followed: a file's sha256, a link's target."""
    found = {}
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(parent, name)
            where = str(path.relative_to(folder))
            if path.is_symlink():
                found[where] = f"link to {os.readlink(path)}"
            elif path.is_dir():
                found[where] = "folder"
            else:
                found[where] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def answered(args: Sequence[str]) -> str:
    """Run the CLI: exit 0 or 1, or exit 2 with one ``error:`` line; never a traceback (``cli``
    re-raises one). Returns everything it printed."""
    result = cli(args)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    if result.exit_code == 2:
        assert result.stderr.strip().splitlines()[-1].startswith(("error: ", "Error: ")), \
            result.stderr
    return result.output + result.stderr


# -- no traceback: the exports of other tools ------------------------------------------------------
@fuzz_settings(150)
@given(document=st.one_of(mutated(GUIDELLM, most=4), mutated(AIPERF, most=4)))
def test_guidellm_and_aiperf_exports_any_value_anywhere(document: dict[str, Any]) -> None:
    check_evidence_text(json.dumps(document), RunContext(candidate="a"))


@fuzz_settings(100)
@given(text=st.one_of(spliced(json.dumps(GUIDELLM, indent=1), ["NaN", "1e400", "{", "]", '"',
                                                              ",", "-1", "null", "[]"]),
                      spliced(json.dumps(AIPERF, indent=1), ["Infinity", "9" * 400, "}", "[",
                                                            ":", "true", '"ms"', "0"])))
def test_guidellm_and_aiperf_exports_any_splice(text: str) -> None:
    check_evidence_text(text, RunContext(candidate="a"))


# -- no foreign write: imports and stores ----------------------------------------------------------
# Another application's SQLite file. Its tables are never those of a store made before stackdecide
# marked its stores (the one ``records`` table with a store's columns), which is stackdecide's own.
FOREIGN_TABLES = ("records", "items", "users", "evidence", "settings")
FOREIGN_COLUMNS = ("id", "value", "metric", "name", "payload", "note")


@dataclass(frozen=True)
class ForeignDatabase:
    tables: dict[str, tuple[str, ...]]
    rows: tuple[tuple[Any, ...], ...]
    application_id: int
    user_version: int
    journal_mode: str

    def write(self, path: Path) -> None:
        db = sqlite3.connect(path)
        try:
            db.execute(f"PRAGMA journal_mode = {self.journal_mode}")
            db.execute(f"PRAGMA application_id = {self.application_id}")
            db.execute(f"PRAGMA user_version = {self.user_version}")
            for table, columns in self.tables.items():
                db.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
                for row in self.rows:
                    db.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})",
                               (row * len(columns))[:len(columns)])
            db.commit()
        finally:
            db.close()


cells = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8),
                  st.binary(max_size=8), st.floats(allow_nan=False))
foreign_databases = st.builds(
    ForeignDatabase,
    tables=st.dictionaries(st.sampled_from(FOREIGN_TABLES),
                           st.lists(st.sampled_from(FOREIGN_COLUMNS), min_size=1, max_size=4,
                                    unique=True).map(tuple), min_size=1, max_size=3),
    rows=st.lists(st.tuples(cells, cells), max_size=3).map(tuple),
    application_id=st.one_of(st.just(0), st.integers(-(2**31), 2**31 - 1).filter(
        lambda number: number != APPLICATION_ID)),
    user_version=st.one_of(st.integers(0, 4), st.integers(0, 2**31 - 1)),
    journal_mode=st.sampled_from(["delete", "wal", "truncate", "persist"]))

# What is imported, and whether it needs --candidate (the tools' results name no candidate).
imports = st.one_of(
    st.tuples(mutated(vllm_result(), most=2), st.just(True)),
    st.tuples(mutated(GUIDELLM, most=2), st.just(True)),
    st.tuples(mutated(AIPERF, most=2), st.just(True)),
    st.tuples(mutated(EXPORT, most=2), st.just(False)),
    st.tuples(st.sampled_from([vllm_result(), GUIDELLM, AIPERF]), st.just(True)))
# Where the store is: another application's file, a link to it, or a new file in work/.
STORES = ("foreign", "link-to-foreign", "new", "new-in-a-folder")


@pytest.mark.slow
@fuzz_settings(200)
@given(database=foreign_databases, store=st.sampled_from(STORES), imported=imports)
def test_imports_write_only_into_their_own_store(database: ForeignDatabase, store: str,
                                                 imported: tuple[dict[str, Any], bool],
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``evidence import``, ``evidence list`` and ``score --evidence`` on a store that is another
    application's SQLite file (or a link to one) refuse it and leave it byte for byte, with no
    journal, WAL or other file beside it; a new store is made in work/ only."""
    document, needs_candidate = imported
    with sandbox(tmp_path, monkeypatch) as box:
        foreign = box.outside / "app.sqlite"
        database.write(foreign)
        exported = box.outside / "export.json"
        exported.write_text(json.dumps(document), encoding="utf-8")
        decision = box.outside / "decision.yaml"
        decision.write_text(decision_text(), encoding="utf-8")
        path = {"foreign": foreign, "link-to-foreign": box.work / "link.db",
                "new": box.work / "e.db", "new-in-a-folder": box.work / "a" / "b" / "e.db"}[store]
        if store == "link-to-foreign":
            path.symlink_to(foreign)
        before = snapshot(box.outside)
        answered(["evidence", "import", str(exported), "--evidence", str(path),
                  *(["--candidate", "a"] if needs_candidate else [])])
        answered(["evidence", "list", "--evidence", str(path)])
        answered(["score", str(decision), "--evidence", str(path), "--format", "json"])
        box.unchanged(before)


def crashed_database(folder: Path, journal_mode: str) -> Path:
    """Another application's database as it was when that application died mid-work: in WAL mode
    with its last commits still in the -wal file, or in rollback mode with a hot -journal (the
    pages a transaction had already written over)."""
    live = sqlite3.connect(folder / "live.sqlite", isolation_level=None)
    live.execute(f"PRAGMA journal_mode = {journal_mode}")
    live.execute("PRAGMA wal_autocheckpoint = 0")
    live.execute("PRAGMA cache_size = 1")  # a transaction spills its pages into the file early
    live.execute("CREATE TABLE items (x)")
    live.execute("INSERT INTO items VALUES (1)")
    if journal_mode == "delete":
        live.execute("BEGIN")
        live.executemany("INSERT INTO items VALUES (?)", [(bytes(500),)] * 200)
    crashed = folder / "crashed"
    crashed.mkdir()
    for suffix in ("", "-wal", "-journal"):
        if (folder / f"live.sqlite{suffix}").exists():
            shutil.copyfile(folder / f"live.sqlite{suffix}", crashed / f"app.sqlite{suffix}")
    live.close()
    assert len(list(crashed.iterdir())) == 2  # the file and its pending -wal or -journal
    return crashed / "app.sqlite"


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
def test_a_foreign_database_with_a_hot_journal_is_left_byte_for_byte(tmp_path: Path,
                                                                     journal_mode: str) -> None:
    """Reading it to refuse it must not finish its work for it: no checkpoint of the -wal, no
    rollback of the -journal."""
    foreign = crashed_database(tmp_path, journal_mode)
    before = snapshot(foreign.parent)
    answered(["evidence", "list", "--evidence", str(foreign)])
    answered(["evidence", "import", str(EXPORTS / "vllm-0.25.1-bench-serve.json"), "--candidate",
              "a", "--evidence", str(foreign)])
    assert snapshot(foreign.parent) == before


# -- no foreign removal: env folders ---------------------------------------------------------------
# Entries someone else may have put in an env folder. Only the "marked" ones, folders holding
# stackdecide's marker file (and no environment), are stackdecide's and may be removed.
ENTRIES = ("marked", "marked-holding-a-link-out", "unmarked", "marker-is-a-link",
           "marker-is-a-folder", "link-to-outside", "link-to-a-marked-folder", "dangling-link",
           "file", "unmarked-build")


# What a folder's manifest may say: nothing JSON, the wrong shape, or an environment's.
MANIFESTS = (None, "not json", "[1]", '{"schema": "stackdecide/env/v1"}',
             '{"schema": "stackdecide/env/v1", "lock_sha256": 5, "python_version": "3.11"}',
             '{"schema": "stackdecide/env/v1", "lock_sha256": "ab", "python_version": "3.11", '
             '"distributions": 5}',
             '{"schema": "stackdecide/env/v1", "lock_sha256": "ab12", "python_version": "3.11", '
             '"distributions": ["vllm==0.32.0"]}')


def make_entry(kind: str, path: Path, outside: Path, manifest: str | None) -> None:
    victim, elsewhere = outside / "victim", outside / "marked-elsewhere"
    if kind in ("link-to-outside", "link-to-a-marked-folder", "dangling-link"):
        path.symlink_to({"link-to-outside": victim, "link-to-a-marked-folder": elsewhere,
                         "dangling-link": outside / "nothing"}[kind])
        return
    if kind == "file":
        path.write_text("results\n")
        return
    path.mkdir()
    (path / "results.csv").write_text("a,b\n")
    if manifest is not None:
        (path / "bin").mkdir()
        (path / "bin" / "python").write_text("")
        (path / MANIFEST).write_text(manifest)
    if kind.startswith("marked"):
        (path / MARKER).write_text("{}")
    if kind == "marked-holding-a-link-out":
        (path / "out").symlink_to(victim)
    elif kind == "marker-is-a-link":
        (path / MARKER).symlink_to(elsewhere / MARKER)
    elif kind == "marker-is-a-folder":
        (path / MARKER).mkdir()


DEAD_PID = 4_999_999  # above Linux's largest pid_max: never a live process


@fuzz_settings(100)
@given(entries=st.lists(st.tuples(st.sampled_from(ENTRIES), st.sampled_from(MANIFESTS)),
                       min_size=1, max_size=6),
       prefixes=st.lists(st.text(string.hexdigits + " *.-", max_size=4), max_size=2),
       everything=st.booleans())
def test_env_prune_removes_only_what_stackdecide_made(entries: list[tuple[str, str | None]],
                                                      prefixes: list[str],
                                                      everything: bool, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``env list`` lists, and ``env prune`` (any lock prefixes, ``--all`` or not) removes marked
    folders only: every other entry stays as it was, whatever its manifest says, and nothing a
    link points at is touched."""
    with sandbox(tmp_path, monkeypatch) as box:
        (box.outside / "victim").mkdir()
        (box.outside / "victim" / "data").write_text("keep me")
        (box.outside / "marked-elsewhere").mkdir()
        (box.outside / "marked-elsewhere" / MARKER).write_text("{}")
        envs = box.work / "envs"
        envs.mkdir()
        kinds = [kind for kind, _ in entries]
        names = [f".building-ab-{DEAD_PID}-{index:02x}" if kind == "unmarked-build"
                 else f"{kind}-{index}" for index, kind in enumerate(kinds)]
        for (kind, manifest), name in zip(entries, names, strict=True):
            make_entry(kind, envs / name, box.outside, manifest)
        before, theirs = snapshot(box.outside), snapshot(envs)
        answered(["env", "list", "--env-dir", str(envs)])
        answered(["env", "prune", "--env-dir", str(envs), *(["--all"] if everything else []),
                  "--", *prefixes])
        box.unchanged(before)
        left = snapshot(envs)
        for kind, name in zip(kinds, names, strict=True):
            if kind.startswith("marked"):
                continue
            kept = {where: what for where, what in theirs.items()
                    if where == name or where.startswith(name + os.sep)}
            assert kept.items() <= left.items(), (kind, name)


# -- no flag injection -----------------------------------------------------------------------------
# Words meant to become options of vLLM's command: long, short, joined, dotted, with "=", dashes
# that are no "-", a lone "-", negative numbers (only whole ones are values to vLLM).
OPTION_WORDS = ["--trust-remote-code", "--max-model-len", "--max-model-len=131072", "-tp", "-O3",
                "-O.mode", "-cc", "--config", "--", "-", "-1", "-0.5", "-1e3", "--api-key",
                "--no-trust-remote-code", "—trust-remote-code", "  --x", "-q", "--model",
                "--compilation-config.mode", "a --trust-remote-code", "--served-model-name"]
engine_words = st.one_of(st.sampled_from(OPTION_WORDS), st.text(max_size=8),
                         st.text("-–—−=. x1", max_size=6))
engine_values = st.recursive(
    st.one_of(st.none(), st.booleans(), engine_words, st.integers(-(10**6), 10**6),
              st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(["x", "mode", "--y"]), inner,
                                            max_size=2)),
    max_leaves=6)
ENGINE_KEYS = [*(key for key in SPEC.keys if key != "model"), "max-model-len", "served-model-name",
               "unknown_key", "model_tag"]
engines = st.fixed_dictionaries(
    {"model": st.one_of(st.just("org/model"), engine_words)},
    optional={key: engine_values for key in ENGINE_KEYS})
candidate_envs = st.dictionaries(st.sampled_from(["VLLM_API_KEY", "HF_TOKEN", "LICENSE"]),
                                 st.sampled_from(["k1", "--k2"]), max_size=2)


class ParserRefused(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise ParserRefused(message)


def parser_of(spec: VllmArgSpec) -> Parser:
    """An argparse parser with the options ``spec`` read from vLLM's: what the command must
    parse to. Only the options given appear in what it parses (``SUPPRESS``)."""
    parser = Parser(argument_default=argparse.SUPPRESS, allow_abbrev=False, add_help=False)
    for action in spec.actions.values():
        options = [option for option in action.options if not option.startswith("--no-")]
        if action.positional:
            parser.add_argument(action.dest, nargs="?")
        elif action.kind == "boolean_optional":
            parser.add_argument(*options, dest=action.dest, action=argparse.BooleanOptionalAction)
        elif action.kind in ("store_true", "store_false", "store_const", "count"):
            parser.add_argument(*options, dest=action.dest, action="store_true")  # takes no value
        elif action.nargs == "?":
            parser.add_argument(*options, dest=action.dest, nargs="?", const=True)
        else:
            parser.add_argument(*options, dest=action.dest, nargs=action.nargs,
                                action="append" if action.kind == "append" else "store")
    return parser


def reads_as_option(word: str, known: frozenset[str]) -> bool:
    """Whether vLLM's parser would take ``word`` for an option: one it knows (``-tp``, ``-O3``
    joined), anything starting with ``--``, or any ``-`` word but a negative whole number (its
    parser reads a ``-`` word holding a ``.``, such as ``-0.5``, as a dotted option)."""
    return word.startswith("--") or any(word.startswith(option) for option in known) or (
        word.startswith("-") and re.fullmatch(r"-\d+", word) is None)


def expected_options(engine: dict[str, Any], command: RenderedCommand,
                     spec: VllmArgSpec) -> Counter[str]:
    """The options the engine keys that were rendered into the command name, and the launcher's:
    each once, an ``append`` option once per item."""
    values = {option_name(key): value for key, value in engine.items()}
    expected = Counter(["--host", "--port"])
    for key, shown in command.rendered.items():
        if not shown.startswith("-"):  # rendered into the environment (VLLM_API_KEY=***)
            continue
        action = spec.action(key)
        assert action is not None, key
        value = values[key]
        if action.kind == "boolean_optional" and value is False:
            expected[str(action.negative_option)] += 1
        elif action.kind == "append" and isinstance(value, list):
            expected[action.long_option] += len(value)
        else:
            expected[action.long_option] += 1
    return expected


KNOWN_OPTIONS = frozenset(option for action in SPEC.actions.values() for option in action.options)
PARSER = parser_of(SPEC)


@pytest.mark.slow
@fuzz_settings(500)
@given(engine=engines, env=candidate_envs)
def test_no_value_reaches_vllm_as_an_option(engine: dict[str, Any], env: dict[str, str]) -> None:
    """Every word of the command that vLLM would read as an option is the option of an engine key
    (or the launcher's --host/--port), once; so is every such word of the portable ``vllm serve``
    line; and the command parses, with vLLM's options, to exactly those options."""
    command = render(engine, SPEC, env=env, port=8001)
    expected = expected_options(engine, command, SPEC)
    words = command.argv[3:]
    assert Counter(w for w in words if reads_as_option(w, KNOWN_OPTIONS)) == expected, words
    try:
        parsed = vars(PARSER.parse_args(list(words)))
    except ParserRefused as exc:
        raise AssertionError(f"{words}: {exc}") from None
    given_options = {SPEC.actions[dest].long_option for dest in parsed}
    assert given_options == {option.replace("--no-", "--") for option in expected}, parsed
    portable = shlex.split(serve_command(command))
    at = portable.index("serve") + 1
    model = ["--model"] if "--model" in words else []
    assert Counter([*model, *(w for w in portable[at:] if reads_as_option(w, KNOWN_OPTIONS))]) \
        == expected, portable


# -- no secret in any output -----------------------------------------------------------------------
# The part of a generated secret every output would show unchanged if it leaked: letters and
# digits pass JSON, HTML, shell quoting, CSV and terminal escaping as they are. A secret is such a
# core (letters and digits both, so no word, number or date of an output holds it by chance)
# wrapped in text that quoting and escaping change, or that vLLM would read as an option.
@st.composite
def secrets(draw: st.DrawFn) -> tuple[str, str]:
    letters = draw(st.text(string.ascii_letters, min_size=4, max_size=10))
    digits = draw(st.text(string.digits, min_size=4, max_size=10))
    core = "".join(draw(st.permutations(letters + digits)))
    wrap = st.sampled_from(["", "", "--", "-", " ", "'", '"', "$(", "`", "<b>", "&", "=", "é",
                            "\t", "\\"])
    return core, draw(wrap) + core + draw(wrap)


# Where a decision file can hold a secret; each takes one. ``marked-*`` are names the decision's
# ``secrets`` lists (in another spelling), the others are named like a secret.
PLACES = ("api_key", "api_key-list", "api_key-two", "hf_token", "HF_TOKEN", "env-named",
          "marked-env", "marked-key", "nested")
NAMED_VARIABLES = ("DB_PASSWORD", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY",
                   "VLLM_API_KEY", "HUGGING_FACE_HUB_TOKEN", "MY_CREDENTIALS")
MARKED_VARIABLES = ("LICENSE", "PYTHONPATH", "ORG_ID")
MARKED_KEYS = ("tokenizer_revision", "middleware", "tokenizer", "revision", "served_model_name",
               "model")
OPTIONS = LaunchOptions(timeout_s=30, grace_s=1.0)


@dataclass(frozen=True)
class SecretDecision:
    engine: dict[str, Any]
    env: dict[str, str]
    marked: list[str]
    cores: list[str]  # what no output may hold


@st.composite
def secret_decisions(draw: st.DrawFn) -> SecretDecision:
    engine: dict[str, Any] = {}
    env: dict[str, str] = {}
    marked: list[str] = []
    cores = []
    for place in draw(st.lists(st.sampled_from(PLACES), min_size=1, max_size=4, unique=True)):
        core, secret = draw(secrets())
        cores.append(core)
        if place == "api_key":
            engine["api_key"] = secret
        elif place == "api_key-list":
            engine["api_key"] = [secret]
        elif place == "api_key-two":
            other, second = draw(secrets())
            cores.append(other)
            engine["api_key"] = [secret, second]
        elif place in ("hf_token", "HF_TOKEN"):
            (engine if place == "hf_token" else env)[place] = secret
        elif place == "env-named":
            env[draw(st.sampled_from(NAMED_VARIABLES))] = secret
        elif place == "marked-env":
            name = draw(st.sampled_from(MARKED_VARIABLES))
            env[name] = secret
            marked.append(draw(st.sampled_from([name, name.lower(), name.replace("_", "-")])))
        elif place == "marked-key":
            key = draw(st.sampled_from(MARKED_KEYS))
            engine[key] = draw(st.sampled_from([secret, [secret]]))
            marked.append(draw(st.sampled_from([key, key.upper(), key.replace("_", "-")])))
        else:
            field = draw(st.sampled_from(["api_key", "password", "HF_TOKEN"]))
            engine["kv_transfer_config"] = {"kv_connector_extra_config": {field: secret}}
    # findings beside the secrets: an option in a value, code loading
    engine.update(draw(st.fixed_dictionaries({}, optional={
        "served_model_name": st.just(["tiny", "--x"]), "trust_remote_code": st.just(True),
        "load_format": st.just("dummy")})))
    return SecretDecision(engine, env, marked, cores)


@pytest.mark.slow
@fuzz_settings(120, deadline_s=10)
@given(case=secret_decisions())
def test_no_secret_in_any_output(case: SecretDecision, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``score`` (every format), ``check`` (text and JSON), the markdown and HTML reports, the
    dry run (what ``launch --dry-run`` prints: the plan, its shell line and portable command) and
    the run folder of a refused launch (``command.json``, ``outcome.json``) hold no secret; and
    all of it, of a decision in outside/, writes nothing but in work/."""
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    with sandbox(tmp_path, monkeypatch) as box:
        path = write_decision(box.outside, case.engine, case.env,
                              **({"secrets": case.marked} if case.marked else {}))
        before = snapshot(box.outside)
        shown = [answered(["score", str(path), "--format", fmt])
                 for fmt in ("table", "markdown", "json", "csv")]
        shown += [answered(["check", str(path), "--format", fmt, "--no-engine-keys",
                            "--no-stacks"]) for fmt in ("table", "json")]
        try:
            decision = stackdecide.load(path)
        except DecisionFileError as exc:
            shown.append(str(exc))
        else:
            shown += launch_outputs(decision, path, box.work)
        box.unchanged(before)
    for text in shown:
        for core in case.cores:
            assert core not in text, (core, text)


def launch_outputs(decision: stackdecide.Decision, path: Path, work: Path) -> list[str]:
    """The reports, the dry run, and the run files and message of a launch refused before it
    starts (every plan is refused here, so vLLM never runs)."""
    report = build_report(decision, engine_spec=SPEC)
    shown = [render_markdown(report), render_html(report)]
    launch = plan(path, runs_dir=work / "runs")
    shown += [render_plan(launch), repr(launch)]
    refused = replace(launch, problems=(*launch.problems,
                                        Problem("refused-here", "the test starts nothing")))
    with pytest.raises(LaunchRefused) as refusal:
        start_server(refused, OPTIONS)
    outcome = refusal.value.outcome
    assert outcome is not None
    run = Path(outcome.run_dir)
    assert run.parent == work / "runs"
    return [*shown, str(refusal.value), repr(outcome),
            *((run / name).read_text(encoding="utf-8") for name in (COMMAND_FILE, OUTCOME_FILE))]


def test_a_leaked_secret_would_be_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The search would see a leak: a value under a name that is no secret's shows in the dry
    run, the plan and both run files."""
    with sandbox(tmp_path, monkeypatch) as box:
        path = write_decision(box.outside, {}, {"PLAIN_VALUE": "abcd1234"})
        outputs = launch_outputs(stackdecide.load(path), path, box.work)
    assert sum("abcd1234" in text for text in outputs) >= 4

