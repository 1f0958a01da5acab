"""The front page and the docs as a reader meets them: the README opens with the two set-up
commands and fits a screenful or two, the licence and changelog exist, and every relative link
in the README, docs/ and the model cards points at a file that is there."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_a_front_page():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= 120, f"README.md has {len(lines)} lines (≤ 120: details go to docs/)"
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]
    assert "VOCODER_RESULT" not in text
    assert (ROOT / "LICENSE").is_file() and (ROOT / "CHANGELOG.md").is_file()


def test_relative_links_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "pretrained").glob("*/README.md")), ROOT / "pretrained" / "README.md"]
    broken = []
    for page in pages:
        prose = re.sub(r"```.*?```|`[^`]*`", "", page.read_text(), flags=re.S)   # not code
        for target in LINK.findall(prose):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert not broken, broken
