"""Runs: the layer between the command line (or a notebook) and the stages.

It finds photos and their captions, reads edits files and PIE-Bench mapping files, skips work that
is already done, names output folders, and writes artifacts, PNGs, JSON reports and plots. Besides
artifacts.py and images.py, which it calls, it is the only code that reads or writes the user's
files: `inversion/`, `editing/` and `eval/` take tensors, images and prompts and return results,
and never import from here.

    requests.py   one frozen request per verb, and ModelChoice: what a verb is asked to do
    flags.py      the parsed command line read into its request by name, each flag checked once
    checks.py     flags, paths and --output checked before torch is imported
    edit_flags.py edit options from one table: flags, edits file fields, the page's form
    photos.py     photos of a folder and the name of each one's output folder
    captions.py   each photo's caption (captions.json, photo.txt)
    naming.py     output folder names: sanitised, inside --output, distinct by settings
    locks.py      per-item locks, so concurrent runs on one output do each item once
    report.py     what a run did with each item: done, skipped, busy, failed; merged in one place
    memory.py     the one out-of-memory back-off: a batch split in halves or one by one
    records.py    an edit's record (edit, sweep, bench) and how two records differ, in words
    invert_claims.py  photos claimed to invert: locked, compared with their kept record
    invert.py     invert many photos into OUTPUT/<photo>/, batched and resumable by content
    edits_file.py edits files read entry by entry into EditJobs, bad entries reported
    masks.py      painted mask files, checked and known by their content
    edits.py      many edits run resumably, one sampling pass per photo
    edit_outputs.py  an edit's files, its record written last and read back
    pie_bench.py  PIE-Bench's mapping_file.json (or an edits file) as benchmark entries
    bench.py      the benchmarks: reconstruction per method, and PIE-Bench edits; JSON and a plot
    sweep_grid.py a sweep's settings (cross x self x threshold) from its flags, checked before torch
    sweep.py      a grid of edit strengths on one inversion: sampled in passes, scored, one chosen; its files
    sweep_figures.py  a sweep's grid picture and its fidelity-against-edit plot
    sweep_reading.py  the shapes model's edit reader, injected into eval/sweep_scores.py
    outcome.py    what a verb tells its user, and the ranks' share of the work and tallies
    invert_command.py, edit_command.py, sweep_command.py, bench_command.py
                  what each `p2p-real` verb does with its request (ui/command.py: the ui's)
"""
