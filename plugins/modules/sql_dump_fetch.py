#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: sql_dump_fetch
short_description: Download a dated database dump whole and checked, with date fallback, resume and retries
version_added: 0.1.0
description:
  - Downloads a database dump such as C(https://ibl.flatironinstitute.org/json/<YYYY-MM-DD>_alyxfull.sql.gz)
    to O(dest), choosing the newest date that exists when O(date=latest).
  - The body goes to C(<dest>.part) (mode C(0600)) while its SHA-256 is computed in the same pass; a gzip file is
    also decompress-checked in that pass (O(verify)). Only a complete, verified file is renamed over O(dest), so
    an existing older O(dest) survives any failure.
  - An interrupted transfer continues where it stopped, with an HTTP C(Range) request guarded by C(If-Range),
    both within one run (retries with exponential back-off) and across runs (the C(.part) file is kept).
  - What was downloaded (source URL without credentials, remote size, C(ETag), C(Last-Modified), digests and the
    stat of the file written) is recorded in C(.<name>.fetch.json) beside O(dest) (mode C(0600)). A later run costs
    one C(HEAD) request and no re-hash of O(dest).
  - Memory stays flat (a few MiB) whatever the file size. The C(.part) file is written with C(O_DIRECT) where the
    file system takes it, so a multi-GB dump does not push the database's pages out of the page cache.
author:
  - labops.services developers (!UNKNOWN)
extends_documentation_fragment:
  - labops.services.attributes
  - labops.services.attributes.files
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    details:
      - Resolves the date (C(HEAD) requests), reads the checksum file if O(checksum) names one, and reports what
        would be downloaded; writes nothing.
  diff_mode:
    support: partial
    details:
      - Shows the path, source URL, size and SHA-256 of O(dest) before and after, not the content.
  idempotent:
    support: full
    details:
      - A second run does not download the body again while O(dest) matches the O(checksum), or the remote size
        and C(ETag)/C(Last-Modified) recorded at download.
options:
  url:
    description:
      - C(http), C(https) or C(file) URL of the dump.
      - C({date}) in it is replaced by the resolved date (C(YYYY-MM-DD)).
      - Credentials in the URL (C(https://user:pass@host/...)) are used like O(url_username)/O(url_password) but
        prefer those options; URLs are returned and reported with credentials removed.
    type: str
    required: true
  date:
    description:
      - V(latest) is the newest date, from today (UTC) back at most O(max_age_days) days, for which O(url) exists
        (found with C(HEAD) requests, or a 1-byte ranged C(GET) where C(HEAD) is refused).
      - V(today) is today's date (UTC); otherwise give a date as C(YYYY-MM-DD).
      - Ignored when O(url) has no C({date}).
    type: str
    default: latest
  max_age_days:
    description:
      - How many days before today V(latest) may go back.
    type: int
    default: 7
  dest:
    description:
      - File to write, or an existing directory; then the file name is the last path element of the resolved O(url).
      - C(<dest>.part) and C(.<name>.fetch.json) are kept beside it.
    type: path
    required: true
  url_username:
    description:
      - User name for HTTP basic authentication.
      - Sent only to the scheme, host and port of O(url); a redirect to another origin does not get it.
    type: str
    aliases: [username]
  url_password:
    description:
      - Password for HTTP basic authentication. Never returned or logged.
    type: str
    aliases: [password]
  force_basic_auth:
    description:
      - Send the credentials with the first request. When V(false), they are sent only after the server answers
        C(401) with a C(Basic) challenge.
    type: bool
    default: true
  headers:
    description:
      - Extra HTTP request headers. C(Authorization) and C(Cookie) headers are not sent to another origin after a redirect.
      - C(Range) and C(If-Range) are ignored; the module sets them itself to resume.
    type: dict
    default: {}
  validate_certs:
    description:
      - Verify the server's TLS certificate. Set V(false) only on a network you trust.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file (or C(c_rehash) directory) of the certificate authorities to trust instead of the system's.
    type: path
  use_proxy:
    description:
      - Use the proxies from the C(http_proxy), C(https_proxy) and C(no_proxy) environment variables.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for a connection and for each read.
    type: int
    default: 30
  retries:
    description:
      - How many times a failed request is tried again, with exponential back-off (1, 2, 4, ... seconds, at most 60;
        a C(Retry-After) header is honoured up to that bound).
      - Applies to connection failures, time-outs, cut transfers and HTTP 408, 425, 429, 500, 502, 503 and 504.
        Authentication failures, C(404) and checksum or gzip errors are not retried.
      - With O(resume=true), a failure after data came in does not use up a retry, so a long download over a
        link that drops now and then still completes.
    type: int
    default: 5
  resume:
    description:
      - Continue an interrupted transfer from C(<dest>.part) with an HTTP C(Range) request, when the server supports
        ranges and the remote file is unchanged (C(If-Range)); otherwise the transfer starts again from byte 0.
      - When V(false), every attempt starts from byte 0 and the C(.part) file is removed after a failure.
    type: bool
    default: true
  checksum:
    description:
      - Expected digest, as C(<algorithm>:<hex digest>) or C(<algorithm>:<URL of a checksum file>) (the O(url)
        syntax, C({date}) included), like M(ansible.builtin.get_url).
      - The checksum file may hold one digest, or lines in C(sha256sum) or BSD format; the line for the file name
        of the resolved O(url) is used. It is fetched with the same credentials and options.
      - When given, an existing O(dest) that matches it is not downloaded again (its digest is taken from the
        download record when O(dest) is unchanged since, else computed once).
      - Algorithms C(md5), C(sha1), C(sha224), C(sha256), C(sha384), C(sha512).
    type: str
  verify:
    description:
      - V(gzip) decompress-checks the whole stream (CRC-32 and length of every member) before the file is put in place.
      - V(auto) does so when O(dest) or O(url) ends in C(.gz).
      - V(none) only checks the size (and O(checksum) when given).
    type: str
    choices: [auto, gzip, none]
    default: auto
  force:
    description:
      - Download and replace O(dest) even when it is up to date.
    type: bool
    default: false
notes:
  - When O(mode) is not given, a new O(dest) is created C(0600) (database dumps hold personal data) and a
    replaced O(dest) keeps its mode, owner and group.
  - Dumps of several GB over a link that drops are the use case; M(ansible.builtin.get_url) has no resume, no
    retries and no date fallback, and re-hashes whole files.
  - Without O(checksum) the download record is what makes a second run idempotent; if O(dest) was written by
    something else (or changed since), it is downloaded once more.
  - When the remote copy of an explicit O(date) is gone (C(404)) but O(dest) is still the complete file recorded
    at download, the task succeeds without change.
seealso:
  - module: ansible.builtin.get_url
'''

EXAMPLES = r'''
---
- name: Fetch the newest Alyx dump of the last week
  labops.services.sql_dump_fetch:
    url: https://ibl.flatironinstitute.org/json/{date}_alyxfull.sql.gz
    dest: /srv/alyx/dumps/
    url_username: "{{ alyx_flatiron_user }}"
    url_password: "{{ alyx_flatiron_password }}"
    mode: "0640"
    group: postgres
  register: alyx_dump

- name: Fetch the dump of one day, checked against a published checksum file
  labops.services.sql_dump_fetch:
    url: https://dumps.example.org/{date}_full.sql.gz
    date: "2026-11-19"
    dest: /srv/dumps/full.sql.gz
    checksum: sha256:https://dumps.example.org/{date}_full.sql.gz.sha256

- name: Fetch from a local mirror, without gzip check
  labops.services.sql_dump_fetch:
    url: file:///mnt/mirror/{date}_alyxfull.sql.gz
    date: today
    dest: /srv/alyx/dumps/today.sql.gz
    verify: none

- name: Show which dump was used
  ansible.builtin.debug:
    msg: "{{ alyx_dump.dest }} from {{ alyx_dump.date }} ({{ alyx_dump.size }} bytes, sha256 {{ alyx_dump.sha256 }})"
'''

RETURN = r'''
dest:
  description: The file written (or that would be written), with the file name from the URL when O(dest) is a directory.
  returned: success
  type: str
  sample: /srv/alyx/dumps/2026-11-21_alyxfull.sql.gz
url:
  description: The resolved URL, credentials removed.
  returned: success
  type: str
  sample: https://ibl.flatironinstitute.org/json/2026-11-21_alyxfull.sql.gz
date:
  description: The resolved date; V(null) when O(url) has no C({date}).
  returned: success
  type: str
  sample: "2026-11-21"
size:
  description:
    - Size of O(dest) in bytes.
    - In check mode when a download would happen, the remote size when the server gives it, else V(null).
  returned: success
  type: int
  sample: 4623190016
sha256:
  description:
    - SHA-256 of O(dest), computed while downloading or taken from the download record.
    - V(null) when not known without reading the whole file (check mode before a download, or O(dest) kept
      through a non-SHA-256 O(checksum) without a download record).
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
resumed_from:
  description: Byte offset the last, successful request started from (V(0) when the body came in one piece or nothing was downloaded).
  returned: success
  type: int
  sample: 1073741824
attempts:
  description: Number of C(GET) requests made for the body (V(0) when nothing was downloaded).
  returned: success
  type: int
  sample: 2
elapsed:
  description: Seconds the module spent (date resolution, download, checks and placement).
  returned: always
  type: float
  sample: 41.73
msg:
  description: What was done and why (or what would be done, in check mode).
  returned: always
  type: str
  sample: downloaded 4623190016 bytes from https://ibl.flatironinstitute.org/json/2026-11-21_alyxfull.sql.gz (dest does not exist)
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch import DumpFetcher, FetchError
from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch_http import HttpTransport, url_credentials


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            date=dict(type='str', default='latest'),
            max_age_days=dict(type='int', default=7),
            dest=dict(type='path', required=True),
            url_username=dict(type='str', aliases=['username']),
            url_password=dict(type='str', no_log=True, aliases=['password']),
            force_basic_auth=dict(type='bool', default=True),
            headers=dict(type='dict', default={}),
            validate_certs=dict(type='bool', default=True),
            ca_path=dict(type='path'),
            use_proxy=dict(type='bool', default=True),
            timeout=dict(type='int', default=30),
            retries=dict(type='int', default=5),
            resume=dict(type='bool', default=True),
            checksum=dict(type='str'),
            verify=dict(type='str', default='auto', choices=['auto', 'gzip', 'none']),
            force=dict(type='bool', default=False),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    for url in (params['url'], (params['checksum'] or '').partition(':')[2]):
        secret = url_credentials(url)[1] if '@' in url else None
        if secret:
            module.no_log_values.add(secret)
    for name, value in params['headers'].items():
        if name.lower() in ('authorization', 'cookie', 'proxy-authorization') and value:
            module.no_log_values.add(str(value))
    if params['timeout'] <= 0:
        module.fail_json(msg='timeout must be a positive number of seconds, not %d' % params['timeout'])

    transport = HttpTransport(
        username=params['url_username'], password=params['url_password'], force_basic_auth=params['force_basic_auth'],
        headers=params['headers'], validate_certs=params['validate_certs'], ca_path=params['ca_path'],
        timeout=params['timeout'], use_proxy=params['use_proxy'])
    try:
        fetcher = DumpFetcher(
            url=params['url'], dest=params['dest'], date=params['date'], max_age_days=params['max_age_days'],
            checksum=params['checksum'] or None, verify=params['verify'], retries=params['retries'],
            resume=params['resume'], force=params['force'], transport=transport)
        result = fetcher.run(check_mode=module.check_mode)
    except FetchError as exc:
        module.fail_json(msg=exc.msg, **exc.context)

    if not (module.check_mode and result['changed']):
        file_args = module.load_file_common_arguments(module.params, path=result['dest'])
        result['changed'] = module.set_fs_attributes_if_different(file_args, result['changed'])
    if module._diff and fetcher.diff:
        result['diff'] = fetcher.diff
    module.exit_json(**result)


if __name__ == '__main__':
    main()
