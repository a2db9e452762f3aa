"""What a verb is asked to do: one frozen request per verb, built from the command line by
runs/flags.py (every flag checked once, before torch is imported) and handed whole to its job.
Nothing here imports torch; `ModelChoice.load` imports the loader when it is called.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..defaults import DEFAULT_METHOD, DEFAULT_MODEL
from ..editing.options import EditOptions
from ..eval.pareto import DEFAULT_TOLERANCE
from ..inversion.options import NullTextOptions
from .ranks import Ranks
from .sweep_grid import DEFAULT_SETTINGS_PER_PASS, SweepGrid

if TYPE_CHECKING:
    from ..models import Model


@dataclass(frozen=True)
class ModelChoice:
    """The model options of every verb, as load_model takes them."""

    name_or_path: str | None = None  # None: DEFAULT_MODEL, or for an edit of an artifact folder its own model
    device: str | None = None
    dtype: str = "auto"
    cuda_graphs: bool = True
    compile: bool | None = None  # None: compile for a folder on a GPU once the compile cache holds this model's kernels
    loras: tuple[tuple[str, float], ...] = ()  # (LoRA file, scale), fused in order
    prediction_type: str | None = None  # None: the model's scheduler config
    model_config: str | None = None  # a single file's configs, when not its family's shipped ones

    def load(self, ranks: Ranks = Ranks(), photos: int = 1) -> Model:
        """The model, on this rank's device; `photos`: how many this process will invert."""
        from ..loading import load_model
        from .compile_cache import is_warm

        # The command owns its process: let CUDA's allocator grow segments instead of fragmenting, which
        # is what lets SDXL with CUDA graphs run on a 16 GB card (docs/BENCHMARKS.md). Read by torch at
        # the first CUDA allocation, so it is set before the model loads; a user's own setting wins.
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
        name = self.name_or_path or DEFAULT_MODEL
        model = load_model(name, ranks.device(self.device), self.dtype, self.cuda_graphs, bool(self.compile),
                           loras=self.loras, prediction_type=self.prediction_type, model_config=self.model_config)
        if self.compile is None and model.runner.graphed and photos > 1 and is_warm(model):
            model.use_cuda_graphs(compile=True)
        return model


@dataclass(frozen=True)
class InvertRequest:
    inputs: tuple[str, ...]
    output: str
    model: ModelChoice = ModelChoice()
    prompt: str | None = None
    method: str = DEFAULT_METHOD
    steps: int | None = None  # None: the model family's
    guidance: float | None = None  # None: the model family's
    null_text: NullTextOptions = NullTextOptions()
    batch_size: int | str = "auto"  # photos inverted together, or "auto" (runs/batch_size.py)
    force: bool = False
    progress: bool = True
    gpus: int = 1


@dataclass(frozen=True)
class EditRequest:
    source: str  # an artifact folder, a photo (with prompt), or an edits file or a folder holding one
    output: str
    model: ModelChoice = ModelChoice()
    target: str | None = None
    name: str | None = None
    prompt: str | None = None
    options: EditOptions = EditOptions()
    mask: str | None = None
    steps: int | None = None  # None: the model family's
    batch_size: int | str = "auto"  # photos inverted together when they are inverted first
    maps: bool = False
    force: bool = False
    progress: bool = True
    gpus: int = 1


@dataclass(frozen=True)
class SweepRequest:
    source: str
    output: str
    grid: SweepGrid
    model: ModelChoice = ModelChoice()
    target: str | None = None
    prompt: str | None = None
    base: EditOptions = EditOptions()  # kind, blend words and re-weights shared by every setting
    settings_per_pass: int = DEFAULT_SETTINGS_PER_PASS
    steps: int | None = None  # None: the model family's
    metrics: frozenset[str] | None = None  # None: the sweep's own choice (runs/sweep_command.py)
    metric_weights: str = "pretrained"
    clip_model: str | None = None
    edit_tolerance: float = DEFAULT_TOLERANCE
    force: bool = False
    progress: bool = True
    gpus: int = 1


@dataclass(frozen=True)
class BenchReconstructRequest:
    source: str
    output: str
    model: ModelChoice = ModelChoice()
    methods: tuple[str, ...] = ()
    steps: int | None = None  # None: the model family's
    metrics: frozenset[str] = frozenset({"lpips"})
    metric_weights: str = "pretrained"
    clip_model: str | None = None
    structure_model: str | None = None
    progress: bool = True
    gpus: int = 1


@dataclass(frozen=True)
class BenchEditRequest:
    source: str
    output: str
    model: ModelChoice = ModelChoice()
    method: str = DEFAULT_METHOD
    steps: int | None = None  # None: the model family's
    metrics: frozenset[str] = frozenset({"lpips", "clip", "structure"})
    metric_weights: str = "pretrained"
    clip_model: str | None = None
    structure_model: str | None = None
    structure_pixels: str = "pie-bench"  # eval/pie_bench_protocol.py: the papers' structure input, or "splice"
    progress: bool = True
    gpus: int = 1


@dataclass(frozen=True)
class UiRequest:
    inputs: tuple[str, ...]
    output: str
    model: ModelChoice = ModelChoice()
    method: str = DEFAULT_METHOD
    steps: int | None = None  # None: the model family's
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    metric_weights: str = "pretrained"  # the page's sweep's LPIPS and CLIP
    gpus: int = 1  # the page runs in one process
