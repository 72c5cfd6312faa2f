"""Developer tool: build a figure notebook from a py:percent script.

    python tools/py2nb.py draft.py workflow/notebooks/<artifact_id>.ipynb

Cells start at lines ``# %%`` (code) or ``# %% [markdown]`` (markdown, lines commented with
``# ``); the cell headed ``# %% tags=["parameters"]`` becomes papermill's parameters cell.
The committed .ipynb is the source of truth; the draft script need not be kept.
"""

import re
import sys

import nbformat


def convert(source: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    chunks = re.split(r"^# %%(.*)$", source, flags=re.M)
    if chunks[0].strip():
        nb.cells.append(nbformat.v4.new_code_cell(chunks[0].strip()))
    for header, body in zip(chunks[1::2], chunks[2::2], strict=True):
        body = body.strip("\n")
        if "[markdown]" in header:
            text = "\n".join(re.sub(r"^# ?", "", line) for line in body.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(body)
            if "parameters" in header:
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1:3]
    with open(src) as fh:
        nb = convert(fh.read())
    nbformat.write(nb, dst)
