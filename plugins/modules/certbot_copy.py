#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: certbot_copy
short_description: Copy a Let's Encrypt certificate and key from certbot's tree to where a service expects them
version_added: 0.1.0
description:
  - Copies the certificate (C(fullchain.pem) or C(cert.pem)), the private key (C(privkey.pem)) and optionally
    the chain (C(chain.pem)) of one certbot lineage from O(live_dir)/O(cert_name)/ into O(dest_dir), for services
    such as Vidjil's nginx container that read fixed file names (C(/etc/nginx/ssl/web2py.crt) and C(web2py.key)).
  - Before anything is written it checks that the certificate and key files parse as PEM, that the key belongs to
    the certificate (their public keys are compared; RSA, ECDSA and other key types), that the certificate has not
    expired, that it is valid for at least O(min_days_valid) more days, and that its subjectAltNames cover every
    name in O(domains). If a check fails nothing is written and the task fails saying what is wrong and where.
  - Only files whose content, mode, owner or group differ are written; a run with nothing to change reports
    C(changed=false). A file whose content is right but whose mode or owner is wrong is replaced by a new file
    with the right ones.
  - Every file is written to a temporary file in O(dest_dir) that is created with its final mode and given its
    final owner and group before any content is written, then renamed over the destination; a private key is
    therefore never readable by anyone else, not even for a moment. All files are staged first and renamed
    together only when every one was written; if a rename fails the files already replaced are restored, so a
    new certificate is never left next to an old key. The remaining window is small; the
    renames are separate system calls, so for a few microseconds a process opening both files may read the new
    key with the old certificate. Services read them when they (re)load, which should be a handler notified by
    this task.
  - The module does not create O(dest_dir); create it first with the owner and mode the service needs.
  - Results and diffs carry public information only (fingerprints, expiry, names, modes, owners), never key
    material.
author:
  - labops.services developers (!UNKNOWN)
requirements:
  - cryptography >= 3.1 on the managed host (Debian/Ubuntu package C(python3-cryptography))
extends_documentation_fragment:
  - labops.services.attributes
  - labops.services.attributes.files
attributes:
  check_mode:
    support: full
    details:
      - Runs every check and reports which files would change, without writing.
  diff_mode:
    support: full
    details:
      - Shows, per file, mode and owner, the certificate fingerprint, expiry and subjectAltNames, and for the key
        only the SHA-256 of its public key.
  idempotent:
    support: full
options:
  cert_name:
    description:
      - Name of the certbot lineage, usually the first domain of the certificate (as in C(certbot certonly
        --cert-name)). The files are read from O(live_dir)/O(cert_name)/, following certbot's symlinks into
        C(archive/), so the newest renewal is always the one copied.
    type: str
    required: true
  live_dir:
    description:
      - Certbot's C(live) directory.
    type: path
    default: /etc/letsencrypt/live
  dest_dir:
    description:
      - Directory the files are copied into. It must exist.
    type: path
    required: true
  cert_source:
    description:
      - Which certbot file becomes the certificate.
      - V(fullchain) copies C(fullchain.pem) (certificate and intermediates, what nginx and most servers want).
      - V(cert) copies C(cert.pem) (the certificate alone; combine with O(chain_dest_name) for servers that take
        the chain separately).
    type: str
    choices: [fullchain, cert]
    default: fullchain
  cert_dest_name:
    description:
      - File name of the certificate inside O(dest_dir).
    type: str
    default: fullchain.pem
  key_dest_name:
    description:
      - File name of the private key inside O(dest_dir).
    type: str
    default: privkey.pem
  chain_dest_name:
    description:
      - If set, C(chain.pem) (the intermediate certificates) is copied too, under this file name in O(dest_dir),
        with O(cert_mode).
    type: str
  owner:
    description:
      - User name or numeric id that should own the copied files.
      - If not set, a replaced file keeps its owner and a new file belongs to the user the module runs as.
    type: str
  group:
    description:
      - Group name or numeric id of the copied files.
      - If not set, a replaced file keeps its group and a new file gets the default group.
    type: str
  cert_mode:
    description:
      - Permissions of the certificate (and chain) files, as a quoted octal string such as V("0644").
    type: raw
    default: '0644'
  key_mode:
    description:
      - Permissions of the private key file, as a quoted octal string such as V("0640").
      - Modes that grant anything to other users (for example V("0644")) are refused; to let a service user read
        the key, use O(owner) or O(group).
    type: raw
    default: '0600'
  domains:
    description:
      - Names the certificate must be valid for. The task fails unless the certificate's DNS subjectAltNames cover
        them all.
      - Matching is case-insensitive; a wildcard name such as C(*.lab.example) covers exactly one more label
        (C(a.lab.example)), neither C(lab.example) nor C(a.b.lab.example).
    type: list
    elements: str
  min_days_valid:
    description:
      - Fail if the certificate expires in fewer than this many days (whole days, in UTC). An expired certificate
        is always refused.
    type: int
    default: 0
