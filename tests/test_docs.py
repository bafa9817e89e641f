"""The tutorial's code blocks run as written (in order, one namespace) and say what they should:
the PF-ODE likelihood of the analytic score matches the mixture's density."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), flags=re.S)


def test_doc_snippets_compile():
    pages = [p.name for p in DOCS.glob("*.md")]
    assert "tutorial.md" in pages
    for page in pages:
        for i, code in enumerate(_blocks(page)):
            compile(code, f"{page}[{i}]", "exec")  # a SyntaxError names the page and block


@pytest.mark.slow  # trains a tiny model for 50 steps
def test_tutorial_runs(capsys):
    namespace: dict = {}
    for i, code in enumerate(_blocks("tutorial.md")):
        exec(compile(code, f"tutorial.md[{i}]", "exec"), namespace)
    lp_gap = float(abs(namespace["lp_model"] - namespace["lp_true"]).max())
    # the analytic score's PF-ODE likelihood is the true density (measured gap 0.012, float32)
    assert lp_gap < 5e-2, lp_gap
    assert namespace["x"].shape == (100, 2)
    assert float(namespace["nll"]) < 6.0  # finite and below a broad Gaussian's NLL
