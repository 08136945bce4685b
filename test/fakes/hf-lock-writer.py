#!/usr/bin/env python3
"""A writer of one blob of the Hugging Face cache that follows huggingface_hub's protocol exactly
(file_download.py `_hf_hub_download_to_cache_dir` and `_download_to_tmp_and_move`, utils/_fixes.py
`WeakFileLock` over filelock's UnixFileLock), with the standard library only, for tests where
huggingface_hub itself is not installed:

- the lock is `fcntl.flock(fd, LOCK_EX | LOCK_NB)` on `{cache}/.locks/models--{org}--{name}/{etag}.lock`,
  opened O_RDWR | O_CREAT | O_TRUNC, polled every 50 ms, released by LOCK_UN and never deleted;
- a snapshot link already there: done; a blob already there: link it under the lock, done;
- under the lock: a blob there now is trusted (huggingface_hub returns at once); else the partial,
  `blobs/{etag}.incomplete` (0.36 and 1.x, resumed from its size with a Range request) or
  `blobs/{etag}.{8 hex}.incomplete` (`--partial unique`, the later process-unique name, deleted on
  failure), is appended to, checked for its size, renamed into `blobs/{etag}` and linked.

It writes at most `--rate` bytes per second, so another writer can be started while it writes, and
prints one JSON line per step (with the time) on stdout, for the test to check the order of events.
"""
import argparse
import fcntl
import json
import os
import secrets
import sys
import time
import urllib.request


def say(event, **fields):
    print(json.dumps({'event': event, 't': time.time(), **fields}), flush=True)


def repo_folder_name(repo_id):
    return 'models--' + '--'.join(repo_id.split('/'))


def acquire(lock_path):
    """filelock.UnixFileLock.acquire with WeakFileLock's endless wait."""
    waited = False
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o664)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd, waited
        except OSError:
            os.close(fd)
        if not waited:
            say('waiting')
            waited = True
        time.sleep(0.05)


def release(fd):
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def create_symlink(blob_path, pointer_path):
    os.makedirs(os.path.dirname(pointer_path), exist_ok=True)
    target = os.path.relpath(blob_path, os.path.dirname(pointer_path))
    try:
        os.symlink(target, pointer_path)
    except FileExistsError:
        pass


def http_get(url, f, resume_size, expected_size, rate):
    headers = {'Range': f'bytes={resume_size}-'} if resume_size > 0 else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
        if resume_size > 0 and response.status != 206:
            raise RuntimeError(f'asked for a range, got {response.status}')
        started = time.time()
        written = 0
        while True:
            chunk = response.read(64 * 1024)
            if not chunk:
                break
            f.write(chunk)
            written += len(chunk)
            if rate > 0:
                ahead = written / rate - (time.time() - started)
                if ahead > 0:
                    time.sleep(ahead)
    f.flush()
    size = f.tell()
    if size != expected_size:
        # huggingface_hub's "Consistency check failed".
        raise RuntimeError(f'Consistency check failed: file should be of size {expected_size} but has size {size}')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--cache', required=True)
    parser.add_argument('--repo', required=True)
    parser.add_argument('--commit', required=True)
    parser.add_argument('--filename', required=True)
    parser.add_argument('--etag', required=True)
    parser.add_argument('--size', type=int, required=True)
    parser.add_argument('--url', required=True)
    parser.add_argument('--rate', type=int, default=0, help='bytes per second; 0: as fast as it comes')
    parser.add_argument('--partial', choices=['shared', 'unique'], default='shared')
    args = parser.parse_args()

    storage = os.path.join(args.cache, repo_folder_name(args.repo))
    blob_path = os.path.join(storage, 'blobs', args.etag)
    pointer_path = os.path.join(storage, 'snapshots', args.commit, *args.filename.split('/'))
    lock_path = os.path.join(args.cache, '.locks', repo_folder_name(args.repo), f'{args.etag}.lock')
    os.makedirs(os.path.dirname(blob_path), exist_ok=True)
    os.makedirs(os.path.dirname(pointer_path), exist_ok=True)
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)

    if os.path.exists(pointer_path):
        say('done', how='pointer-existed')
        return
    if os.path.exists(blob_path):
        fd, _ = acquire(lock_path)
        try:
            create_symlink(blob_path, pointer_path)
        finally:
            release(fd)
        say('done', how='blob-existed-before-lock')
        return

    fd, waited = acquire(lock_path)
    say('locked', waited=waited)
    try:
        if os.path.exists(blob_path):
            create_symlink(blob_path, pointer_path)
            say('done', how='blob-existed')
            return
        suffix = '.incomplete' if args.partial == 'shared' else f'.{secrets.token_hex(4)}.incomplete'
        incomplete_path = blob_path + suffix
        try:
            with open(incomplete_path, 'ab') as f:
                resume_size = f.tell()
                say('writing', partial=os.path.basename(incomplete_path), resume_size=resume_size)
                http_get(args.url, f, resume_size, args.size, args.rate)
        except BaseException:
            if args.partial == 'unique':
                os.unlink(incomplete_path)
            raise
        os.replace(incomplete_path, blob_path)
        create_symlink(blob_path, pointer_path)
        say('done', how='downloaded', partial=os.path.basename(incomplete_path), bytes=args.size - resume_size)
    finally:
        release(fd)


if __name__ == '__main__':
    try:
        main()
    except Exception as err:  # the test reads the failure from stdout and the exit code
        say('failed', error=f'{type(err).__name__}: {err}')
        sys.exit(1)