notes:
  - Run it with C(become) as root; certbot's C(live) and C(archive) directories are readable by root only.
  - The temporary files get the SELinux context the destination directory gives new files; no context is set
    explicitly.
seealso:
  - module: community.crypto.x509_certificate_info
    description: Read more details from a certificate.
'''

EXAMPLES = r'''
---
- name: Put the Let's Encrypt certificate where Vidjil's nginx reads it
  labops.services.certbot_copy:
    cert_name: vidjil.lab.example
    dest_dir: /opt/vidjil/ssl
    cert_dest_name: web2py.crt
    key_dest_name: web2py.key
    domains:
      - vidjil.lab.example
    min_days_valid: 7
  notify: Restart vidjil nginx

- name: Copy cert and chain separately, readable by the service's group
  labops.services.certbot_copy:
    cert_name: lab.example
    dest_dir: /srv/datalab/tls
    cert_source: cert
    cert_dest_name: server.crt
    chain_dest_name: chain.crt
    key_dest_name: server.key
    owner: root
    group: datalab
    key_mode: "0640"
    domains:
      - lab.example
      - "*.lab.example"
  register: tls

- name: Say which certificate is in place
  ansible.builtin.debug:
    msg: "{{ tls.fingerprint_sha256 }} valid until {{ tls.not_after }} ({{ tls.days_left }} days)"
'''

RETURN = r'''
cert_dest:
  description: Path of the certificate copy.
  returned: success
  type: str
  sample: /opt/vidjil/ssl/web2py.crt
key_dest:
  description: Path of the private key copy.
  returned: success
  type: str
  sample: /opt/vidjil/ssl/web2py.key
chain_dest:
  description: Path of the chain copy.
  returned: success and O(chain_dest_name) is set
  type: str
  sample: /srv/datalab/tls/chain.crt
fingerprint_sha256:
  description: SHA-256 fingerprint of the lineage's certificate (the first one in the copied file).
  returned: success
  type: str
  sample: "3f:0a:5c:...:9e"
previous_fingerprint_sha256:
  description:
    - SHA-256 fingerprint of the certificate that was in the destination before the task.
    - V(null) if there was no certificate file or it did not parse.
  returned: success
  type: str
  sample: "b1:77:02:...:4d"
not_after:
  description: End of the certificate's validity, ISO 8601 in UTC.
  returned: success
  type: str
  sample: "2026-05-01T07:12:43Z"
days_left:
  description: Whole days until RV(not_after), computed in UTC, rounded down.
  returned: success
  type: int
  sample: 63
subject_alt_names:
  description: DNS names of the certificate's subjectAltName extension.
  returned: success
  type: list
  elements: str
  sample: [lab.example, "*.lab.example"]
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.labops.services.plugins.module_utils._certbot_copy import (
    CERT_SOURCES,
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    CertbotCopy,
    CertbotCopyError,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cert_name=dict(type='str', required=True),
            live_dir=dict(type='path', default='/etc/letsencrypt/live'),
            dest_dir=dict(type='path', required=True),
            cert_source=dict(type='str', default='fullchain', choices=sorted(CERT_SOURCES)),
            cert_dest_name=dict(type='str', default='fullchain.pem'),
            key_dest_name=dict(type='str', default='privkey.pem'),
            chain_dest_name=dict(type='str'),
            owner=dict(type='str'),
            group=dict(type='str'),
            cert_mode=dict(type='raw', default='0644'),
            key_mode=dict(type='raw', default='0600', no_log=False),
            domains=dict(type='list', elements='str'),
            min_days_valid=dict(type='int', default=0),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=CRYPTOGRAPHY_IMPORT_ERROR)

    params = module.params
    try:
        job = CertbotCopy(**dict((name, params[name]) for name in module.argument_spec)).check()
        if job.changed and not module.check_mode:
            job.apply()
    except CertbotCopyError as exc:
        module.fail_json(msg='certbot_copy %s -> %s: %s' % (params['cert_name'], params['dest_dir'], exc))

    result = job.result()
    result['changed'] = job.changed
    if module._diff:
        result['diff'] = job.diff()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
