"""The distribution's name and the one version: `vouch-oci` (the PyPI name `vouch` is someone else's), its
version read from vouch.__version__, and every place that names the step image or the app version agrees."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import yaml

from vouch import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_distribution_name_and_single_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "vouch-oci"
    assert "version" not in project and project["dynamic"] == ["version"]
    assert metadata.version("vouch-oci") == __version__
    assert project["scripts"]["vouch"] == "vouch.cli.entry:run"


def test_step_image_and_chart_name_this_version() -> None:
    tags = re.findall(r"harbor\.akko-ai\.com/akko/vouch:([0-9A-Za-z.+-]+)",
                      (ROOT / "deploy" / "vouch.Containerfile").read_text())
    for pipeline in sorted((ROOT / "deploy" / "woodpecker").glob("*.yml")):
        for step in yaml.safe_load(pipeline.read_text()).get("steps", []):
            image = step.get("image", "")
            if "/akko/vouch:" in image:
                tags.append(image.rsplit(":", 1)[1])
    assert tags and set(tags) == {__version__}, tags
    chart = yaml.safe_load((ROOT / "deploy" / "helm" / "akko-opa" / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
