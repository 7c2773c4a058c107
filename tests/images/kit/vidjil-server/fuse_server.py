"""Vidjil's fuse XML-RPC server, as the stand-in (labops kit; NOT Vidjil's fuse.py).

fuse(cmd, output_dir, filename) keeps upstream's signature; there is no vidjil-algo or fuse.py
to run, so it reads the input file named last in cmd and writes <output_dir>/<filename>.fused.
"""
import json
import os
import sys
from xmlrpc.server import SimpleXMLRPCServer

sys.path.insert(0, './web2py/applications/vidjil/modules')
import defs  # noqa: E402


def fuse(cmd, output_dir, filename):
    source = cmd.split()[-1]
    with open(source, 'rb') as f:
        data = f.read()
    result = {'input': os.path.basename(source), 'bytes': len(data),
              'sequences': sum(1 for line in data.splitlines() if line.startswith(b'>')),
              'producer': 'labops kit stand-in fuse'}
    path = os.path.join(output_dir, filename + '.fused')
    with open(path, 'w') as f:
        json.dump(result, f)
    return os.path.abspath(path)


def main():
    server = SimpleXMLRPCServer((defs.FUSE_SERVER, defs.PORT_FUSE_SERVER), logRequests=False)
    server.register_function(fuse, 'fuse')
    server.serve_forever()


if __name__ == '__main__':
    main()
