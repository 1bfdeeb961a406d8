"""The notebook API (issue 11, item 8): ``examples/quickstart.ipynb`` runs top to bottom in a real Jupyter
kernel; the summary renders as HTML, the diagram as SVG, and training returns a ``Run``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the test extra installs nbclient")
pytest.importorskip("ipykernel", reason="the test extra installs ipykernel")

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_notebook_runs_in_a_real_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))
    notebook = nbformat.read(REPO / "examples" / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("lenet5" in page and "61,706" in page for page in html), "no summary table"
    assert any("<svg" in o.data["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {}))
    assert any(page.startswith("<b>run ") and "accuracy" in page for page in html), "no Run shown"
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "epoch 1: val_accuracy" in printed and "epoch 2: val_accuracy" in printed
    assert f"{Path('runs') / 'lenet5'} " in printed
    assert (tmp_path / "runs" / "lenet5" / "confusion_matrix.png").is_file()
    assert any("image/png" in o.get("data", {}) for o in outputs)
