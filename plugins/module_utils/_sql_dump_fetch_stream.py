# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The body pipeline of ``sql_dump_fetch``: write, hash and gzip-check each buffer once.

Private to this collection, standard library only. The main thread only reads the network
into a buffer from a fixed pool and hands it to :class:`StreamPipeline`; one worker thread
writes it to the ``.part`` file, another hashes it (and inflates it, for gzip). ``hashlib``,
``zlib`` and ``os.pwrite`` release the GIL, so the three overlap. Memory is the pool, whatever
the file size.

Writes use ``O_DIRECT`` where the file system takes it (page-aligned ``mmap`` buffers, 4 KiB
aligned offsets and lengths): a multi-GB dump then neither costs a copy into the page cache nor
evicts the database's hot pages, and the ``fsync`` before the rename has nothing left to do.
Where ``O_DIRECT`` is refused, or once a write is not aligned (the tail, a short read after a
cut connection), writes are buffered, and every ``writeback_step`` bytes the kernel is asked to
start writing out (``posix_fadvise(DONTNEED)``) so that the final ``fsync`` stays short.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import hashlib
import mmap
import os
import queue
import threading
import zlib

GZIP_MAGIC = b'\x1f\x8b'
ALIGN = 4096  # O_DIRECT alignment that suits 512-byte and 4 KiB sector devices
O_DIRECT = getattr(os, 'O_DIRECT', 0)
_INFLATE_STEP = 1 << 20  # most bytes of inflated output held at once


class StreamCheckError(Exception):
    """The stream is not what it must be (corrupt or truncated gzip)."""


class StreamWriteError(Exception):
    """Writing the file failed; ``error`` is the ``OSError``, ``offset`` where it happened."""

    def __init__(self, error, offset):
        super(StreamWriteError, self).__init__(str(error))
        self.error = error
        self.offset = offset


class GzipVerifier(object):
    """Inflate a gzip stream chunk by chunk and throw the output away.

    Checks every member's CRC-32 and length (zlib does it with ``wbits=31``), accepts
    concatenated members (``pigz``, ``cat a.gz b.gz``) and trailing zero padding (as
    ``gzip -t`` does), and rejects anything else after the last member.
    """

    def __init__(self):
        self.position = 0  # compressed bytes seen
        self._d = zlib.decompressobj(31)
        self._between = False  # at the end of a member, waiting for the next one
        self._head = b''
        self._zeros = False
        self.members = 0
        self.output_size = 0

    def update(self, data):
        data = memoryview(data)
        while len(data):
            if self._zeros:
                if bytes(data).strip(b'\0'):
                    raise StreamCheckError('data after the end of the gzip stream at byte %d' % self.position)
                self.position += len(data)
                return
            if self._between:
                need = 2 - len(self._head)
                self._head += bytes(data[:need])
                consumed = min(need, len(data))
                if len(self._head) < 2:
                    self.position += consumed
                    return
                head, self._head = self._head, b''
                if head == GZIP_MAGIC:
                    self._between = False
                    self._d = zlib.decompressobj(31)
                    self._feed(head)
                    self.position += consumed
                    data = data[consumed:]
                    continue
                if head == b'\0\0':
                    self._zeros = True
                    self.position += consumed
                    data = data[consumed:]
                    continue
                raise StreamCheckError('data after the end of the gzip stream at byte %d' % (self.position + consumed - 2))
            rest = self._feed(data)
            self.position += len(data) - len(rest)
            data = rest

    def _feed(self, data):
        """Inflate ``data``; return what follows the end of the member (empty unless it ended)."""
        d = self._d
        try:
            # The output is only counted: each piece is freed before the next is made.
            self.output_size += len(d.decompress(data, _INFLATE_STEP))
            while d.unconsumed_tail:
                self.output_size += len(d.decompress(d.unconsumed_tail, _INFLATE_STEP))
        except zlib.error as exc:
            raise StreamCheckError('corrupt gzip stream near byte %d: %s' % (self.position, exc))
        if d.eof:
            self.members += 1
            self._between = True
            rest = d.unused_data
            return memoryview(rest)
        return memoryview(b'')

    def finish(self):
        if self.position == 0:
            raise StreamCheckError('empty file, not a gzip stream')
        if self._between and self._head:
            raise StreamCheckError('data after the end of the gzip stream at byte %d' % (self.position - len(self._head)))
        if not self._between and not self._zeros:
            raise StreamCheckError('truncated gzip stream: the data ends at byte %d before the end of the compressed stream' % self.position)


