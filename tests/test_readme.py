"""CI must run the README's own set-up and test commands, verbatim."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Install and run", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_ci_runs_the_readme_commands_verbatim():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    body = [line for line in ci if not line.startswith(("set ", "cd "))]
    assert body[:2] == commands
    # whatever follows only adds the tests the README command leaves out, so CI runs them all
    assert body[2:] == ['python -m pytest -q -m slow']


def test_readme_fits_a_screen_or_two_and_names_no_local_folder():
    """What a user reads first: at most 200 lines, and datasets named by their public source, not
    by the development machine's folder (docs/DATA.md says where tests look for them)."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "../shared" not in text and "shared/" not in text
    for link in re.findall(r"\]\(([^)#]+)", text):  # every relative link points at a file
        if "://" not in link:
            assert (ROOT / link).exists(), link
