"""Records, written once for every job: what an edit's record holds, and how a record on disk
differs from the one a run would write, in words that name each field."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    from ..artifacts import Inversion
    from ..editing.options import EditOptions
    from ..models import Model
    from .masks import MaskFile


def record_differences(recorded: Mapping, wanted: Mapping, keys: Iterable[str],
                       labels: Mapping[str, str] = {}) -> list[str]:
    """Each of `keys` whose value differs, as "<label> <recorded>, not <wanted>" ("steps 10, not 20")."""
    return [f"{labels.get(key, key)} {recorded.get(key)!r}, not {wanted.get(key)!r}"
            for key in keys if recorded.get(key) != wanted.get(key)]


def edit_record(target: str, options: EditOptions, inversion: Inversion, model: Model, inversion_sha256: str,
                mask: MaskFile | None = None) -> dict:
    """What made an edit, as written into its PNG chunk and JSON sidecar (and compared on resume):
    the target, the options, the inversion it starts from, by content, and the painted mask if any
    (no mask: no mask keys, so the records of edits made before masks existed still match). The
    same for `p2p-real edit`, the sweep's edits and the benchmark's."""
    return json.loads(json.dumps({
        "prompt": target, "source_prompt": inversion.prompt, "steps": inversion.num_steps,
        "guidance": inversion.guidance_scale, "method": inversion.method, "model": model.name,
        "model_fingerprint": model.fingerprint, "inversion_sha256": inversion_sha256, **asdict(options),
        **({} if mask is None else mask.settings()),
    }))
