"""The layering of the packages, enforced: import-linter's contracts (pyproject.toml) and what
each layer loads at import."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    """grok_core <- analysis | search_spaces <- sweeps, the libraries each layer may use, and
    no import cycles (pyproject.toml [tool.importlinter])."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.fail("lint-imports (import-linter) is not installed: pip install -e '.[test]'")
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


def test_no_ray_under_grok_core():
    """The engine runs with torch alone: not one mention of Ray in its code."""
    hits = [f"{path.relative_to(ROOT)}:{n}" for path in (ROOT / "grok_core").rglob("*.py")
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if "import ray" in line or "from ray" in line]
    assert hits == []


@pytest.mark.parametrize("module, absent", [
    ("grok_core.config", ("torch", "ray", "pandas")),
    ("search_spaces", ("torch", "ray", "optuna")),
    ("analysis", ("torch", "ray")),
    ("analysis.report", ("torch", "ray")),
    ("sweeps.trainable", ("torch", "ray")),
    ("sweeps.cli", ("torch", "ray", "optuna")),
])
def test_light_modules_stay_light(module, absent):
    """What the driver and a rejected command import stays free of the heavy libraries."""
    code = (f"import sys, {module}; heavy = [m for m in {absent!r} if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
