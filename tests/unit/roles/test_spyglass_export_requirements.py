# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/spyglass_export/files/spyglass_export_requirements.py: environment.yml -> pip requirements.

``derive`` is tested in-process on environments shaped like ``conda env export`` output (the
file is imported by path); ``main`` runs as a subprocess, as the role runs it on the controller,
on the generated export's environment.yml and on broken input.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'spyglass_export', 'files', 'spyglass_export_requirements.py')
GENERATOR = os.path.join(ROOT, 'tests', 'fixtures', 'spyglass_export', 'generate_export.py')


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


req = _import(SCRIPT, 'spyglass_export_requirements')

ENVIRONMENT = {
    'name': 'Paper2024',
    'channels': ['conda-forge', 'franklab'],
    'dependencies': [
        '_libgcc_mutex=0.1=conda_forge',
        'datajoint=0.14.3=pyhd8ed1ab_0',
        'numpy=1.26.4=py39h474f0d3_0',
        'pip=24.0=pyhd8ed1ab_0',
        'python=3.9.19=h0755675_0_cpython',
        'conda-forge::Track_Linearization>=2.3',
        {'pip': ['spyglass-neuro==0.5.4', 'PyMySQL==1.1.2', '--extra-index-url https://example.invalid/simple',
                 '-e git+https://example.invalid/x.git#egg=x', 'ghostipy @ https://example.invalid/g.whl']},
    ],
    'prefix': '/home/x/miniforge3/envs/Paper2024',
}


@pytest.mark.parametrize('spec, expected', [
    ('numpy=1.26.4=py39h474f0d3_0', ('numpy', 'numpy==1.26.4')),
    ('numpy=1.26.*', ('numpy', 'numpy==1.26.*')),
    ('numpy', ('numpy', 'numpy')),
    ('numpy>=1.20,<2', ('numpy', 'numpy>=1.20,<2')),
    ('numpy >=1.20', ('numpy', 'numpy>=1.20')),
    ('numpy ==1.2', ('numpy', 'numpy==1.2')),
    ('numpy =1.2', ('numpy', 'numpy==1.2')),
    ('numpy 1.26.4 py39_0', ('numpy', 'numpy==1.26.4')),
    ('conda-forge::numpy=1.2=h1', ('numpy', 'numpy==1.2')),
    ('python_abi=3.9=4_cp39', ('python_abi', 'python_abi==3.9')),
    ('ca-certificates=2024.2.2=hbcca054_0', ('ca-certificates', 'ca-certificates==2024.2.2')),
])
def test_parse_conda_spec(spec, expected):
    assert req.parse_conda_spec(spec) == expected


@pytest.mark.parametrize('spec', ['', '=1.2', '::numpy', 'numpy=1.2=a=b c'])
def test_parse_conda_spec_refuses(spec):
    with pytest.raises(req.RequirementsError):
        req.parse_conda_spec(spec)


def test_pip_method_takes_the_pip_section_and_lists_the_rest():
    result = req.derive(ENVIRONMENT)
    assert result['requirements'] == ['spyglass-neuro==0.5.4', 'PyMySQL==1.1.2',
                                      'ghostipy @ https://example.invalid/g.whl']
    assert result['dropped'] == ['--extra-index-url https://example.invalid/simple',
                                 '-e git+https://example.invalid/x.git#egg=x']
    assert result['conda_only'] == ['_libgcc_mutex=0.1=conda_forge', 'datajoint=0.14.3=pyhd8ed1ab_0',
                                    'numpy=1.26.4=py39h474f0d3_0', 'conda-forge::Track_Linearization>=2.3']
    assert result['python'] == '3.9.19'


def test_named_conda_packages_become_pinned_pip_requirements():
    result = req.derive(ENVIRONMENT, from_conda=['DataJoint', 'track-linearization', 'numpy'],
                        extra=['ipympl>=0.9', 'pymysql==9'], skip=['spyglass_neuro', 'Numpy'])
    assert result['requirements'] == ['PyMySQL==1.1.2', 'ghostipy @ https://example.invalid/g.whl',
                                      'datajoint==0.14.3', 'Track_Linearization>=2.3', 'ipympl>=0.9']
    assert result['conda_only'] == ['_libgcc_mutex=0.1=conda_forge']


def test_a_conda_package_that_is_not_there_is_an_error():
    with pytest.raises(req.RequirementsError, match='not among the conda dependencies of the environment: scipy'):
        req.derive(ENVIRONMENT, from_conda=['scipy', 'numpy'])


def test_conda_method_installs_only_the_extras_with_pip():
    result = req.derive(ENVIRONMENT, method='conda', from_conda=['scipy'], extra=['ipympl'])
    assert result['requirements'] == ['ipympl']
    assert len(result['conda_only']) == 4  # all but python and pip


@pytest.mark.parametrize('environment, message', [
    (['a'], 'not a mapping'),
    ({'dependencies': 'numpy'}, 'must be a list'),
    ({'dependencies': [{'pip': 'numpy'}]}, 'pip section must be a list'),
    ({'dependencies': [3]}, 'unexpected dependency'),
])
def test_bad_environment(environment, message):
    with pytest.raises(req.RequirementsError, match=message):
        req.derive(environment)


def test_bad_extra():
    with pytest.raises(req.RequirementsError, match='must name a package'):
        req.derive(ENVIRONMENT, extra=['--index-url x'])


def test_empty_environment_gives_nothing():
    assert req.derive({'name': 'x'}) == {'requirements': [], 'conda_only': [], 'dropped': [], 'python': None}


def run(args, stdin=None):
    return subprocess.run([sys.executable, SCRIPT] + args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False)


def test_main_on_the_generated_export(tmp_path):
    generator = _import(GENERATOR, 'generate_export')
    manifest = generator.generate(str(tmp_path))
    proc = run([str(tmp_path / 'export' / 'environment.yml')])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result['requirements'] == manifest['pip_requirements']
    assert result['python'] == '3.9.19'
    assert 'datajoint=0.14.3=pyhd8ed1ab_0' in result['conda_only']

    with open(str(tmp_path / 'export' / 'environment.yml')) as handle:
        proc = run(['-', '--from-conda', 'datajoint', '--skip', 'pymysql'], stdin=handle.read())
    assert json.loads(proc.stdout)['requirements'] == ['datajoint==0.14.3']


def test_main_failures(tmp_path):
    proc = run([str(tmp_path / 'missing.yml')])
    assert proc.returncode == 1 and proc.stderr.startswith('spyglass_export_requirements: error: cannot read')
    bad = tmp_path / 'bad.yml'
    bad.write_text('dependencies: [\n')
    proc = run([str(bad)])
    assert proc.returncode == 1 and 'is not YAML' in proc.stderr and proc.stderr.count('\n') == 1
    proc = run([str(bad), '--method', 'mamba'])
    assert proc.returncode == 2
