"""Edit options from one place: each `EditOptions` field as the command line's flag, an edits file's
field and the page's control set it. The command line (command_line.py), edits files
(runs/edits_file.py), the page (ui/edit_form.py, ui/page.py) and the benchmark all read and write
edit options through this table, so that a new field is added to EditOptions, to the plan that uses
it, and here as one row. Nothing here imports torch.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

from ..editing.options import EDIT_KINDS, EditOptions
from ..errors import P2PError

DEFAULTS = {item.name: getattr(EditOptions(), item.name) for item in fields(EditOptions)}


def as_tuple(value):
    """YAML and JSON lists as the tuples EditOptions holds (also as a mapping's values); anything else as it is."""
    if isinstance(value, dict):
        return {key: as_tuple(item) for key, item in value.items()}
    return tuple(value) if isinstance(value, list) else value


def as_list(value):
    """EditOptions' tuples (and mappings of them) as the lists YAML and JSON write."""
    if isinstance(value, dict):
        return {key: as_list(item) for key, item in value.items()}
    return list(value) if isinstance(value, tuple) else value


def parse_pairs(flag: str, example: str, read: Callable[[str], object]) -> Callable[[list[str]], dict]:
    """A repeatable `WORD=VALUE` flag's values as {word: read(value)}; a bad one is a P2PError naming the flag."""
    def parse(values: list[str]) -> dict:
        pairs = {}
        for value in values:
            word, _, text = value.rpartition("=")
            try:
                pairs[word] = read(text)
            except ValueError:
                raise P2PError(f"{flag} {value!r}: expected {example}") from None
            if not word.strip():
                raise P2PError(f"{flag} {value!r}: expected {example}")
        return pairs
    return parse


def window(text: str) -> tuple[float, float]:
    start, end = (float(part) for part in text.split(","))
    return start, end


@dataclass(frozen=True)
class EditFlag:
    """One way to set an EditOptions field. `flag`: the command line's (None: edits files only);
    `entry`: an edits file's key (None: not in files; default: the field's name); `verbs`: the
    commands that take the flag; `parse`: the flag's value as the field's; `refines`: a per-word
    mapping that refines the field's one value ({"default_": value, word: ...}); `written`: whether
    an edits file entry written back holds it (default: when it is not the default)."""

    field: str
    flag: str | None = None
    help: str = ""
    entry: str | None = ""
    verbs: tuple[str, ...] = ("edit",)
    argparse: Mapping = field(default_factory=dict)
    parse: Callable = lambda value: value
    read_entry: Callable = as_tuple
    refines: bool = False
    written: Callable[[EditOptions], bool] | None = None

    @property
    def dest(self) -> str | None:
        return None if self.flag is None else self.flag.lstrip("-").replace("-", "_")

    @property
    def key(self) -> str | None:
        return self.field if self.entry == "" else self.entry

    @property
    def repeated(self) -> bool:
        return self.argparse.get("action") == "append"

    def default(self):
        return [] if self.repeated else DEFAULTS.get(self.field)

    def in_entry(self, options: EditOptions) -> bool:
        value = getattr(options, self.field)
        return self.written(options) if self.written is not None else value != DEFAULTS[self.field]


EDIT_FLAGS = (
    EditFlag("kind", "--kind", "replace (word swap), refine (add words), reweight; auto picks replace or refine",
             verbs=("edit", "sweep"), argparse={"choices": EDIT_KINDS}),
    EditFlag("cross_replace_steps", "--cross-replace-steps", "fraction of steps in which the target takes the source's "
             "cross-attention (default: 0.4)", argparse={"type": float, "metavar": "FRACTION"}, written=lambda _: True),
    EditFlag("self_replace_steps", "--self-replace-steps", "fraction of steps in which the target takes the source's "
             "self-attention (default: 0.6)", argparse={"type": float, "metavar": "FRACTION"}, written=lambda _: True),
    EditFlag("blend_words", "--blend", "LocalBlend: change only where these words attend", entry="blend",
             verbs=("edit", "sweep"), argparse={"nargs": 2, "metavar": ("SOURCE_WORD", "TARGET_WORD")},
             parse=lambda words: tuple(words) if words else None),
    EditFlag("blend_threshold", written=lambda options: options.blend_words is not None),
    EditFlag("reweights", "--reweight", "scale a target word's attention by FACTOR in [-2, 2]; repeatable",
             entry="reweight",
             verbs=("edit", "sweep"), argparse={"action": "append", "metavar": "WORD=FACTOR"},
             parse=parse_pairs("--reweight", "WORD=FACTOR, e.g. fluffy=2", float), read_entry=lambda value: value),
    EditFlag("cross_replace_steps", "--word-steps", "a target word's own cross-replacement window, e.g. dog=0,0.8; "
             "repeatable", entry=None, argparse={"action": "append", "metavar": "WORD=START,END"},
             parse=parse_pairs("--word-steps", "WORD=START,END, e.g. dog=0,0.8", window), refines=True),
)
FIELD_FLAGS = {row.field: row.flag for row in EDIT_FLAGS if row.flag and not row.refines}  # for in_flag_terms
ENTRY_KEYS = tuple(dict.fromkeys(row.key for row in EDIT_FLAGS if row.key))  # an edits file's option fields


def verb_flags(verb: str) -> list[EditFlag]:
    return [row for row in EDIT_FLAGS if row.flag and verb in row.verbs]


def add_edit_flags(group, verb: str, helps: Mapping[str, str] = {}) -> None:
    """The verb's edit flags on an argparse group (`helps`: a verb's own words for a flag)."""
    for row in verb_flags(verb):
        group.add_argument(row.flag, default=row.default(), help=helps.get(row.flag, row.help), **row.argparse)


def edit_options(values: Mapping, fixed: Mapping = {}) -> EditOptions:
    """EditOptions from flag values by dest ({"kind": "auto", "reweight": ["red=2"], ...}; a dest
    missing takes the field's default); `fixed`: fields set outright. An OptionError names a field
    (checks.in_flag_terms says it as its flag); a flag's value that cannot be read, a P2PError."""
    chosen = dict(fixed)
    for row in EDIT_FLAGS:
        if row.flag is None or row.dest not in values or row.field in fixed and not row.refines:
            continue
        value = row.parse(values[row.dest])
        if row.refines:
            if value:
                chosen[row.field] = {"default_": chosen.get(row.field, DEFAULTS[row.field]), **value}
        else:
            chosen[row.field] = value
    return EditOptions(**chosen)


def entry_options(entry: Mapping) -> EditOptions:
    """An edits file entry's EditOptions (the keys it leaves out take EditOptions' defaults)."""
    return EditOptions(**{row.field: row.read_entry(entry[row.key])
                          for row in EDIT_FLAGS if row.key and row.key in entry})


def entry_fields(options: EditOptions) -> dict:
    """The edits file fields that read back as `options`: those each row writes, as YAML and JSON write them."""
    return {row.key: as_list(getattr(options, row.field)) for row in EDIT_FLAGS if row.key and row.in_entry(options)}


def entry_key(field_name: str) -> str:
    """An edits file's name for an EditOptions field."""
    return next((row.key for row in EDIT_FLAGS if row.field == field_name and row.key), field_name)


def flags_set(options: EditOptions, verb: str) -> list[str]:
    """The verb's edit flags whose value in `options` is not their default: those the command line set."""
    unset = edit_options({row.dest: row.default() for row in verb_flags(verb)})
    changed = [row.flag for row in verb_flags(verb) if getattr(options, row.field) != getattr(unset, row.field)]
    return list(dict.fromkeys(changed))
