"""Load weights from a folder or the local Hugging Face cache first, the hub only after that, and
fail in seconds with one line saying what to download and where to put it."""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Callable, TypeVar
from urllib.parse import urlparse

Loaded = TypeVar("Loaded")


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def host_reachable(url: str, timeout: float = 3.0) -> bool:
    """A quick connection test: clients without timeouts, or with retries, would wait far longer."""
    try:
        socket.create_connection((urlparse(url).hostname, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_reachable() -> bool:
    return host_reachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))


def load_local_first(load: Callable[[str, bool], Loaded], name_or_path: str, what: str, error: type[Exception],
                     option: str, folder_layout: str = "") -> Loaded:
    """`load(source, local_files_only)` from a folder or the cache, else from the hub; else `error`,
    whose message says to pass the downloaded folder with the command-line `option`."""
    path = Path(name_or_path).expanduser()
    is_folder = path.is_dir()
    if not is_folder and (path.exists() or name_or_path.count("/") != 1 or name_or_path.startswith((".", "/", "~"))):
        raise error(f"{what} {name_or_path!r}: not a folder and not a hub id like 'owner/name'")
    source = str(path) if is_folder else name_or_path
    try:
        return load(source, True)
    except (OSError, ValueError) as cached_error:
        if is_folder:
            raise error(f"{what} folder {source}: could not load it{folder_layout} "
                        f"({first_line(cached_error)})") from None
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        reason = "HF_HUB_OFFLINE is set"
    elif not hub_reachable():
        reason = "the Hugging Face hub is unreachable from here"
    else:
        try:
            return load(source, False)
        except (OSError, ValueError) as download_error:
            reason = first_line(download_error)
    raise error(
        f"{what} {name_or_path!r}: not in the local Hugging Face cache and could not be downloaded ({reason}). "
        f"On a machine with internet run `hf download {name_or_path} --local-dir DIR`, "
        f"copy DIR here and pass {option} DIR"
    )
