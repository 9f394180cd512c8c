"""The first code cell: install what Colab lacks (and nothing anywhere else)."""

import copy

import nbformat

TEMPLATE = '''# Setup. On Google Colab this installs the packages Colab lacks; elsewhere it does nothing
# (install the course's requirements instead). The notebook needs nothing else from the course.
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", {packages}], check=True)'''


def add_setup_cell(nb, requirements: list[str]):
    out = copy.deepcopy(nb)
    packages = ", ".join(repr(r) for r in requirements) if requirements else ""
    if requirements:
        source = TEMPLATE.format(packages=packages)
    else:
        source = "# Setup: this notebook needs nothing beyond what Colab already has."
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["course"] = {"setup": True}
    cell.metadata["tags"] = ["setup"]
    # After the leading markdown (title, introduction), before the first code cell.
    first_code = next((i for i, c in enumerate(out.cells) if c.cell_type == "code"), len(out.cells))
    out.cells.insert(first_code, cell)
    return out
