"""The README's example runs as written (optax needs standard promotion: see conftest)."""

import pathlib
import re

import jax


def test_readme_example_runs():
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    scope = {}
    with jax.numpy_dtype_promotion("standard"):
        exec(compile(block, "README.md", "exec"), scope)
    assert scope["loss"].shape == () and bool(jax.numpy.isfinite(scope["loss"]))
    assert scope["out_shape"] == (10,)
