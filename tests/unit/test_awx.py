# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""AWX as code: the job templates' data, the survey checks of the runner harness, the credential
types, and `ansible-builder create` of execution-environment.yml (offline)."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "awx"))
import run_job_template as harness  # noqa: E402

TEMPLATES = yaml.safe_load((REPO / "awx/vars/job_templates.yml").read_text())["labops_awx_job_templates"]
CREDENTIAL_TYPES = yaml.safe_load((REPO / "awx/vars/credential_types.yml").read_text())["labops_awx_credential_types"]
BIN = Path(sys.executable).parent


def role_options(role):
    """{option name: its spec} over every entry point of the role."""
    specs = yaml.safe_load((REPO / "roles" / role / "meta/argument_specs.yml").read_text())["argument_specs"]
    return {name: spec for entry in specs.values() for name, spec in entry.get("options", {}).items()}


def test_the_issue_s_job_templates_are_all_there():
    playbooks = {t["playbook"] for t in TEMPLATES}
    assert playbooks == {"site.yml", "playbooks/deploy_system.yml", "playbooks/backup.yml", "playbooks/restore.yml",
                         "playbooks/upgrade.yml", "playbooks/renew_certificates.yml", "playbooks/status.yml"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t["name"])
def test_each_template_names_a_playbook_that_reads_its_survey(template):
    playbook = REPO / template["playbook"]
    assert playbook.is_file()
    text = playbook.read_text()
    roles = set(re.findall(r"labops\.services\.(\w+)", text))
    sources = [text] + [p.read_text() for role in roles for p in (REPO / "roles" / role).rglob("*.yml")]
    for question in template.get("survey_spec", {}).get("spec", []):
        assert any(re.search(r"\b%s\b" % question["variable"], s) for s in sources), question["variable"]
    assert set(template.get("system_credentials", [])) <= {c["system"] for c in CREDENTIAL_TYPES}


@pytest.mark.parametrize("credential_type", CREDENTIAL_TYPES, ids=lambda c: c["system"])
def test_credential_fields_are_the_role_s_secret_variables(credential_type):
    options = role_options(credential_type["system"])
    for field in credential_type["fields"]:
        assert field["id"] in options
        assert re.search(r"password|secret|key", field["id"]) or options[field["id"]].get("no_log") is True


RESTORE = harness.JobTemplate.load("labops - restore")


def test_survey_fills_defaults_and_keeps_answers():
    answers = RESTORE.survey_answers({"backup_service": "demo", "backup_restore_confirm": "yes"})
    assert answers == {"backup_service": "demo", "backup_restore_artifact": "latest",
                       "backup_restore_jobs_text": "", "backup_restore_confirm": "yes"}


@pytest.mark.parametrize("given, message", [
    ({"backup_restore_confirm": "yes"}, "is required"),
    ({"backup_service": "", "backup_restore_confirm": "yes"}, "is required"),
    ({"backup_service": "demo", "backup_restore_confirm": "no"}, "at least 3"),
    ({"backup_service": "demo", "backup_restore_confirm": "yes", "other": 1}, "not survey questions: other"),
    ({"backup_service": "x" * 65, "backup_restore_confirm": "yes"}, "at most 64"),
])
def test_survey_refuses_what_awx_refuses(given, message):
    with pytest.raises(harness.SurveyError, match=message):
        RESTORE.survey_answers(given)


def test_multiple_choice_and_precedence():
    deploy = harness.JobTemplate.load("labops - deploy one system")
    with pytest.raises(harness.SurveyError, match="not one of"):
        deploy.survey_answers({"deploy_system": "vidjil_server"})
    merged = deploy.extra_vars({"deploy_system": "datalab"}, {"datalab_secret_key": "s"})
    assert merged == {"deploy_system": "datalab", "datalab_secret_key": "s"}


def test_unknown_template_is_named():
    with pytest.raises(KeyError, match="no job template 'nope'"):
        harness.JobTemplate.load("nope")


def test_ansible_builder_create_offline(tmp_path):
    """The build context is made from the files in the repository and the collection's tarball."""
    shutil.copy(REPO / "execution-environment.yml", tmp_path)
    shutil.copy(REPO / "requirements.yml", tmp_path)
    (tmp_path / "execution-environment").mkdir()
    for name in ("requirements.txt", "bindep.txt"):
        shutil.copy(REPO / "execution-environment" / name, tmp_path / "execution-environment")
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path",
                    tmp_path / "execution-environment", REPO], check=True, capture_output=True)
    subprocess.run([BIN / "ansible-builder", "create", "-f", tmp_path / "execution-environment.yml",
                    "-c", tmp_path / "context", "--output-filename", "Containerfile"], check=True, capture_output=True)
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert list((context / "_build/collections").glob("labops-services-*.tar.gz"))
    assert yaml.safe_load((context / "_build/requirements.yml").read_text()) == yaml.safe_load(
        (REPO / "requirements.yml").read_text())
    assert "ansible-galaxy collection install --offline --no-deps /build/collections/labops-services-" in containerfile
    assert "ansible-core==2.19.14" in containerfile


def test_configure_uses_awx_modules_as_documented():
    """Each awx.awx task's parameters are options of that module (ansible-doc), literal values among its choices."""
    tasks = yaml.safe_load((REPO / "awx/configure.yml").read_text())[0]["tasks"]
    used = {}
    for task in tasks:
        for key, args in task.items():
            if key.startswith("awx.awx."):
                used.setdefault(key, []).append(args)
    assert set(used) >= {"awx.awx.credential_type", "awx.awx.project", "awx.awx.inventory",
                         "awx.awx.inventory_source", "awx.awx.job_template", "awx.awx.execution_environment"}
    docs = json.loads(subprocess.run([BIN / "ansible-doc", "--json", *used], check=True, capture_output=True,
                                     text=True).stdout)
    for module, calls in used.items():
        options = docs[module]["doc"]["options"]
        names = {alias: name for name, spec in options.items() for alias in [name, *spec.get("aliases", [])]}
        for args in calls:
            unknown = set(args) - set(names)
            assert not unknown, f"{module}: {unknown}"
            for key, value in args.items():
                choices = options[names[key]].get("choices")
                if choices and isinstance(value, str) and "{{" not in value:
                    assert value in choices, f"{module} {key}={value}"
