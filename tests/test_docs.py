"""docs/make_figures.py still runs: the three cheapest figures are drawn into a temporary directory."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "make_figures.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def make_figures():
    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


def test_every_figure_is_shown_on_a_page(make_figures):
    pages = [p.read_text(encoding="utf-8") for p in SCRIPT.parent.glob("*.md") if p.name != "README.md"]
    for name in make_figures.FIGURES:
        assert any(f"(figures/{name}.png)" in page for page in pages), f"figure {name} is not shown on any page"


def test_command_line_only_writes_the_named_figures(make_figures, tmp_path):
    """fig_metrics also asserts the seed's numbers (TP = 8, FN = 5, FP = 0, TN = 12 → recall 0.615, ...)."""
    assert make_figures.main(["--only", "metrics", "--only", "autograd", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autograd.png", "metrics.png"]
    assert all(_is_png(p) for p in tmp_path.iterdir())


def test_unpool_figure(make_figures, tmp_path):
    path = make_figures.fig_unpool(tmp_path)
    assert path == tmp_path / "unpool.png" and _is_png(path)