class _Worker(object):
    """A thread that applies ``work(buf, n, offset)`` to queued buffers, then calls ``done(buf)``."""

    def __init__(self, name, work, done):
        self.work = work
        self.done = done
        self.error = None
        self.queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, name=name)
        self.thread.daemon = True
        self.thread.start()

    def _run(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            buf, n, offset = item
            if self.error is None:
                try:
                    self.work(buf, n, offset)
                except Exception as exc:  # pylint: disable=broad-except
                    self.error = exc
            self.done(buf)

    def stop(self):
        self.queue.put(None)
        self.thread.join()


class StreamPipeline(object):
    """Write buffers to ``fd`` from ``offset`` on, and hash/check them, in two worker threads.

    ``acquire()`` a buffer, fill it, ``submit(buf, n)``; ``check_only(buf, n)`` for bytes already
    on disk (a resumed prefix); ``restart()`` to begin again at byte 0; ``finish()`` returns the
    digests. An error in a worker (:class:`StreamWriteError`, :class:`StreamCheckError`) is raised
    by the next ``acquire``/``submit``/``finish``. Always ``close()``.
    """

    def __init__(self, fd, offset=0, algorithms=('sha256',), gzip=False, buffers=8, buffer_size=1 << 20,
                 threaded=True, direct=True, writeback_step=64 << 20):
        if buffer_size % ALIGN:
            raise ValueError('buffer_size must be a multiple of %d' % ALIGN)
        self.fd = fd
        self.algorithms = tuple(algorithms)
        self.gzip = gzip
        self.threaded = threaded
        self.writeback_step = writeback_step
        # anonymous mmaps are page-aligned, as O_DIRECT wants
        self._free = queue.Queue()
        for _dummy in range(buffers if threaded else 1):
            self._free.put(mmap.mmap(-1, buffer_size))
        self._refs = {}
        self._lock = threading.Lock()
        self.direct = False
        self._want_direct = bool(direct and O_DIRECT)
        self._workers = []
        self._start(offset)
        if self._want_direct and offset % ALIGN == 0:
            self._set_direct(True)

    # -- set-up ---------------------------------------------------------------------------------

    def _start(self, offset):
        self.offset = offset  # where the next submitted buffer is written
        self.size = 0  # bytes seen by the checks
        self.hashers = [hashlib.new(name) for name in self.algorithms]
        self.verifier = GzipVerifier() if self.gzip else None
        self.written_back = offset
        if self.threaded:
            self._writer = _Worker('sql_dump_fetch-write', self._write, self._done)
            self._checker = _Worker('sql_dump_fetch-check', self._check, self._done)
            self._workers = [self._writer, self._checker]

    def _set_direct(self, on):
        try:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, (flags | O_DIRECT) if on else (flags & ~O_DIRECT))
        except OSError:
            on = False  # the file system does not take O_DIRECT
        self.direct = on

    # -- work done in the threads ------------------------------------------------------------

    def _write(self, buf, n, offset):
        view = memoryview(buf)[:n]
        if self.direct and (n % ALIGN or offset % ALIGN):
            self._set_direct(False)
        done = 0
        try:
            while done < n:
                try:
                    done += os.pwrite(self.fd, view[done:], offset + done)
                except OSError as exc:
                    if self.direct and exc.errno == errno.EINVAL:
                        self._set_direct(False)  # refused after all: buffered from here on
                        continue
                    raise
        except OSError as exc:
            raise StreamWriteError(exc, offset + done)
        finally:
            view.release()
        end = offset + n
        if not self.direct and end - self.written_back >= self.writeback_step and hasattr(os, 'posix_fadvise'):
            # start writing this stretch out now, and let the kernel drop what was written out before
            os.posix_fadvise(self.fd, self.written_back, end - self.written_back, os.POSIX_FADV_DONTNEED)
            if self.written_back >= 2 * self.writeback_step:
                os.posix_fadvise(self.fd, 0, self.written_back - self.writeback_step, os.POSIX_FADV_DONTNEED)
            self.written_back = end

    def _check(self, buf, n, offset):  # pylint: disable=unused-argument
        view = memoryview(buf)[:n]
        try:
            for hasher in self.hashers:
                hasher.update(view)
            if self.verifier is not None:
                self.verifier.update(view)
        finally:
            view.release()

    def _done(self, buf):
        with self._lock:
            self._refs[id(buf)] -= 1
            last = not self._refs[id(buf)]
        if last:
            self._free.put(buf)

    def _raise(self):
        for worker in self._workers:
            if worker.error is not None:
                raise worker.error

    # -- the main thread ---------------------------------------------------------------------

    def acquire(self):
        self._raise()
        return self._free.get()

    def release(self, buf):
        """Give back a buffer that was acquired but not submitted."""
        self._free.put(buf)

    def submit(self, buf, n):
        """Write and check ``buf[:n]``."""
        self._dispatch(buf, n, write=True)

    def check_only(self, buf, n):
        """Check ``buf[:n]``, bytes that are already in the file (a resumed prefix)."""
        self._dispatch(buf, n, write=False)

    def _dispatch(self, buf, n, write):
        offset = self.offset
        self.size += n
        if write:
            self.offset += n
        if self.threaded:
            with self._lock:
                self._refs[id(buf)] = 2 if write else 1
            if write:
                self._writer.queue.put((buf, n, offset))
            self._checker.queue.put((buf, n, offset))
            self._raise()
            return
        self._refs[id(buf)] = 1
        try:
            if write:
                self._write(buf, n, offset)
            self._check(buf, n, offset)
        finally:
            self._done(buf)

    def _stop(self):
        for worker in self._workers:
            worker.stop()

    def restart(self):
        """Forget everything: empty the file and begin again at byte 0."""
        self._stop()
        os.ftruncate(self.fd, 0)
        self._start(0)
        if self._want_direct and not self.direct:
            self._set_direct(True)

    def finish(self):
        """Wait for the workers; raise their error; return ``{algorithm: hexdigest}``."""
        self._stop()
        self._raise()
        if self.verifier is not None:
            self.verifier.finish()
        return dict((name, hasher.hexdigest()) for name, hasher in zip(self.algorithms, self.hashers))

    def close(self):
        """Stop the workers (idempotent); the buffers are freed with the object."""
        for worker in self._workers:
            if worker.thread.is_alive():
                worker.stop()
