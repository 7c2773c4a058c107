# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Edit the DDL of a mysqldump file without touching a byte of its data.

Private to this collection (leading underscore). Pure Python, no Ansible imports, so it
is unit-tested and benchmarked directly.

How it stays fast and exact
---------------------------
The dump is read in large chunks and cut into statements the way the ``mysql`` client
cuts it (current ``DELIMITER``, quotes, comments, ``/*!NNNNN ... */`` version comments).
Most bytes belong to ``INSERT`` statements, and those are never parsed: the scanner only
looks at the few bytes that can end a statement or open a construct (the delimiter,
``"``, a backtick, ``#``, ``--``, ``*``), found with ``bytes.find``. Whether such a byte
is inside a single-quoted string is decided by the parity of the unescaped quotes in
front of it: ``bytes.count`` counts the quotes, and the (much rarer) backslashes are
walked to take out the escaped ones (``\\'`` is escaped, ``\\\\'`` is not; a doubled
``''`` does not change the parity). A byte that matters and turns out to be inside a
string sends the scanner straight to the quote that closes it. Nearly all the work is
done by C code, in constant memory, whatever the length of a line or a statement.

This relies on backslashes appearing only inside string literals, as in every SQL
statement the server accepts (the mysql client's own backslash commands are not
supported).

Only statements whose first word is ``CREATE``, ``ALTER`` or ``SET`` (and only when an
option can change them) are held in memory, tokenised completely, and edited token by
token. All other bytes are copied through unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import os
import queue
import re
import stat
import threading
import zlib

from ansible_collections.labops.services.plugins.module_utils._atomic_file import AtomicFile


CHUNK_SIZE = 1 << 20
# A held (DDL) statement larger than this is refused rather than buffered.
MAX_DDL_SIZE = 16 << 20
# Bounds of the diff returned to the user (bytes of SQL per side).
DIFF_MAX_TOTAL = 128 << 10
DIFF_MAX_STATEMENT = 16 << 10
# gzip output: level 1 compresses dumps 2.5 times faster than level 6, for files a few
# per cent larger (the file is read by a loader, not archived).
GZIP_LEVEL = 1

KINDS = ('charset', 'collation', 'definer')

_START, _PASS, _HOLD = 0, 1, 2
_INF = 1 << 62

_WS_RE = re.compile(rb'[ \t\r\n\f\v]*')
_HEAD_RE = re.compile(rb'(?:/\*M?![0-9]*[ \t\r\n\f\v]*)?([A-Za-z_]+)')
_DQ_BODY_RE = re.compile(rb'[^"\\]*(?:\\[\s\S][^"\\]*)*')
_DASH_COMMENT_RE = re.compile(rb'--(?=[\x00- ]|\Z)')
_COLLATION_NAME_RE = re.compile(r'^[A-Za-z0-9_]+\Z')
_FORBIDDEN_DELIMITER = frozenset(b'\'"`#\\*')

_TOKEN_RE = re.compile(
    rb"(?P<ws>[ \t\r\n\f\v]+)"
    rb"|(?P<lc>(?:\#|--(?=[\x00-\x20]|\Z))[^\n]*\n?)"
    rb"|(?P<vo>/\*M?![0-9]*)"
    rb"|(?P<bc>/\*[\s\S]*?\*/)"
    rb"|(?P<vc>\*/)"
    rb"|(?P<sq>'[^'\\]*(?:\\[\s\S][^'\\]*)*')"
    rb'|(?P<dq>"[^"\\]*(?:\\[\s\S][^"\\]*)*")'
    rb"|(?P<bt>`[^`]*(?:``[^`]*)*`)"
    rb"|(?P<word>[A-Za-z0-9_$\x80-\xff]+)"
    rb"|(?P<punct>[\s\S])"
)
_WS, _LC, _VO, _BC, _VC, _SQ, _DQ, _BT, _WORD, _PUNCT = range(10)
_KIND_OF_GROUP = {'ws': _WS, 'lc': _LC, 'vo': _VO, 'bc': _BC, 'vc': _VC, 'sq': _SQ, 'dq': _DQ,
                  'bt': _BT, 'word': _WORD, 'punct': _PUNCT}
_CODE_KINDS = frozenset((_SQ, _DQ, _BT, _WORD, _PUNCT))
_NAME_KINDS = frozenset((_SQ, _DQ, _BT, _WORD))

_OBJECT_TYPES = frozenset((b'TABLE', b'VIEW', b'TRIGGER', b'PROCEDURE', b'FUNCTION', b'EVENT', b'DATABASE',
                           b'SCHEMA', b'INDEX', b'USER', b'ROLE', b'SERVER', b'TABLESPACE', b'SEQUENCE',
                           b'PACKAGE', b'LOGFILE', b'INSTANCE', b'RESOURCE', b'SPATIAL'))
_OPTIONS_END = frozenset((b'PARTITION', b'AS', b'SELECT', b'IGNORE', b'REPLACE', b'WITH', b'VALUES', b'TABLE'))
_SESSION_COLLATIONS = frozenset((b'COLLATION_CONNECTION', b'COLLATION_DATABASE', b'COLLATION_SERVER'))


class SanitizeError(Exception):
    """The one error this module raises: the message says what, where and what to do."""


class SanitizeOptions(object):
    """What to change. Validates its arguments and raises ``SanitizeError``."""

    def __init__(self, strip_charset=True, strip_collation=True, collation_map=None, strip_definer=False,
                 column_lengths=None):
        self.strip_charset = bool(strip_charset)
        self.strip_collation = bool(strip_collation)
        self.strip_definer = bool(strip_definer)
        self.collation_map = {}
        for old, new in (collation_map or {}).items():
            old, new = str(old), str(new)
            for name in (old, new):
                if not _COLLATION_NAME_RE.match(name):
                    raise SanitizeError('collation_map: %r is not a collation name (letters, digits and _ only)' % name)
            self.collation_map[old.lower().encode('ascii')] = new.encode('ascii')
        for old, new in self.collation_map.items():
            if new.lower() != old and new.lower() in self.collation_map:
                raise SanitizeError('collation_map: %s is both replaced and a replacement; map every name straight to '
                                    'its final collation (a second run would change it again)' % new.decode('ascii'))
        self.column_lengths = {}
        for name, length in (column_lengths or {}).items():
            try:
                length = int(length)
            except (TypeError, ValueError):
                length = 0
            if length <= 0 or length > 65535:
                raise SanitizeError('column_lengths: the length for column %r must be an integer between 1 and 65535, got %r'
                                    % (name, column_lengths[name]))
            self.column_lengths[str(name).lower().encode('utf-8')] = length

    def active(self):
        return bool(self.strip_charset or self.strip_collation or self.strip_definer or self.collation_map
                    or self.column_lengths)

    def held_heads(self):
        """First words of the statements that may need an edit (upper case)."""
        heads = set()
        if self.active():
            heads.add(b'CREATE')
        if self.strip_definer or self.collation_map:
            heads.add(b'ALTER')
        if self.collation_map:
            heads.add(b'SET')
        return frozenset(heads)


def _unquote(raw, kind):
    if kind == _BT:
        return raw[1:-1].replace(b'``', b'`')
    if kind in (_SQ, _DQ):
        return raw[1:-1]
    return raw


class StatementEditor(object):
    """Edits one complete statement (bytes, without its delimiter), token by token.

    ``edit()`` returns ``None`` when nothing changes, else ``(new_bytes, counts)`` with
    counts for ``charset``, ``collation``, ``definer`` (clauses removed),
    ``collations_replaced`` and ``columns_shrunk``.
    """

    def __init__(self, options):
        self.options = options
        words = []
        if options.strip_charset:
            words += [rb'charset', rb'char']
        if options.strip_collation or options.collation_map:
            words.append(rb'collat')
        if options.strip_definer:
            words.append(rb'definer')
        if options.column_lengths:
            words.append(rb'varchar')
        self._prefilter = re.compile(b'|'.join(words), re.IGNORECASE) if words else None

    # -- tokens -------------------------------------------------------------------
    @staticmethod
    def tokenize(stmt):
        toks = []
        in_vc = False
        for m in _TOKEN_RE.finditer(stmt):
            kind = _KIND_OF_GROUP[m.lastgroup]
            start, end = m.span()
            if kind == _VO:
                in_vc = True
            elif kind == _VC:
                if not in_vc:
                    toks.append((_PUNCT, start, start + 1))
                    toks.append((_PUNCT, start + 1, end))
                    continue
                in_vc = False
            toks.append((kind, start, end))
        return toks

    def edit(self, stmt):
        if self._prefilter is None or not self._prefilter.search(stmt):
            return None
        toks = self.tokenize(stmt)
        code = [i for i, t in enumerate(toks) if t[0] in _CODE_KINDS]
        if not code:
            return None
        # A lone quote or a backslash outside a string means the statement is not what
        # the scanner thinks it is: never guess, leave it alone.
        for i in code:
            kind, start, end = toks[i]
            if kind == _PUNCT and stmt[start:end] in (b"'", b'"', b'`', b'\\'):
                return None
        job = _Edit(self.options, stmt, toks, code)
        return job.run()


class _Edit(object):
    """One statement being edited (helper of ``StatementEditor``)."""

    def __init__(self, options, stmt, toks, code):
        self.o = options
        self.stmt = stmt
        self.toks = toks
        self.code = code
        self.upper = [stmt[toks[i][1]:toks[i][2]].upper() if toks[i][0] == _WORD else None for i in code]
        self.deleted = set()
        self.replaced = {}
        self.counts = dict((k, 0) for k in KINDS)
        self.counts['collations_replaced'] = 0
        self.counts['columns_shrunk'] = 0

    # helpers on code positions (index into self.code)
    def text(self, c):
        kind, start, end = self.toks[self.code[c]]
        return self.stmt[start:end]

    def kind(self, c):
        return self.toks[self.code[c]][0]

    def word(self, c):
        return self.upper[c] if 0 <= c < len(self.code) else None

    def is_punct(self, c, char):
        return 0 <= c < len(self.code) and self.kind(c) == _PUNCT and self.text(c) == char

    def only_ws_between(self, c1, c2):
        """Raw tokens between code positions c1..c2 (inclusive) are code or whitespace."""
        for i in range(self.code[c1], self.code[c2] + 1):
            if self.toks[i][0] not in _CODE_KINDS and self.toks[i][0] != _WS:
                return False
        return True

    def run(self):
        first = self.word(0)
        if first in (b'CREATE', b'ALTER'):
            obj = self.header(1)
            if first == b'CREATE' and obj is not None and self.word(obj) == b'TABLE':
                self.create_table(obj)
        self.map_collations(first == b'SET')
        if not self.deleted and not self.replaced:
            return None
        self.drop_empty_version_comments()
        return self.render(), self.counts

    # -- DEFINER and the object type ----------------------------------------------------
    def header(self, c):
        """Walk the statement header; strip DEFINER; return the code position of the object type."""
        n = len(self.code)
        while c < n and c < 64:
            w = self.word(c)
            if w in _OBJECT_TYPES:
                return c
            if w == b'DEFINER' and self.is_punct(c + 1, b'='):
                end = self.definer_end(c + 2)
                if end is None:
                    return None
                if self.o.strip_definer and self.only_ws_between(c, end):
                    self.remove(c, end, 'definer')
                c = end + 1
                continue
            c += 1
        return None

    def definer_end(self, c):
        """Last code position of the user given after ``DEFINER =`` (or None)."""
        n = len(self.code)
        if c >= n:
            return None
        if self.word(c) == b'CURRENT_USER':
            if self.is_punct(c + 1, b'(') and self.is_punct(c + 2, b')'):
                return c + 2
            return c
        if self.kind(c) not in _NAME_KINDS:
            return None
        end = c
        if self.is_punct(c + 1, b'@') and c + 2 < n:
            end = c + 2
            if self.kind(end) == _WORD or self.is_punct(end, b'%'):
                # unquoted host: adjacent words, dots, '%', '-' and ':' (no whitespace between)
                while end + 1 < n and self.code[end + 1] == self.code[end] + 1 and (
                        self.kind(end + 1) == _WORD or self.text(end + 1) in (b'.', b'%', b'-', b':')):
                    end += 1
            elif self.kind(end) not in _NAME_KINDS:
                return None
        return end

    # -- CREATE TABLE -----------------------------------------------------------------
    def create_table(self, c):
        n = len(self.code)
        c += 1
        if self.word(c) == b'IF' and self.word(c + 1) == b'NOT' and self.word(c + 2) == b'EXISTS':
            c += 3
        if c >= n or self.kind(c) not in _NAME_KINDS:
            return
        c += 1
        if self.is_punct(c, b'.') and c + 1 < n and self.kind(c + 1) in _NAME_KINDS:
            c += 2
        if self.is_punct(c, b'('):
            close = self.column_list(c)
            if close is None:
                return
            c = close + 1
        elif self.word(c) == b'LIKE':
            return
        self.table_options(c)

    def column_list(self, open_c):
        """Shrink varchar columns; return the code position of the closing parenthesis."""
        depth = 0
        c = open_c
        n = len(self.code)
        definition_start = True
        while c < n:
            if self.kind(c) == _PUNCT:
                t = self.text(c)
                if t == b'(':
                    depth += 1
                    if depth == 1:
                        definition_start = True
                        c += 1
                        continue
                elif t == b')':
                    depth -= 1
                    if depth == 0:
                        return c
                elif t == b',' and depth == 1:
                    definition_start = True
                    c += 1
                    continue
            if definition_start and depth == 1:
                definition_start = False
                if self.o.column_lengths:
                    self.shrink_column(c)
            c += 1
        return None

    def shrink_column(self, c):
        if self.kind(c) not in _NAME_KINDS or self.word(c + 1) != b'VARCHAR':
            return
        if not (self.is_punct(c + 2, b'(') and self.is_punct(c + 4, b')') and self.kind(c + 3) == _WORD):
            return
        digits = self.text(c + 3)
        if not digits.isdigit():
            return
        name = _unquote(self.text(c), self.kind(c)).lower()
        want = self.o.column_lengths.get(name)
        if want is not None and int(digits) > want:
            self.replaced[self.code[c + 3]] = str(want).encode('ascii')
            self.counts['columns_shrunk'] += 1

    def table_options(self, c):
        n = len(self.code)
        depth = 0
        while c < n:
            if self.kind(c) == _PUNCT:
                t = self.text(c)
                if t == b'(':
                    depth += 1
                elif t == b')':
                    depth -= 1
                c += 1
                continue
            if depth:
                c += 1
                continue
            w = self.word(c)
            if w in _OPTIONS_END:
                return
            clause = self.charset_clause(c)
            if clause is None:
                c += 1
                continue
            kind, end = clause
            wanted = self.o.strip_charset if kind == 'charset' else self.o.strip_collation
            if wanted and self.only_ws_between(c, end):
                self.remove_option(c, end, kind)
            c = end + 1

    def charset_clause(self, c):
        """``[DEFAULT] CHARSET|CHARACTER SET|CHAR SET|COLLATE [=] value`` at c: (kind, end) or None."""
        k = c
        if self.word(k) == b'DEFAULT':
            k += 1
        w = self.word(k)
        if w == b'CHARSET':
            kind, k = 'charset', k + 1
        elif w in (b'CHARACTER', b'CHAR') and self.word(k + 1) == b'SET':
            kind, k = 'charset', k + 2
        elif w == b'COLLATE':
            kind, k = 'collation', k + 1
        else:
            return None
        if self.is_punct(k, b'='):
            k += 1
        if k >= len(self.code) or self.kind(k) not in _NAME_KINDS:
            return None
        return kind, k

    # -- removal ----------------------------------------------------------------------
    def remove_option(self, c1, c2, kind):
        """Remove a table option, with the comma that separates it from its neighbour."""
        if self.is_punct(c1 - 1, b',') and self.only_ws_between(c1 - 1, c1) and self.code[c1 - 1] not in self.deleted:
            first = self.code[c1 - 1]
            if first - 1 >= 0 and self.toks[first - 1][0] == _WS and first - 1 not in self.deleted:
                first -= 1
            self.delete_range(first, self.code[c2], kind)
            return
        if self.is_punct(c2 + 1, b',') and self.only_ws_between(c2, c2 + 1):
            last = self.code[c2 + 1]
            first = self.code[c1]
            if first - 1 >= 0 and self.toks[first - 1][0] == _WS and first - 1 not in self.deleted:
                first -= 1
            self.delete_range(first, last, kind)
            return
        self.remove(c1, c2, kind)

    def remove(self, c1, c2, kind):
        """Remove code positions c1..c2 and the whitespace in front (or, failing that, behind)."""
        first, last = self.code[c1], self.code[c2]
        if first - 1 >= 0 and self.toks[first - 1][0] == _WS and first - 1 not in self.deleted:
            first -= 1
        elif last + 1 < len(self.toks) and self.toks[last + 1][0] == _WS:
            last += 1
        self.delete_range(first, last, kind)

    def delete_range(self, first, last, kind):
        self.deleted.update(range(first, last + 1))
        self.counts[kind] += 1

    def drop_empty_version_comments(self):
        """A ``/*!NNNNN ... */`` emptied by a removal goes too (with one adjacent space)."""
        toks = self.toks
        opened = None
        for i, tok in enumerate(toks):
            if tok[0] == _VO:
                opened = i
            elif tok[0] == _VC and opened is not None:
                inner = range(opened + 1, i)
                if any(j in self.deleted for j in inner) and all(j in self.deleted or toks[j][0] == _WS for j in inner):
                    self.deleted.update(range(opened, i + 1))
                    if opened - 1 >= 0 and toks[opened - 1][0] == _WS and opened - 1 not in self.deleted:
                        self.deleted.add(opened - 1)
                    elif i + 1 < len(toks) and toks[i + 1][0] == _WS:
                        self.deleted.add(i + 1)
                opened = None

    # -- collations -------------------------------------------------------------------
    def map_collations(self, is_set):
        cmap = self.o.collation_map
        if not cmap:
            return
        n = len(self.code)
        for c in range(n):
            w = self.upper[c]
            if w == b'COLLATE':
                k = c + 1
                if self.is_punct(k, b'='):
                    k += 1
            elif is_set and w in _SESSION_COLLATIONS:
                k = c + 1
                if self.is_punct(k, b':') and self.is_punct(k + 1, b'='):
                    k += 1
                if not self.is_punct(k, b'='):
                    continue
                k += 1
            else:
                continue
            if k >= n or self.kind(k) not in _NAME_KINDS:
                continue
            i = self.code[k]
            if i in self.deleted:
                continue
            raw = self.text(k)
            kind = self.kind(k)
            new = cmap.get(_unquote(raw, kind).lower())
            if new is None or _unquote(raw, kind) == new:
                continue
            if kind == _WORD:
                self.replaced[i] = new
            else:
                self.replaced[i] = raw[:1] + new + raw[-1:]
            self.counts['collations_replaced'] += 1

    def render(self):
        out = []
        stmt = self.stmt
        for i, (kind, start, end) in enumerate(self.toks):
            if i in self.deleted:
                continue
            rep = self.replaced.get(i)
            out.append(stmt[start:end] if rep is None else rep)
        return b''.join(out)


class _Reader(object):
    """Chunks of SQL from a plain or gzip file, with failures turned into ``SanitizeError``."""

    def __init__(self, path, compressed, chunk_size=CHUNK_SIZE):
        self.path = path
        self.compressed = compressed
        self.chunk_size = chunk_size
        self.offset = 0
        self._raw = None
        self._file = None
        try:
            self._raw = open(path, 'rb', buffering=0)
            if compressed:
                self._file = gzip.GzipFile(fileobj=self._raw, mode='rb')
            else:
                self._file = self._raw
        except Exception as exc:
            self.close()
            raise SanitizeError(describe_os_error('read', path, exc))

    def read(self, size=None):
        try:
            data = self._file.read(size or self.chunk_size)
        except EOFError:
            raise SanitizeError('cannot read %s: truncated gzip stream (it ends after %d bytes of SQL); '
                                'the file is incomplete, copy or download it again' % (self.path, self.offset))
        except (zlib.error, gzip.BadGzipFile if hasattr(gzip, 'BadGzipFile') else OSError) as exc:
            raise SanitizeError('cannot read %s: corrupt gzip data after %d bytes of SQL (%s)' % (self.path, self.offset, exc))
        except (OSError, IOError) as exc:
            raise SanitizeError(describe_os_error('read', self.path, exc))
        self.offset += len(data)
        return data

    def read_exact(self, size):
        parts = []
        while size > 0:
            data = self.read(min(size, self.chunk_size))
            if not data:
                break
            parts.append(data)
            size -= len(data)
        return b''.join(parts)

    def close(self):
        for f in (self._file, self._raw):
            if f is not None:
                try:
                    f.close()
                except Exception:
                    pass


class _Prefetcher(object):
    """Reads the next chunks in a thread, so gzip decompression runs beside the scanner."""

    def __init__(self, reader, depth=4):
        self.reader = reader
        self._queue = queue.Queue(maxsize=depth)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name='mysql_export_sanitize-read')
        self._thread.daemon = True
        self._thread.start()

    def _run(self):
        try:
            while not self._stop:
                data = self.reader.read()
                self._queue.put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the main thread by read()
            self._queue.put(exc)

    def read(self):
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self):
        self._stop = True
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(0.01)


