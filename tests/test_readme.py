"""The README's Python examples run as written, in order, as a user would paste them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_examples_run_in_order():
    assert BLOCKS, "the README shows no Python example"
    namespace = {"__name__": "readme"}
    for i, code in enumerate(BLOCKS):
        exec(compile(code, f"README.md python block {i}", "exec"), namespace)
