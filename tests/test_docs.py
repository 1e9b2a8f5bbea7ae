"""docs/make_figures.py still runs (its small mode, into a temporary directory); every page is listed and shown."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "make_figures.py"
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


def test_small_mode_makes_every_figure(make_figures, tmp_path):
    """``--small`` draws every figure (two with less work); each figure's asserts check the numbers its page quotes."""
    assert set(make_figures.SMALL_ARGS) <= set(make_figures.FIGURES)
    assert make_figures.main(["--small", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.png" for name in make_figures.FIGURES)
    assert all(_is_png(p) for p in tmp_path.iterdir())


def test_mask_rcnn_figures_without_the_dsb2018_data(make_figures, tmp_path):
    """Without ../shared/data/dsb2018 (CI) the Mask R-CNN figures use a shapes image; their asserts still hold."""
    for fig in (make_figures.fig_mask_rcnn_rpn, make_figures.fig_mask_rcnn_heads):
        assert _is_png(fig(tmp_path, root=None))
    assert make_figures.mask_rcnn_example(None)["source"].startswith("InstanceShapes")


def test_every_page_is_listed_in_the_readme():
    readme = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in readme, f"docs/{page.name} is not listed in docs/README.md"



def test_kernel_lines_quoted_on_the_bilinear_page_are_in_the_kernels():
    """Each code span in the right column of bilinear.md's "beside the kernel lines" tables is a line of kernels/."""
    page = (ROOT / "docs" / "bilinear.md").read_text(encoding="utf-8")
    section = page.split("## The formula beside the kernel lines", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for path in (ROOT / "kernels").rglob("*.py")
             for line in path.read_text(encoding="utf-8").splitlines()]
    rows = [row for row in section.splitlines() if row.startswith("|")]
    quoted = [span for row in rows for span in re.findall(r"`([^`]+)`", row.rstrip(" |").rsplit(" | ", 1)[-1])]
    assert len(quoted) >= 15, quoted
    missing = [span for span in quoted if not any(span in line for line in lines)]
    assert not missing, f"quoted on docs/bilinear.md but not found in kernels/: {missing}"


def test_semantics_citations_name_existing_sections():
    """Every ``docs/semantics.md#<section>`` cited in the code and tests is a heading of docs/semantics.md."""
    page = (ROOT / "docs" / "semantics.md").read_text(encoding="utf-8")
    anchors = {line[3:].strip().lower().replace(" ", "-") for line in page.splitlines() if line.startswith("## ")}
    cited = {}
    for folder in ("kernels", "minitorchseg", "tests", "benchmarks", "docs"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md") and path.is_file():
                for anchor in re.findall(r"docs/semantics\.md#([A-Za-z0-9_-]+)", path.read_text(encoding="utf-8")):
                    cited.setdefault(anchor, path.relative_to(ROOT).as_posix())
    assert len(cited) >= 6, cited
    unknown = {anchor: where for anchor, where in cited.items() if anchor not in anchors}
    assert not unknown, f"cited sections missing from docs/semantics.md: {unknown}"
