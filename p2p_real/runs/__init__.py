"""Runs: the layer between the command line (or a notebook) and the stages.

It finds photos and their captions, reads edits files and PIE-Bench mapping files, skips work that
is already done, names output folders, and writes artifacts, PNGs, JSON reports and plots. Besides
artifacts.py and images.py, which it calls, it is the only code that reads or writes the user's
files: `inversion/`, `editing/` and `eval/` take tensors, images and prompts and return results,
and never import from here.

    checks.py     flags, paths and --output checked before torch is imported
    photos.py     photos of a folder and the name of each one's output folder
    captions.py   each photo's caption (captions.json, photo.txt)
    naming.py     output folder names: sanitised, inside --output, distinct by settings
    locks.py      per-item locks, so concurrent runs on one output do each item once
    report.py     what a run did with each item: done, skipped, busy, failed
    invert.py     invert many photos into OUTPUT/<photo>/, batched and resumable by content
    edits_file.py edits files read entry by entry into EditJobs, bad entries reported
    masks.py      painted mask files, checked and known by their content
    edits.py      many edits run resumably, one sampling pass per photo
    pie_bench.py  PIE-Bench's mapping_file.json (or an edits file) as benchmark entries
    bench.py      the benchmarks: reconstruction per method, and PIE-Bench edits; JSON and a plot
    sweep_grid.py a sweep's settings (cross x self x threshold) from its flags, checked before torch
    sweep.py      a grid of edit strengths on one inversion: sampled in passes, scored, one chosen; its files
    sweep_figures.py  a sweep's grid picture and its fidelity-against-edit plot
    commands.py   what each `p2p-real` verb does, from checked input to the lines it prints
"""
