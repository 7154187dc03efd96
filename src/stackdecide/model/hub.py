"""A model named by its hub id alone: its ``config.json`` fetched from the Hugging Face hub.

``stackdecide model show ORG/NAME`` and a decision whose ``model.id`` (or ``engine.model``) is no
built-in shape and comes with no ``model.config`` read the repository's ``config.json`` here, with
``huggingface_hub``, into its cache (``HF_HUB_CACHE``, else ``HF_HOME``/hub), so a second look
needs no network. vLLM also reads ``hf_quant_config.json`` beside it (ModelOpt checkpoints of 0.29
and earlier: vLLM 0.32 vllm/transformers_utils/config.py get_config), so that file is fetched into
the same snapshot folder when the repository has one. The shape records the commit it came from.

The hub is ``HF_ENDPOINT`` (default https://huggingface.co); ``HF_HUB_OFFLINE=1`` reads the cache
only. Each repository is asked once per process: the audit asks for a candidate's model many times.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stackdecide.errors import StackdecideError
from stackdecide.facts.shapes import ModelShape, find_shape, shape_for_id, shape_from_path

DEFAULT_ENDPOINT = "https://huggingface.co"
CONFIG_FILE = "config.json"
QUANT_CONFIG_FILE = "hf_quant_config.json"
TIMEOUT_S = 10.0  # the file listing is one small request; an unreachable hub must not stall a score
# ORG/NAME as the hub spells repository ids (huggingface_hub validate_repo_id): no path, no URL
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")
CLI_INSTEAD = ("give a model folder or its config.json instead (`stackdecide model show "
               "path/to/folder`; in a decision file, model.config: path/to/config.json), e.g. "
               "fetched on a machine with network by `hf download ORG/NAME config.json`")


class HubUnavailable(StackdecideError):
    """The hub could not give a model's config.json: unreachable, offline, or no such model."""


@dataclass(frozen=True)
class HubSnapshot:
    """The files of one repository commit, as the hub cache holds them."""

    repo_id: str
    commit: str  # the commit sha the files came from
    folder: Path  # <cache>/models--ORG--NAME/snapshots/<commit>
    endpoint: str
    files: tuple[str, ...]  # of CONFIG_FILE and QUANT_CONFIG_FILE, those fetched
    from_cache: bool  # the hub was not asked (offline or unreachable): the cache answered

    @property
    def source(self) -> str:
        """Where the shape came from, with its revision: the file's address at that commit, or
        the cache folder it was read from when the hub was not asked."""
        extra = f" (with {QUANT_CONFIG_FILE})" if QUANT_CONFIG_FILE in self.files else ""
        if self.from_cache:
            return f"{self.repo_id} at commit {self.commit}, from the hub cache {self.folder}{extra}"
        return f"{self.endpoint}/{self.repo_id}/blob/{self.commit}/{CONFIG_FILE}{extra}"


def is_hub_id(value: Any) -> bool:
    """Whether ``value`` reads as a hub repository id (``ORG/NAME``) rather than a local path."""
    if not isinstance(value, str) or not HUB_ID.fullmatch(value) or ".." in value:
        return False
    return not Path(value).expanduser().exists()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}  # as huggingface_hub reads it


def hub_settings() -> tuple[str, Path, bool]:
    """The endpoint, cache folder and offline switch, read from the environment at each call
    (huggingface_hub reads them once, at import)."""
    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if not cache:
        home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
        cache = os.path.join(home, "hub")
    offline = _truthy(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))
    return endpoint, Path(cache).expanduser(), offline


def fetch_config(repo_id: str, revision: str | None = None) -> HubSnapshot:
    """``config.json`` (and ``hf_quant_config.json`` where the repository has one) of ``repo_id``
    at ``revision`` (default: its main branch), fetched into the hub cache; raises
    ``HubUnavailable`` saying why not and how to give a local config instead."""
    endpoint, cache, offline = hub_settings()
    result = _fetch(repo_id, revision, endpoint, str(cache), offline)
    if isinstance(result, str):
        raise HubUnavailable(result)
    return result


