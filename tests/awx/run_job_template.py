# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run one job template of awx/vars/job_templates.yml the way AWX runs a job, through ansible-runner.

What AWX does and this does too:
- checks the survey answers against the template's survey_spec (required questions, choices,
  text lengths) and fills in the defaults of unanswered questions;
- the job's extra vars are the template's extra_vars, the survey answers and the credentials'
  injected extra vars (AWX writes them to env/extravars of the private data dir);
- the inventory is what AWX's inventory updates import from its sources (each --inventory) with
  `ansible-inventory --list --export`, served to ansible-playbook by an inventory script
  (inventory/hosts);
- the project is a checkout of the repository (here its git-tracked files, copied to project/);
- ansible-runner runs the template's playbook from the private data dir with the job's limit,
  in an environment without the caller's ANSIBLE_* settings (the project's ansible.cfg applies).
What stands in: the execution environment is this venv (ansible-core, collections, Python
packages of execution-environment.yml), and the private data dir is made here, not by AWX.

Usage: python tests/awx/run_job_template.py TEMPLATE_NAME --inventory PATH [--inventory PATH...]
                           [--answers JSON] [--credential-vars JSON]
                           [--limit PATTERN] [--keep DIR]
Exit status: the playbook's (0 = successful job); 2 for answers AWX would refuse.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "awx" / "vars" / "job_templates.yml"


class SurveyError(ValueError):
    """Answers that AWX's launch endpoint would refuse."""


class JobTemplate:
    """One entry of labops_awx_job_templates."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec["name"]
        self.playbook = spec["playbook"]
        self.questions = spec.get("survey_spec", {}).get("spec", [])

    @classmethod
    def load(cls, name, path=TEMPLATES):
        templates = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["labops_awx_job_templates"]
        for spec in templates:
            if spec["name"] == name:
                return cls(spec)
        raise KeyError(f"no job template {name!r} in {path} (known: {', '.join(t['name'] for t in templates)})")

    def survey_answers(self, given):
        """The survey's variables as AWX passes them: answers checked, defaults filled in."""
        unknown = set(given) - {q["variable"] for q in self.questions}
        if unknown:
            raise SurveyError(f"{self.name}: not survey questions: {', '.join(sorted(unknown))}")
        answers = {}
        for question in self.questions:
            variable = question["variable"]
            if variable in given:
                value = given[variable]
            elif "default" in question:
                value = question["default"]
            elif question.get("required"):
                raise SurveyError(f"{self.name}: '{question['question_name']}' ({variable}) is required")
            else:
                continue
            self._check(question, value)
            answers[variable] = value
        return answers

    def _check(self, question, value):
        label = f"{self.name}: '{question['question_name']}' ({question['variable']})"
        kind = question["type"]
        if kind in ("text", "textarea", "password"):
            if not isinstance(value, str):
                raise SurveyError(f"{label} takes text")
            if question.get("required") and value == "":
                raise SurveyError(f"{label} is required")
            if value != "" or question.get("required"):
                if "min" in question and len(value) < question["min"]:
                    raise SurveyError(f"{label} needs at least {question['min']} characters")
                if "max" in question and len(value) > question["max"]:
                    raise SurveyError(f"{label} takes at most {question['max']} characters")
        elif kind == "multiplechoice":
            if value not in question["choices"]:
                raise SurveyError(f"{label}: {value!r} is not one of {', '.join(question['choices'])}")
        elif kind == "multiselect":
            if not isinstance(value, list) or not set(value) <= set(question["choices"]):
                raise SurveyError(f"{label}: choose among {', '.join(question['choices'])}")
        elif kind in ("integer", "float"):
            number = int(value) if kind == "integer" else float(value)
            if number < question.get("min", number) or number > question.get("max", number):
                raise SurveyError(f"{label}: {value} is outside {question.get('min')}..{question.get('max')}")
        else:
            raise SurveyError(f"{label}: unknown survey type {kind}")

    def extra_vars(self, answers, credential_vars):
        """Template extra vars < survey answers < credential injectors (AWX's order)."""
        merged = dict(self.spec.get("extra_vars") or {})
        merged.update(self.survey_answers(answers))
        merged.update(credential_vars)
        return merged


def copy_project(destination):
    """The repository's tracked files, as an SCM checkout has them (symlinks kept)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], check=True, capture_output=True).stdout
    for relative in filter(None, listed.decode().split("\0")):
        source, target = REPO / relative, destination / relative
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the work tree, not committed yet
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def write_private_data_dir(root, template, inventory_paths, extra_vars):
    sources = [arg for path in inventory_paths for arg in ("-i", str(path))]
    exported = subprocess.run([str(Path(sys.executable).parent / "ansible-inventory"), *sources, "--list", "--export"],
                              check=True, capture_output=True, text=True).stdout
    (root / "inventory").mkdir(parents=True)
    script = root / "inventory" / "hosts"
    script.write_text("#!/usr/bin/env python3\nimport sys\nsys.stdout.write(%r)\n" % exported, encoding="utf-8")
    script.chmod(0o700)
    (root / "env").mkdir()
    extravars = root / "env" / "extravars"
    extravars.write_text(json.dumps(extra_vars), encoding="utf-8")
    extravars.chmod(0o600)
    copy_project(root / "project")
    if not (root / "project" / template.playbook).is_file():
        raise FileNotFoundError(f"{template.name}: playbook {template.playbook} is not in the project")


def run(template, inventory_paths, answers, credential_vars, limit=None, keep=None):
    import ansible_runner  # the same library AWX's job runs go through

    extra_vars = template.extra_vars(answers, credential_vars)
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="labops-awx-job-"))
    try:
        write_private_data_dir(root, template, inventory_paths, extra_vars)
        saved = dict(os.environ)
        for key in [k for k in os.environ if k.startswith("ANSIBLE_")]:
            del os.environ[key]
        # ansible-playbook from this interpreter's environment (the stand-in execution environment).
        os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), saved.get("PATH", "")])
        try:
            result = ansible_runner.run(private_data_dir=str(root), playbook=template.playbook,
                                        limit=limit, quiet=False)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        print(f"job template {template.name!r}: {result.status}, rc={result.rc}", file=sys.stderr)
        return result.rc
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("template")
    parser.add_argument("--inventory", required=True, action="append", help="an inventory source; repeatable")
    parser.add_argument("--answers", default="{}", help="survey answers, JSON")
    parser.add_argument("--credential-vars", default="{}", help="credentials' injected extra vars, JSON")
    parser.add_argument("--limit")
    parser.add_argument("--keep", help="make the private data dir here and keep it")
    args = parser.parse_args(argv)
    template = JobTemplate.load(args.template)
    try:
        return run(template, args.inventory, json.loads(args.answers), json.loads(args.credential_vars),
                   args.limit, args.keep)
    except SurveyError as error:
        print(f"refused at launch: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
