"""Workshops: `d11 learn`, exercises that fail until solved, checked by the harness.

An exercise blanks one named region of the reference code (the book's
`# --8<-- [start:name]` markers), switches on a planted bug, asks for a figure
measured from a run, or asks for a setting in a file. The learner works in a
workspace of their own (a copy of `reference/`, `checks/` and `chapters/`);
`d11 learn check` runs *their* copy in a subprocess, under the chapter's
workload, faults and seeds, and hands back what the checkers (or the explorer)
say, with the smallest failing schedule when there is one.

- `learn/catalog.py`: the `Exercise` record and the registry (one module per
  chapter under `learn/exercises/`, listed in `CHAPTER_MODULES`).
- `learn/regions.py`: finding, blanking and restoring marked regions.
- `learn/workspace.py`: the learner's folder and its state file.
- `learn/worker.py` + `learn/checks.py`: what runs inside the subprocess.
- `learn/cli.py`: the commands; `learn/report.py`: `d11 learn report`.
"""