@functools.lru_cache(maxsize=256)
def _fetch(repo_id: str, revision: str | None, endpoint: str, cache: str,
           offline: bool) -> HubSnapshot | str:
    """The snapshot, or why there is none: one answer per repository, endpoint and cache in this
    process."""
    import huggingface_hub as hub  # imported here: most commands never need it
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f" at revision {revision}" if revision else ""
    listed: set[str] | None = None  # the repository's files, when the hub answered
    unreachable = "HF_HUB_OFFLINE is set" if offline else f"{endpoint} could not be reached"
    if not offline:
        try:
            info = hub.HfApi(endpoint=endpoint).model_info(repo_id, revision=revision,
                                                           timeout=TIMEOUT_S)
            listed = {sibling.rfilename for sibling in info.siblings or ()}
        except RepositoryNotFoundError:
            return (f"{endpoint} has no model '{repo_id}' (or it is private: log in with "
                    "`hf auth login` or set HF_TOKEN)")
        except RevisionNotFoundError:
            return f"{endpoint}/{repo_id} has no revision '{revision}'"
        except HfHubHTTPError as exc:
            return f"{endpoint} refused the model '{repo_id}': {_first_line(exc)}"
        except Exception as exc:  # a connection error: requests' or httpx', by huggingface_hub version
            unreachable += f" ({type(exc).__name__}: {_first_line(exc)})"
    if listed is not None and CONFIG_FILE not in listed:
        return f"{endpoint}/{repo_id}{at} has no {CONFIG_FILE}: not a model vLLM reads from the hub"

    def download(name: str) -> str:
        return hub.hf_hub_download(repo_id, name, revision=revision, cache_dir=cache,
                                   endpoint=endpoint, local_files_only=listed is None,
                                   etag_timeout=TIMEOUT_S)

    try:
        config = Path(download(CONFIG_FILE))
    except GatedRepoError:
        return (f"{endpoint}/{repo_id} is gated: accept its terms on its page, then log in with "
                "`hf auth login` or set HF_TOKEN")
    except LocalEntryNotFoundError:
        return f"{unreachable}, and {CONFIG_FILE} of '{repo_id}'{at} is not in the hub cache ({cache})"
    except (EntryNotFoundError, HfHubHTTPError, OSError) as exc:
        return f"{CONFIG_FILE} of '{repo_id}'{at} could not be fetched from {endpoint}: {_first_line(exc)}"
    files = [CONFIG_FILE]
    if listed is None or QUANT_CONFIG_FILE in listed:
        try:
            download(QUANT_CONFIG_FILE)
            files.append(QUANT_CONFIG_FILE)
        except EntryNotFoundError:  # offline, and the repository had none when it was cached
            pass
        except (HfHubHTTPError, OSError) as exc:
            return (f"{QUANT_CONFIG_FILE} of '{repo_id}'{at} could not be fetched from {endpoint}: "
                    f"{_first_line(exc)}")
    return HubSnapshot(repo_id, config.parent.name, config.parent, endpoint, tuple(files),
                       from_cache=listed is None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hub_shape(repo_id: str, revision: str | None = None, instead: str = CLI_INSTEAD) -> ModelShape:
    """The shape of ``repo_id`` from its fetched ``config.json``, its source naming the commit;
    raises ``StackdecideError`` saying why not, then ``instead``: how to give a config here."""
    try:
        snapshot = fetch_config(repo_id, revision)
    except HubUnavailable as exc:
        raise HubUnavailable(f"no shape for '{repo_id}': {exc.message}; {instead}") from None
    return replace(shape_from_path(snapshot.folder, repo_id), source=snapshot.source)


def find_model_shape(reference: str) -> ModelShape:
    """A shape by built-in name, hub id of a built-in, model folder or config.json path
    (``facts.shapes.find_shape``), else the ``config.json`` the hub publishes under that id."""
    if is_hub_id(reference) and shape_for_id(reference) is None:
        return hub_shape(reference)
    return find_shape(reference)


def candidate_hub_shape(engine: Mapping[str, Any], spec_id: str | None, where: str
                        ) -> tuple[ModelShape | None, str | None, str | None] | None:
    """For a model with no built-in shape and no local config: the shape fetched for the engine's
    model id (what vLLM loads) or the spec's, where it came from, and without one what the
    decision file should give (``audit.models`` reads the three). None when neither is a hub id."""
    model_id = next((str(name) for name in (engine.get("model"), spec_id) if is_hub_id(name)), None)
    if model_id is None:
        return None
    revision = engine.get("revision")
    instead = f"give {where}.config (a config.json or model folder) or {where}.shape"
    try:
        shape = hub_shape(model_id, str(revision) if revision else None, instead)
    except StackdecideError as exc:
        return None, None, exc.message
    return shape, shape.source, None
