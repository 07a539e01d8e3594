"""Train the Rasa model only when its inputs changed.

The model is named after a hash of config.yml, domain.yml and data/, so an unchanged project
reuses models/<hash>.tar.gz and a changed one trains (with Rasa's own progress output).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from bot.shared.settings import PROJECT_ROOT

MODELS = PROJECT_ROOT / "models"


def inputs_hash(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    files = [root / "config.yml", root / "domain.yml", *sorted((root / "data").rglob("*.yml"))]
    for path in files:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def rasa_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RASA_TELEMETRY_ENABLED"] = "false"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def rasa_executable() -> str:
    return str(Path(sys.executable).with_name("rasa"))


def ensure_model(force: bool = False) -> Path:
    name = f"model-{inputs_hash()}"
    model = MODELS / f"{name}.tar.gz"
    if model.exists() and not force:
        print(f"model up to date: {model.relative_to(PROJECT_ROOT)}", flush=True)
        return model
    print("training the Rasa model (NLU + dialogue); this takes a few minutes ...", flush=True)
    MODELS.mkdir(exist_ok=True)
    subprocess.run(
        [rasa_executable(), "train", "--fixed-model-name", name, "--out", str(MODELS)],
        cwd=PROJECT_ROOT, env=rasa_env(), check=True,
    )
    for old in MODELS.glob("model-*.tar.gz"):
        if old != model:
            old.unlink()
    return model


if __name__ == "__main__":
    ensure_model(force="--force" in sys.argv)