class _BackgroundWriter(object):
    """Compresses and writes in a thread, in order, beside the scanner (zlib releases the GIL).

    ``write()`` blocks when ``depth`` items are waiting, so memory stays bounded. Errors
    are raised in the caller's thread by the next ``write()`` or by ``close()``.
    """

    def __init__(self, write, depth=6):
        self._write = write
        self._queue = queue.Queue(maxsize=depth)
        self.error = None
        self._thread = threading.Thread(target=self._run, name='mysql_export_sanitize-write')
        self._thread.daemon = True
        self._thread.start()

    def _run(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            try:
                self._write(item)
            except BaseException as exc:  # handed to the main thread
                self.error = exc

    def write(self, data):
        if self.error is not None:
            raise self.error
        self._queue.put(data)

    def _stop(self):
        self._queue.put(None)
        self._thread.join()

    def close(self):
        self._stop()
        if self.error is not None:
            raise self.error

    def abort(self):
        if self.error is None:
            self.error = SanitizeError('aborted')
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._stop()


def describe_os_error(action, path, exc):
    reason = getattr(exc, 'strerror', None) or str(exc)
    if isinstance(exc, IsADirectoryError):
        return '%s is a directory, not a .sql or .sql.gz file' % path
    if isinstance(exc, FileNotFoundError):
        return 'cannot %s %s: no such file' % (action, path)
    if isinstance(exc, PermissionError):
        return 'cannot %s %s: permission denied (run as a user who may %s it, e.g. with become)' % (action, path, action)
    return 'cannot %s %s: %s' % (action, path, reason)


def is_gzip_name(path):
    return path.lower().endswith('.gz')


class _GzipTarget(object):
    """File object for GzipFile(fileobj=...) that writes into an AtomicFile."""

    def __init__(self, atomic):
        self.atomic = atomic

    def write(self, data):
        return self.atomic.write(data)

    def flush(self):
        pass


class _Output(object):
    """Where the sanitised SQL goes.

    Writing is lazy: as long as the output is known to equal a file that already exists
    (the input itself before the first edit, or the existing ``dest``), nothing is
    written. At the first difference the temp file is created and the equal prefix is
    copied from that file, so an unchanged file is never rewritten. In check mode
    nothing is ever written.
    """

    def __init__(self, dest, dest_gz, check_mode, in_place, input_path, input_gz, mode=None):
        self.dest = dest
        self.dest_gz = dest_gz
        self.check_mode = check_mode
        self.in_place = in_place
        self.input_path = input_path
        self.input_gz = input_gz
        self.mode = mode
        self.bytes_out = 0
        self.matched = 0          # bytes known to equal the prefix file
        self.differs = False
        self.atomic = None
        self.gz = None
        self.sink = None          # writer once materialised
        self.ref = None           # reader of the existing dest (compare mode)
        self.dest_stat = None
        try:
            self.dest_stat = os.stat(dest)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SanitizeError(describe_os_error('inspect', dest, exc))
        if self.dest_stat is not None and stat.S_ISDIR(self.dest_stat.st_mode):
            raise SanitizeError('dest %s is a directory; give the full name of the file to write' % dest)
        if not in_place:
            directory = os.path.dirname(os.path.abspath(dest))
            if not os.path.isdir(directory):
                raise SanitizeError('cannot write %s: directory %s does not exist' % (dest, directory))
            if self.dest_stat is None:
                self._materialize()
            else:
                try:
                    self.ref = _Reader(dest, dest_gz)
                except SanitizeError:
                    self._materialize()

    def write(self, data, edited=False):
        self.bytes_out += len(data)
        if self.sink is not None:
            self._write(data)
            return
        if self.ref is not None:
            try:
                same = self.ref.read_exact(len(data)) == data
            except SanitizeError:
                same = False
            if not same:
                self._materialize()
                self._write(data)
                return
        elif edited:
            self._materialize()
            self._write(data)
            return
        self.matched += len(data)

    def _write(self, data):
        try:
            self.sink.write(data)
        except (OSError, IOError) as exc:
            raise SanitizeError(describe_os_error('write', self.dest, exc))

    def _guarded(self, write):
        def guarded(data):
            try:
                write(data)
            except (OSError, IOError) as exc:
                raise SanitizeError(describe_os_error('write', self.dest, exc))
        return guarded

    def _materialize(self):
        self.differs = True
        if self.ref is not None:
            self.ref.close()
        if self.check_mode:
            self.sink = _NullSink()
            return
        if self.dest_stat is not None:
            mode = stat.S_IMODE(self.dest_stat.st_mode)
        elif self.mode is not None:
            mode = self.mode
        else:
            umask = os.umask(0o022)
            os.umask(umask)
            mode = 0o666 & ~umask
        try:
            self.atomic = AtomicFile(self.dest, mode=mode)
            if self.dest_stat is not None and (self.dest_stat.st_uid, self.dest_stat.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.chown(self.atomic.tmp_path, self.dest_stat.st_uid, self.dest_stat.st_gid)
                except OSError:
                    pass
            if self.dest_gz:
                self.gz = gzip.GzipFile(fileobj=_GzipTarget(self.atomic), mode='wb', compresslevel=GZIP_LEVEL, mtime=0)
                self.sink = _BackgroundWriter(self._guarded(self.gz.write))
            else:
                # Plain output is only a copy into the page cache: a thread beside the
                # scanner costs more (GIL hand-overs) than it saves, on a busy host most.
                self.sink = self.atomic
        except (OSError, IOError) as exc:
            self.abort()
            raise SanitizeError(describe_os_error('write', self.dest, exc))
        if self.matched:
            # The output so far equals the start of this file: copy it over.
            source = self.input_path if self.in_place else self.dest
            source_gz = self.input_gz if self.in_place else self.dest_gz
            reader = _Reader(source, source_gz)
            try:
                left = self.matched
                while left:
                    data = reader.read(min(left, CHUNK_SIZE))
                    if not data:
                        raise SanitizeError('cannot copy %s: it changed while being read' % source)
                    self._write(data)
                    left -= len(data)
            finally:
                reader.close()

    def finish(self, backup=None):
        """Returns (changed, backup_file)."""
        if self.ref is not None and not self.differs:
            try:
                extra = self.ref.read(1)
            except SanitizeError:
                extra = b'?'
            if extra:
                self._materialize()
        if self.ref is not None:
            self.ref.close()
        backup_file = None
        if self.atomic is not None:
            try:
                if isinstance(self.sink, _BackgroundWriter):
                    self.sink.close()
                if self.gz is not None:
                    self.gz.close()
                if backup is not None and self.dest_stat is not None:
                    backup_file = backup(self.dest)
                self.atomic.commit()
            except (OSError, IOError) as exc:
                raise SanitizeError(describe_os_error('write', self.dest, exc))
            finally:
                self.atomic.abort()
        return self.differs, backup_file

    def abort(self):
        if self.ref is not None:
            self.ref.close()
        if isinstance(self.sink, _BackgroundWriter):
            self.sink.abort()
        if self.atomic is not None:
            self.atomic.abort()


class _NullSink(object):
    def write(self, data):
        return len(data)


class DumpScanner(object):
    """Cuts a stream of SQL into statements and hands the DDL ones to an editor.

    ``read()`` returns the next chunk (``b''`` at the end); ``out.write(data, edited)``
    receives every byte of the result, in order. ``on_change(offset, before, after)`` is
    called for every changed statement.
    """

    def __init__(self, editor, held_heads, describe_position):
        self.editor = editor
        self.held_heads = held_heads
        self.describe_position = describe_position
        self.statements_changed = 0
        self.counts = dict((k, 0) for k in KINDS)
        self.counts['collations_replaced'] = 0
        self.counts['columns_shrunk'] = 0
        self.bytes_in = 0

    def run(self, read, out, on_change=None):  # noqa: C901 - one tight loop, on purpose
        held_heads = self.held_heads
        edit = self.editor.edit
        ws_match = _WS_RE.match
        head_match = _HEAD_RE.match
        dq_match = _DQ_BODY_RE.match
        comment_search = _DASH_COMMENT_RE.search
        write = out.write
        inf = _INF

        buf = b''
        blen = 0
        base = 0                  # absolute offset of buf[0]
        pos = 0                   # scan position in buf
        ck = 0                    # the quote parity (in_sq) is known at ck
        flush_from = 0            # bytes before this are written (or held)
        free_from = 0             # a '/' before this belongs to a finished construct
        eof = False
        mode = _START
        sub = None                # construct crossing a chunk end: 'lc', 'bc', 'dq', 'bt'
        sub_start = 0             # absolute offset where that construct started
        in_sq = False
        in_vc = False
        last_quote_seg = None     # absolute (start, end) of the last span that held unescaped quotes
        stmt_start = 0
        hold = []
        hold_size = 0
        delim = b';'
        look = 3                  # bytes after a hit needed to classify it
        # next position of: the delimiter, '"', '`', '#', '--', '*' (-1: search again)
        n_de = n_dq = n_bt = n_ha = n_dd = n_st = -1

        while True:
            keep = -1  # >= 0: everything before keep is done, read more

            if sub is not None:
                # Inside a comment, double-quoted string or quoted identifier: find its
                # end; nothing in it counts for the quote parity.
                if sub == 'lc':
                    e = buf.find(b'\n', pos)
                    if e < 0:
                        keep = blen
                    else:
                        pos = ck = free_from = e + 1
                        sub = None
                elif sub == 'bc':
                    e = buf.find(b'*/', pos)
                    if e < 0:
                        keep = max(pos, blen - 1)
                    else:
                        pos = ck = free_from = e + 2
                        sub = None
                elif sub == 'dq':
                    e = dq_match(buf, pos).end()
                    if e < blen and buf[e] == 34:
                        pos = ck = free_from = e + 1
                        sub = None
                    else:
                        keep = e  # the end of the data, or a backslash that escapes what comes next
                else:  # 'bt'
                    e = buf.find(b'`', pos)
                    if e < 0:
                        keep = blen
                    elif e + 1 < blen:
                        if buf[e + 1] == 96:  # `` is an escaped backtick
                            pos = e + 2
                            continue
                        pos = ck = free_from = e + 1
                        sub = None
                    elif eof:
                        pos = ck = free_from = e + 1
                        sub = None
                    else:
                        keep = e  # a backtick at the very end: it may be doubled
                if keep >= 0:
                    pos = ck = keep

            elif mode == _START:
                p = ws_match(buf, pos).end()
                if p >= blen or (blen - p < 64 and not eof):
                    keep = pos = ck = p
                else:
                    c = buf[p]
                    if c == 35 or (c == 45 and buf[p + 1:p + 2] == b'-' and (p + 2 >= blen or buf[p + 2] <= 32)):
                        sub, sub_start, pos = 'lc', base + p, p
                        continue
                    if c == 47 and buf[p + 1:p + 2] == b'*' and buf[p + 2:p + 3] != b'!' and buf[p + 2:p + 4] != b'M!':
                        sub, sub_start, pos = 'bc', base + p, p + 2
                        continue
                    if buf.startswith(delim, p):
                        pos = p + len(delim)
                        continue
                    m = head_match(buf, p)
                    word = m.group(1).upper() if m else b''
                    stmt_start = base + p
                    if word == b'DELIMITER' and m.start(1) == p and buf[m.end():m.end() + 1] in (b' ', b'\t'):
                        e = buf.find(b'\n', p)
                        if e < 0 and not eof:
                            keep = pos = ck = p
                        else:
                            e = blen if e < 0 else e + 1
                            delim = self._delimiter(buf[m.end():e], stmt_start)
                            look = max(3, len(delim))
                            n_de = -1
                            pos = e
                    else:
                        mode = _HOLD if word in held_heads else _PASS
                        if mode == _HOLD:
                            if p > flush_from:
                                write(memoryview(buf)[flush_from:p])
                            flush_from = p
                            hold = []
                            hold_size = 0
                        pos = ck = free_from = p
                        in_sq = in_vc = False

            else:  # _PASS or _HOLD: jump to the next byte that matters
                limit = blen if eof else blen - look
                if n_de < pos:
                    n_de = buf.find(delim, pos)
                    if n_de < 0:
                        n_de = inf
                if n_dq < pos:
                    n_dq = buf.find(b'"', pos)
                    if n_dq < 0:
                        n_dq = inf
                if n_bt < pos:
                    n_bt = buf.find(b'`', pos)
                    if n_bt < 0:
                        n_bt = inf
                if n_ha < pos:
                    n_ha = buf.find(b'#', pos)
                    if n_ha < 0:
                        n_ha = inf
                if n_st < pos:
                    n_st = buf.find(b'*', pos)
                    if n_st < 0:
                        n_st = inf
                if n_dd < pos:
                    # '--' followed by a space, a control character or the end starts a
                    # comment. Hex blobs have no '-': hop from dash to dash with memchr;
                    # where dashes are common (dates, negative numbers), hand over to the
                    # regex engine, which scans for the pair faster than bytes.find.
                    d = buf.find(b'-', pos)
                    hops = 0
                    while d >= 0:
                        if d + 1 >= blen:  # more data decides (at the end of the file: just a '-')
                            if eof:
                                d = -1
                            break
                        if buf[d + 1] == 45 and (d + 2 >= blen or buf[d + 2] <= 32):
                            break
                        hops += 1
                        if hops > 4 and (d - pos) < hops * 512:
                            m = comment_search(buf, d)
                            d = m.start() if m else -1
                            break
                        d = buf.find(b'-', d + 1)
                    n_dd = d if d >= 0 else inf
                s = min(n_de, n_dq, n_bt, n_ha, n_dd, n_st)
                if ck < s < limit and buf[s - 1] == 92:
                    # Escaped by a backslash, so inside a string literal (there are no
                    # backslashes outside of one): only this needle moves on. mysqldump
                    # escapes every '"', so skip those in a tight loop.
                    if s == n_dq:
                        while True:
                            n_dq = buf.find(b'"', n_dq + 1)
                            if n_dq < 0:
                                n_dq = inf
                                break
                            if buf[n_dq - 1] != 92:
                                break
                    else:
                        pos = s + 1
                    continue
                at_limit = s >= limit
                if at_limit:
                    # Nothing to classify before the end of the usable data: advance the
                    # parity to a cut before the first byte that still needs what follows
                    # it, and split no backslash run, '/' '*' pair or delimiter. Usually
                    # that is the end of the buffer, so no bytes are carried over.
                    if s > blen:
                        s = blen
                    if not eof:
                        if s == blen and len(delim) > 1:
                            for k in range(len(delim) - 1, 0, -1):
                                if buf.endswith(delim[:k], ck, s):
                                    s -= k
                                    break
                        # a backslash escapes the byte after it: never cut between them
                        if s > ck and buf[s - 1] == 92:
                            s -= _backslashes_before(buf, s, ck) & 1
                        elif s > ck and buf[s - 1] in (47, 45):  # the '/' of '/*', the '-' of '--'
                            s -= 1
                    if s < ck:
                        s = ck
                if s > ck:
                    # Unescaped quotes in [ck, s): all quotes, minus the ones a backslash
                    # escapes once backslash pairs are taken out.
                    q = buf.count(b"'", ck, s)
                    if q:
                        # Walk the backslashes (rare next to quotes): each one escapes
                        # the next byte. Where they are dense, count in C instead.
                        b = buf.find(b'\\', ck, s)
                        walked = 0
                        while b >= 0:
                            walked += 1
                            if walked > 32 and (b - ck) < walked * 48:
                                if buf.find(b'\\\\', b, s) >= 0:
                                    q -= buf[b:s].replace(b'\\\\', b'').count(b"\\'")
                                else:
                                    q -= buf.count(b"\\'", b, s)
                                break
                            if buf[b + 1] == 39:
                                q -= 1
                            b = buf.find(b'\\', b + 2, s)
                        if q:
                            last_quote_seg = (base + ck, base + s)
                            if q & 1:
                                in_sq = not in_sq
                    ck = s
                if at_limit:
                    keep = s
                    if pos < s:
                        pos = s
                elif in_sq:
                    # Inside a string: go straight to the quote that closes it.
                    q = buf.find(b"'", s + 1)
                    while q >= 0 and buf[q - 1] == 92 and _backslashes_before(buf, q, s) & 1:
                        q = buf.find(b"'", q + 1)
                    if q < 0:
                        pos = blen  # the rest of the buffer is inside the string
                    else:
                        pos = ck = q + 1
                        in_sq = False
                elif s == n_de:
                    end = s + len(delim)
                    if mode == _HOLD:
                        hold.append(buf[flush_from:s])
                        stmt = b''.join(hold) if len(hold) > 1 else hold[0]
                        hold = []
                        result = edit(stmt)
                        if result is None:
                            write(stmt)
                        else:
                            new, counts = result
                            write(new, True)
                            self.statements_changed += 1
                            for k, v in counts.items():
                                self.counts[k] += v
                            if on_change is not None:
                                on_change(stmt_start, stmt + delim, new + delim)
                        write(delim)
                        flush_from = end
                    mode = _START
                    in_vc = False
                    pos = ck = free_from = end
                elif s == n_st:  # '*'
                    after = buf[s + 1:s + 3]
                    if s - 1 >= free_from and buf[s - 1] == 47:  # '/*'
                        if after[:1] == b'!':
                            in_vc = True
                            pos = s + 2
                        elif after == b'M!':
                            in_vc = True
                            pos = s + 3
                        else:
                            sub, sub_start, pos = 'bc', base + s - 1, s + 1
                    elif in_vc and after[:1] == b'/':  # '*/'
                        in_vc = False
                        pos = free_from = s + 2
                    else:
                        pos = s + 1
                elif s == n_dq:
                    sub, sub_start, pos = 'dq', base + s, s + 1
                elif s == n_bt:
                    sub, sub_start, pos = 'bt', base + s, s + 1
                else:  # '#' or '-- '
                    sub, sub_start, pos = 'lc', base + s, s

            if keep < 0:
                continue

            # -- more data needed: hand over what is done, keep the rest -----------------
            if keep > flush_from:
                if mode == _HOLD:
                    hold.append(buf[flush_from:keep])
                    hold_size += keep - flush_from
                    if hold_size > MAX_DDL_SIZE:
                        raise SanitizeError(
                            'the statement starting at %s is longer than %s; it is not the kind of DDL statement '
                            'this module edits (is the file a mysqldump export?)'
                            % (self.describe_position(stmt_start), _size(MAX_DDL_SIZE)))
                else:
                    write(memoryview(buf)[flush_from:keep])
                flush_from = keep
            if eof:
                if keep < blen:
                    write(memoryview(buf)[keep:])
                break
            chunk = read()
            self.bytes_in += len(chunk)
            if not chunk:
                eof = True
            buf = buf[keep:] + chunk if keep < blen else chunk
            blen = len(buf)
            base += keep
            pos -= keep
            ck -= keep
            flush_from -= keep
            free_from = max(0, free_from - keep)
            n_de = n_dq = n_bt = n_ha = n_dd = n_st = -1

        # -- end of file: anything left open is an error ------------------------------------
        if sub == 'bc':
            raise SanitizeError('unterminated comment starting at %s: the file ends before its */ (truncated dump?)'
                                % self.describe_position(sub_start))
        if sub == 'dq':
            raise SanitizeError('unterminated double-quoted string starting at %s: the file ends inside it '
                                '(truncated dump?)' % self.describe_position(sub_start))
        if sub == 'bt':
            raise SanitizeError('unterminated `quoted identifier` starting at %s: the file ends inside it '
                                '(truncated dump?)' % self.describe_position(sub_start))
        if mode != _START:
            if in_sq:
                raise SanitizeError('unterminated string literal starting at %s: the file ends inside it '
                                    '(truncated dump?)' % self.describe_position(self.find_open_quote(last_quote_seg)))
            raise SanitizeError("unterminated statement starting at %s: the file ends before its delimiter %r "
                                "(truncated dump?)" % (self.describe_position(stmt_start), delim.decode('latin-1')))

    def _delimiter(self, rest, offset):
        """The new delimiter of a ``DELIMITER x`` line (as the mysql client reads it)."""
        args = rest.split()
        new = args[0] if args else b''
        if new[:1] in (b"'", b'"', b'`') and len(new) > 1 and new[-1:] == new[:1]:
            new = new[1:-1]
        if not new or any(ch in _FORBIDDEN_DELIMITER for ch in bytearray(new)):
            raise SanitizeError('unusable DELIMITER %r at %s; use a delimiter without quotes, backslash, # or *'
                                % (new.decode('latin-1'), self.describe_position(offset)))
        return new

    find_open_quote = None  # set by the caller: absolute (start, end) span -> offset of the opening quote


def _backslashes_before(data, i, lo):
    """How many backslashes end right before data[i] (not looking below lo)."""
    n = 0
    while i - n > lo and data[i - n - 1] == 92:
        n += 1
        if n == 8:  # a long run: let C measure it
            part = data[lo:i]
            return len(part) - len(part.rstrip(b'\\'))
    return n


def _unescaped(data, i):
    return not _backslashes_before(data, i, 0) & 1


def _last_unescaped_quote(data, end):
    q = data.rfind(b"'", 0, end)
    while q >= 0 and not _unescaped(data, q):
        q = data.rfind(b"'", 0, q)
    return q


def literal_start(data):
    """Offset in data of the quote that opens the last, unterminated string literal (or -1).

    That is the last unescaped quote, moved back over doubled quotes: ``'it''s`` starts
    at its first quote.
    """
    q = _last_unescaped_quote(data, len(data))
    while q > 0 and data[q - 1] == 39 and _unescaped(data, q - 1):
        p = _last_unescaped_quote(data, q - 1)
        if p < 0:
            break
        q = p
    return q


class MysqlExportSanitizer(object):
    """Sanitise one dump file; ``run()`` returns the result dict of the module."""

    def __init__(self, path, dest=None, options=None, check_mode=False, want_diff=False, backup=None, mode=None,
                 chunk_size=CHUNK_SIZE):
        self.path = path
        self.dest = dest or path
        self.options = options or SanitizeOptions()
        self.check_mode = check_mode
        self.want_diff = want_diff
        self.backup = backup
        self.mode = mode
        self.chunk_size = chunk_size
        self.in_gz = is_gzip_name(path)
        self.dest_gz = is_gzip_name(self.dest)
        self.in_place = self._same_file(path, self.dest)
        # A symlink stays a symlink: the file it points to is the one replaced.
        self.target = os.path.realpath(self.dest) if os.path.islink(self.dest) else self.dest
        self._diff_before = []
        self._diff_after = []
        self._diff_size = 0
        self._diff_hidden = 0

    @staticmethod
    def _same_file(a, b):
        if os.path.abspath(a) == os.path.abspath(b):
            return True
        try:
            return os.path.samefile(a, b)
        except OSError:
            return False

    # -- positions for error messages -----------------------------------------------------
    def describe_position(self, offset):
        """'byte N (line L) of PATH': the line is counted again from the start (error path only)."""
        line = None
        try:
            reader = _Reader(self.path, self.in_gz, self.chunk_size)
            try:
                line, seen = 1, 0
                while seen < offset:
                    data = reader.read(min(self.chunk_size, offset - seen))
                    if not data:
                        break
                    line += data.count(b'\n')
                    seen += len(data)
            finally:
                reader.close()
        except SanitizeError:
            line = None
        if line is None:
            return 'byte %d of %s' % (offset, self.path)
        return 'byte %d (line %d) of %s' % (offset, line, self.path)

    def find_open_quote(self, span):
        if span is None:  # pragma: no cover - parity can only be odd after a quote
            return 0
        start, end = span
        reader = _Reader(self.path, self.in_gz, self.chunk_size)
        try:
            left = start
            while left:
                data = reader.read(min(left, self.chunk_size))
                if not data:  # pragma: no cover
                    return start
                left -= len(data)
            data = reader.read_exact(end - start)
        finally:
            reader.close()
        q = literal_start(data)
        return start + max(q, 0)

    # -- diff -------------------------------------------------------------------------------
    def _on_change(self, offset, before, after):
        size = min(len(before), DIFF_MAX_STATEMENT) + min(len(after), DIFF_MAX_STATEMENT)
        if self._diff_size + size > 2 * DIFF_MAX_TOTAL:
            self._diff_hidden += 1
            return
        self._diff_size += size
        header = '-- statement at byte %d\n' % offset
        self._diff_before.append(header + _shorten(before) + '\n')
        self._diff_after.append(header + _shorten(after) + '\n')

    def _diff(self):
        before = '\n'.join(self._diff_before)
        after = '\n'.join(self._diff_after)
        if self._diff_hidden:
            note = '\n-- ... and %d more changed statements not shown\n' % self._diff_hidden
            before += note
            after += note
        return {'before': before, 'after': after, 'before_header': self.path, 'after_header': self.dest}

    # -- the job ----------------------------------------------------------------------------
    def _check_input(self):
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise SanitizeError(describe_os_error('read', self.path, exc))
        if stat.S_ISDIR(st.st_mode):
            raise SanitizeError('%s is a directory, not a .sql or .sql.gz file' % self.path)
        if not self.in_gz:
            try:
                with open(self.path, 'rb') as f:
                    magic = f.read(2)
            except (OSError, IOError) as exc:
                raise SanitizeError(describe_os_error('read', self.path, exc))
            if magic == b'\x1f\x8b':
                raise SanitizeError('%s is gzip-compressed but its name does not end in .gz; rename it to '
                                    '%s.gz (or decompress it) so the module knows how to read and write it'
                                    % (self.path, self.path))

    def run(self):
        self._check_input()
        editor = StatementEditor(self.options)
        scanner = DumpScanner(editor, self.options.held_heads(), self.describe_position)
        scanner.find_open_quote = self.find_open_quote
        reader = _Reader(self.path, self.in_gz, self.chunk_size)
        # gzip: decompress in a thread beside the scanner; a plain read() is cheap enough.
        prefetch = _Prefetcher(reader) if self.in_gz else None
        out = None
        try:
            out = _Output(self.target, self.dest_gz, self.check_mode, self.in_place, self.path, self.in_gz, self.mode)
            scanner.run(prefetch.read if prefetch else reader.read, out, self._on_change if self.want_diff else None)
            if prefetch:
                prefetch.close()
            reader.close()
            changed, backup_file = out.finish(self.backup if not self.check_mode else None)
        except BaseException:
            if out is not None:
                out.abort()
            raise
        finally:
            if prefetch:
                prefetch.close()
            reader.close()
        counts = scanner.counts
        result = {
            'changed': changed,
            'dest': self.dest,
            'statements_changed': scanner.statements_changed,
            'clauses_removed': dict((k, counts[k]) for k in KINDS),
            'collations_replaced': counts['collations_replaced'],
            'columns_shrunk': counts['columns_shrunk'],
            'bytes_in': scanner.bytes_in,
            'bytes_out': out.bytes_out,
            'backup_file': backup_file,
        }
        if self.want_diff:
            result['diff'] = self._diff()
        return result


def _size(n):
    return '%d MiB' % (n >> 20) if n >= 1 << 20 and not n % (1 << 20) else '%d bytes' % n


def _shorten(data):
    if len(data) > DIFF_MAX_STATEMENT:
        data = data[:DIFF_MAX_STATEMENT] + b'\n-- ... (statement shortened)'
    return data.decode('utf-8', 'replace')
