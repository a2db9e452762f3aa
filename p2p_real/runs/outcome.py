"""What a verb tells its user (`Outcome`: lines, problems, exit code), and what each rank of a
launched run did, gathered on rank 0, which speaks for all (runs/ranks.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence, TypeVar

from .ranks import Ranks
from .report import RunReport

Item = TypeVar("Item")


@dataclass
class Outcome:
    """What a verb tells its user: lines for stdout, problems for stderr, and the exit code."""

    code: int = 0
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Share:
    """This process's rank, its share of the items, and whether it shows a progress bar."""

    ranks: Ranks
    items: list
    progress: bool


def share_work(items: Sequence[Item], key: Callable[[Item], str], progress: bool) -> Share:
    """Under a launcher, this rank's share of `items` (all of them otherwise); one progress bar on
    the terminal: rank 0's, of its share."""
    ranks = Ranks.from_environment()
    return Share(ranks, ranks.share(items, key=key), progress and ranks.leader)


@dataclass
class Tally:
    """What one rank did, small enough to gather: counts, failures by name, PSNRs, photos that missed
    null-text's early-stop loss. `merged` adds the ranks' tallies up (seconds: the slowest rank's)."""

    done: int = 0
    skipped: int = 0
    busy: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    psnrs: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, report: RunReport, failed_names: list[str], psnrs=(), missed=()) -> "Tally":
        failed = [(name, message) for name, (_, message) in zip(failed_names, report.failed)]
        return cls(len(report.done), len(report.skipped), len(report.busy), failed, report.seconds, list(psnrs),
                   list(missed))

    @classmethod
    def merged(cls, tallies: list["Tally"]) -> "Tally":
        return cls(sum(t.done for t in tallies), sum(t.skipped for t in tallies), sum(t.busy for t in tallies),
                   [f for t in tallies for f in t.failed], max(t.seconds for t in tallies),
                   [p for t in tallies for p in t.psnrs], [m for t in tallies for m in t.missed])

    def counts(self, tallies: list["Tally"]) -> str:
        """"N already done, N being done by another run, N failed", after the done count and time."""
        return (f"{self.seconds:.1f} s{processes(tallies)}, {self.skipped} already done, "
                f"{self.busy} being done by another run, {len(self.failed)} failed")


def processes(tallies: list[Tally]) -> str:
    """Under a launcher, e.g. " on 2 processes (2 + 2 done)"; nothing for one process."""
    if len(tallies) == 1:
        return ""
    return f" on {len(tallies)} processes ({' + '.join(str(tally.done) for tally in tallies)} done)"


def ranks_rows(ranks: Ranks, rows: list[dict]) -> list[dict] | Outcome:
    """Every rank's benchmark rows on rank 0; on the others, their own exit code (rank 0 reports)."""
    gathered = ranks.gather(rows)
    if gathered is None:
        return Outcome(code=1 if any("error" in row for row in rows) else 0)
    return [row for part in gathered for row in part]


def nothing_to_run(bad_entries: list[str]) -> Outcome:
    """A file whose every entry is bad is bad input (exit 2), each entry named; the model never loads."""
    return Outcome(code=2, problems=[f"error: {problem}" for problem in bad_entries])


def bench_outcome(rows: list[dict], lines: list[str], bad_entries: list[str] = ()) -> Outcome:
    """Exit 1 when any entry was bad or any row failed, each named on stderr."""
    problems = [*(f"skipped {problem}" for problem in bad_entries),
                *(f"failed: {row.get('photo') or row.get('key')}: {row['error']}" for row in rows if "error" in row)]
    return Outcome(1 if problems else 0, lines, problems)
