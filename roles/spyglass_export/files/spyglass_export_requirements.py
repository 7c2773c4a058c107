# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What of a paper's conda environment.yml the Jupyter hub image can install with pip.

Run by the labops.services ``spyglass_export`` role on the controller (PyYAML is there, as
Ansible needs it):

    spyglass_export_requirements.py ENVIRONMENT_YML|- [--method pip|conda] [--from-conda NAME]...
                                    [--extra REQUIREMENT]... [--skip NAME]...

prints JSON: ``requirements`` (pip requirement lines, in order, one per package), ``conda_only``
(conda dependencies not installed: names with their conda spec), ``dropped`` (pip-section lines
that are pip options, not requirements), ``python`` (the environment's Python version, if pinned).

- ``--method pip`` (default): the ``pip:`` section of the environment, plus the conda packages
  named with ``--from-conda`` converted to pip requirements with their pinned version
  (``numpy=1.26.4=py39h...`` -> ``numpy==1.26.4``; ``numpy>=1.20`` stays; a channel prefix such as
  ``conda-forge::`` is dropped). Every other conda dependency is listed in ``conda_only``: a
  conda package name is not always the PyPI name, and many are system libraries.
- ``--method conda``: the image applies the whole environment.yml with mamba (conda and pip
  sections); ``requirements`` then holds only the ``--extra`` ones.
- ``--extra``: more requirement lines, appended. ``--skip``: package names left out wherever they
  come from. Names are compared normalised (PEP 503: case, ``-``, ``_`` and ``.`` alike).

Expected failures end with one line on stderr and exit status 1.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import re
import sys

PROG = 'spyglass_export_requirements'
# A conda match spec: [channel::]name[ version[ build]] or name[=version[=build]] or name<op>version.
CONDA_SPEC = re.compile(
    r'^(?:(?P<channel>[^:\s]+)::)?(?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)'
    r'(?:(?:\s+|=(?![=]))(?P<version>[^=\s<>!~]+)(?:(?:\s+|=)(?P<build>[^=\s]+))?'
    r'|\s*(?P<constraint>(?:[<>!~=]=?\s*[^\s,<>!~=|]+\s*,?\s*)+))?$')
PIP_NAME = re.compile(r'^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._\-]*)')


class RequirementsError(Exception):
    pass


def normalise(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def parse_conda_spec(spec):
    """(name, pip requirement) of a conda dependency string."""
    match = CONDA_SPEC.match(spec.strip())
    if not match:
        raise RequirementsError('cannot read the conda dependency %r' % spec)
    name = match.group('name')
    if match.group('version'):
        version = match.group('version')
        return name, '%s==%s' % (name, version)
    if match.group('constraint'):
        constraint = re.sub(r'\s+', '', match.group('constraint'))
        if re.match(r'^=[^=]', constraint):  # conda's "=1.2" means "1.2.*"
            constraint = '=' + constraint
        return name, name + constraint
    return name, name


def pip_name(requirement):
    """The package name of a pip requirement line, or None for an option line (-e, --index-url)."""
    if requirement.strip().startswith('-'):
        return None
    match = PIP_NAME.match(requirement)
    return match.group('name') if match else None


def derive(environment, method='pip', from_conda=(), extra=(), skip=()):
    if not isinstance(environment, dict):
        raise RequirementsError('the environment file is not a mapping (expected name, channels, dependencies)')
    dependencies = environment.get('dependencies') or []
    if not isinstance(dependencies, list):
        raise RequirementsError('dependencies must be a list')
    skipped = set(normalise(name) for name in skip)
    wanted_from_conda = dict((normalise(name), name) for name in from_conda)

    conda, pip_section = [], []
    for entry in dependencies:
        if isinstance(entry, dict):
            section = entry.get('pip') or []
            if not isinstance(section, list) or not all(isinstance(line, str) for line in section):
                raise RequirementsError('the pip section must be a list of strings')
            pip_section.extend(section)
        elif isinstance(entry, str):
            conda.append(entry)
        else:
            raise RequirementsError('unexpected dependency %r' % (entry,))

    result = {'requirements': [], 'conda_only': [], 'dropped': [], 'python': None}
    seen = set()

    def add(requirement, name):
        key = normalise(name)
        if key in skipped or key in seen:
            return
        seen.add(key)
        result['requirements'].append(requirement)

    converted = {}
    found_conda = set()
    for spec in conda:
        name, requirement = parse_conda_spec(spec)
        key = normalise(name)
        if key == 'python':
            version = re.search(r'(\d+(?:\.\d+)*)', spec[len(name):])
            result['python'] = version.group(1) if version else None
        if method == 'pip' and key in wanted_from_conda:
            converted[key] = requirement
            found_conda.add(key)
        elif key not in ('python', 'pip'):
            result['conda_only'].append(spec)
    missing = sorted(set(wanted_from_conda) - found_conda)
    if method == 'pip' and missing:
        raise RequirementsError('not among the conda dependencies of the environment: %s'
                                % ', '.join(wanted_from_conda[key] for key in missing))

    if method == 'pip':
        for line in pip_section:
            name = pip_name(line)
            if name is None:
                result['dropped'].append(line)
                continue
            add(line.strip(), name)
        for key in sorted(converted):
            add(converted[key], key)
    elif method != 'conda':
        raise RequirementsError('method must be pip or conda, not %r' % method)
    for line in extra:
        name = pip_name(line)
        if name is None:
            raise RequirementsError('an extra requirement must name a package: %r' % line)
        add(line.strip(), name)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description='pip requirements from a conda environment.yml')
    parser.add_argument('environment', help='environment.yml, or - for stdin')
    parser.add_argument('--method', default='pip', choices=['pip', 'conda'])
    parser.add_argument('--from-conda', action='append', default=[], metavar='NAME')
    parser.add_argument('--extra', action='append', default=[], metavar='REQUIREMENT')
    parser.add_argument('--skip', action='append', default=[], metavar='NAME')
    args = parser.parse_args(argv)
    try:
        import yaml
        try:
            if args.environment == '-':
                environment = yaml.safe_load(sys.stdin)
            else:
                with open(args.environment) as handle:
                    environment = yaml.safe_load(handle)
        except (IOError, OSError) as exc:
            raise RequirementsError('cannot read %s: %s' % (args.environment, exc.strerror or exc))
        except yaml.YAMLError as exc:
            raise RequirementsError('%s is not YAML: %s' % (args.environment, str(exc).replace('\n', ' ')))
        result = derive(environment, args.method, args.from_conda, args.extra, args.skip)
    except RequirementsError as exc:
        sys.stderr.write('%s: error: %s\n' % (PROG, exc))
        return 1
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
