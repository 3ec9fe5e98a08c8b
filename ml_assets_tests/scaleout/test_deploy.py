"""What can be checked of the deployment files without Docker or Kubernetes."""

from __future__ import annotations

import re
import tomllib

import yaml

from ml_assets_tests.conftest import REPO


def test_dockerfile_installs_the_pinned_set_and_serves_the_code_location() -> None:
    text = (REPO / "deploy" / "Dockerfile").read_text()
    (install,) = [line for line in text.splitlines() if line.startswith("RUN pip install")]
    assert "-c constraints.txt" in install and '".[k8s]"' in install
    # constraints.txt is copied before the install that reads it.
    copies = [m.start() for m in re.finditer(r"^COPY .*constraints\.txt", text, re.M)]
    assert copies and copies[0] < text.index(install)
    # The k8s extra is declared, and every package it brings is pinned.
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    pins = {
        line.split("==")[0].lower() for line in (REPO / "constraints.txt").read_text().splitlines()
    }
    for requirement in extras["k8s"]:
        assert re.split(r"[<>=]", requirement)[0].lower() in pins
    assert '"-m", "ml_assets.definitions"' in text


def test_helm_values_parse_and_name_the_image_and_code_location() -> None:
    values = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    tag = re.search(r"-t (\S+):(\S+) ", dockerfile)
    assert tag is not None
    assert (deployment["image"]["repository"], deployment["image"]["tag"]) == tag.groups()
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "ml_assets.definitions"]
    assert str(deployment["port"]) in dockerfile
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is True
