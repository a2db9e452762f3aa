"""Runs: the layer between the command line (or a notebook) and the stages.

It finds photos and their captions, reads edits files and PIE-Bench mapping files, skips work that
is already done, names output folders, and writes artifacts, PNGs, JSON reports and plots. Besides
artifacts.py and images.py, which it calls, it is the only code that reads or writes the user's
files: `inversion/`, `editing/` and `eval/` take tensors, images and prompts and return results,
and never import from here.

    photos.py     photos of a folder and their captions (captions.json, photo.txt, --prompt)
    invert.py     invert many photos into OUTPUT/<photo>/, batched and resumable
    edits.py      edits files, and many edits run resumably, one sampling pass per photo
    pie_bench.py  PIE-Bench's mapping_file.json (or an edits file) as benchmark entries
    bench.py      the benchmarks: reconstruction per method, and PIE-Bench edits; JSON and a plot
    commands.py   what each `p2p-real` verb does, from checked input to the lines it prints
"""
