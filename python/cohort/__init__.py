"""cohort: the worker side of cohort's protocol (docs/protocol.md) for a
user's own training script, in pure Python on Debian's python3-numpy and
python3-msgpack.

The loop a script adds:

    import cohort
    cohort.init()
    while cohort.running():
        task = cohort.receive()      # None once the job has no more
        if task is None:
            break
        params = train(task.params)  # name -> numpy array
        cohort.send(params, num_examples=n, metrics={"loss": loss})

task.kind is "fit" or "evaluate"; task.params maps each tensor name to a
read-only numpy view of the global model (no copy). A fit sends the new
weights (every tensor of the model, by name, any order); an evaluation
sends no params, only metrics ("loss", "accuracy") and num_examples. An
exception in the script between receive and send fails that task with the
exception's message (the traceback goes to the worker's log).

Both transports are supported: shared memory (transport.mode=shm, the
global model mapped from the task's memfd, the update written into its
own) and the stream (the global model and the update as chunk frames).
"""

import mmap
import os
import socket
import struct
import sys
import traceback

import msgpack
import numpy as np

PROTO = 2
FRAME_MAX = 64 << 20

# F_GET_SEALS and the seal bits (linux/fcntl.h): what a worker checks
# before it maps anything.
F_GET_SEALS = 1034
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_FUTURE_WRITE = 0x0010

_DTYPES = {
    "F32": np.float32, "F64": np.float64, "F16": np.float16,
    "BF16": None, "I64": np.int64, "I32": np.int32, "I16": np.int16,
    "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


class ProtocolError(Exception):
    """The orchestrator sent something this client cannot take."""


class Task:
    """One task: kind ("fit" or "evaluate"), task_id, round, client_id,
    config (dict, docs/protocol.md "Task config") and params (tensor name
    -> read-only numpy array over the global model)."""

    def __init__(self, msg, params, manifest):
        self.task_id = msg["task_id"]
        self.kind = msg["kind"]
        self.round = msg["round"]
        self.client_id = msg["client_id"]
        self.config = msg.get("config", {})
        self.params = params
        self.manifest = manifest
        self.update_fd = msg.get("update_fd")

    def partition(self):
        """This client's (train, holdout) sample indices into the job's
        dataset, as cohort's prepare step split it (config["partition"],
        data/partition.bin; docs/data.md): uint32 numpy arrays, so a
        script trains on exactly the built-in worker's share."""
        return read_partition(self.config["partition"], self.client_id)

    def samples(self, split=None):
        """The examples of split ("train" or "holdout": this client's
        slice; "test": the whole test set; default config["split"]) as
        (images, labels): float32 N x C x H x W normalised as the built-in
        worker normalises them, and int64 labels."""
        split = split or self.config["split"]
        if split == "test":
            ds = read_dataset(self.config["test_data"])
            idx = np.arange(ds.count)
        elif split in ("train", "holdout"):
            ds = read_dataset(self.config["train_data"])
            train, holdout = self.partition()
            idx = train if split == "train" else holdout
        else:
            raise ValueError("split %r: expected train, holdout or test"
                             % split)
        return ds.images(idx), ds.labels[idx].astype(np.int64)


class _Conn:
    """A connection to the orchestrator's socket: frames (a 4-byte
    big-endian length, then one msgpack map) and the descriptors that come
    with a frame's first byte (kept in fds)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.environ["COHORT_SOCKET"])
        self.fds = []

    def _send(self, msg):
        body = msgpack.packb(msg, use_bin_type=True)
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def _read_exact(self, n, first=False):
        out = bytearray()
        while len(out) < n:
            if first and not out:
                # The first byte of a frame carries its descriptors.
                data, fds, _, _ = socket.recv_fds(self.sock, 1, 8)
                self.fds.extend(fds)
            else:
                data = self.sock.recv(n - len(out))
            if not data:
                return None
            out += data
        return bytes(out)

    def _recv(self):
        head = self._read_exact(4, first=True)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        if n == 0 or n > FRAME_MAX:
            raise ProtocolError("frame of %d bytes" % n)
        body = self._read_exact(n)
        if body is None:
            raise ProtocolError("the socket ended inside a frame")
        return msgpack.unpackb(body, raw=False)


class _Client(_Conn):
    def __init__(self):
        env = os.environ
        missing = [k for k in ("COHORT_SOCKET", "COHORT_TOKEN",
                               "COHORT_CLIENT_ID") if k not in env]
        if missing:
            raise RuntimeError(
                "cohort.init(): %s not set: this script runs as a cohort "
                "worker (worker.command), started by cohort-orchestrator"
                % ", ".join(missing))
        _Conn.__init__(self)
        self.client_id = int(env["COHORT_CLIENT_ID"])
        self.tasks_left = int(env.get("COHORT_TASKS", "1"))
        self.done = False
        self.task = None  # the task being served
        self.global_map = None
        self.streamed = False
        self._send({"type": "hello", "proto": PROTO,
                    "token": env["COHORT_TOKEN"],
                    "client_id": self.client_id, "pid": os.getpid(),
                    "device": env.get("COHORT_DEVICE", "cpu")})

    def _close_task(self):
        if self.global_map is not None:
            try:
                self.global_map.close()
            except BufferError:
                # Arrays of the script still view it: the mapping goes
                # with the last of them (it is read-only; nothing of the
                # update is ever mapped).
                pass
            self.global_map = None
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.task = None

    def _fd(self, index, what):
        if index is None or index >= len(self.fds):
            raise ProtocolError("its frame carried no descriptor %s for %s"
                                % (index, what))
        return self.fds[index]

    def _check_seals(self, fd, want, size, what):
        import fcntl
        seals = fcntl.fcntl(fd, F_GET_SEALS)
        if seals & want != want:
            raise ProtocolError("%s is not sealed as expected (seals %#x)"
                                % (what, seals))
        if os.fstat(fd).st_size < size:
            raise ProtocolError("%s is smaller than the model" % what)

    def receive(self):
        if self.task is not None:
            self.fail("protocol", "task %d: cohort.receive() was called "
                      "again before cohort.send() reported it"
                      % self.task.task_id)
        while True:
            self._close_task()
            if self.done or self.tasks_left <= 0:
                return None
            msg = self._recv()
            if msg is None:
                self.done = True
                return None
            if msg.get("type") != "task":
                continue
            if msg["kind"] == "shutdown":
                self.done = True
                return None
            try:
                self.task = self._take_task(msg)
            except ProtocolError as e:
                # The task fails with the reason, not only this process.
                self._close_task()
                self._send({"type": "error", "task_id": msg["task_id"],
                            "code": "protocol",
                            "message": "task %d: %s" % (msg["task_id"], e)})
                raise
            return self.task

    def _take_task(self, msg):
        """The Task of a task frame, its global model mapped or received."""
        if msg["kind"] == "init":
            # No global model yet: the script's own is asked for.
            self.streamed = False
            return Task(msg, {}, [])
        p = msg["params"]
        self.streamed = "stream" in p
        if self.streamed:
            size = p["stream"]
            buf = self._receive_chunks(msg["task_id"], size)
        else:
            size = p["size"]
            gfd = self._fd(p["fd"], "the global model")
            self._check_seals(gfd, F_SEAL_SHRINK | F_SEAL_GROW |
                              F_SEAL_FUTURE_WRITE, size,
                              "the global model")
            self.global_map = mmap.mmap(gfd, size, mmap.MAP_SHARED,
                                        mmap.PROT_READ)
            buf = memoryview(self.global_map)
        self.global_size = size
        params = {}
        for t in p["manifest"]:
            dt = _DTYPES.get(t["dtype"])
            if dt is None:
                raise ProtocolError("tensor %s: dtype %s is not "
                                    "supported" % (t["name"],
                                                   t["dtype"]))
            a = np.frombuffer(buf, dtype=dt,
                              count=t["nbytes"] // np.dtype(dt).itemsize,
                              offset=t["offset"]).reshape(t["shape"])
            a.flags.writeable = False
            params[t["name"]] = a
        return Task(msg, params, p["manifest"])

    def _receive_chunks(self, task_id, size):
        """The streamed global model: chunk frames of task_id, in order,
        no gap or overlap, size bytes in all (docs/protocol.md)."""
        buf = bytearray(size)
        have = 0
        while have < size:
            m = self._recv()
            if m is None:
                raise ProtocolError("the socket ended after %d of %d bytes "
                                    "of the global model" % (have, size))
            if m.get("type") != "chunk" or m["task_id"] != task_id or \
                    m["offset"] != have or \
                    have + len(m["data"]) > size:
                raise ProtocolError("expected the chunk at %d of the global "
                                    "model" % have)
            buf[have:have + len(m["data"])] = m["data"]
            have += len(m["data"])
        return memoryview(buf)

    def send(self, params, num_examples, metrics):
        t = self.task
        if t is None:
            raise RuntimeError("cohort.send() without a task "
                               "(call cohort.receive() first)")
        result = {"type": "result", "task_id": t.task_id,
                  "num_examples": int(num_examples),
                  "metrics": {k: float(v) for k, v in metrics.items()}}
        if t.kind == "init":
            self._send_init(t, params, result)
            return
        if t.kind == "fit":
            if params is None:
                raise ValueError("a fit task sends its new params")
            size = self.global_size
            if not self.streamed:
                ufd = self._fd(t.update_fd, "the update")
                self._check_seals(ufd, F_SEAL_SHRINK | F_SEAL_GROW, size,
                                  "the update")
            region = bytearray(size)
            names = {m["name"] for m in t.manifest}
            extra = sorted(set(params) - names)
            if extra:
                raise ValueError("params: %s is not a tensor of the model"
                                 % extra[0])
            for m in t.manifest:
                if m["name"] not in params:
                    raise ValueError("params: tensor %s is missing"
                                     % m["name"])
                a = np.ascontiguousarray(params[m["name"]],
                                         dtype=_DTYPES[m["dtype"]])
                if list(a.shape) != list(m["shape"]):
                    raise ValueError("params: tensor %s has shape %s, the "
                                     "model's is %s" % (m["name"],
                                                        list(a.shape),
                                                        list(m["shape"])))
                if a.dtype.kind == "f" and not np.isfinite(a).all():
                    raise ValueError("params: tensor %s is not finite"
                                     % m["name"])
                region[m["offset"]:m["offset"] + m["nbytes"]] = a.tobytes()
            if self.streamed:
                result["params"] = {"manifest": t.manifest, "stream": size}
            else:
                # pwrite, no mapping: nothing of the update stays
                # writable when the result goes.
                os.pwrite(ufd, region, 0)
                result["params"] = {"manifest": t.manifest, "fd": 1,
                                    "size": size}
        streamed = self.streamed and t.kind == "fit"
        chunk = int(t.config.get("chunk_bytes", 4 << 20))
        self._report(t, result, region if streamed else None, chunk)

    def _report(self, t, result, stream, chunk):
        """Send the result of task t, then the bytes of stream (if any) as
        chunk frames of chunk bytes; the task is done."""
        self._close_task()
        self._send(result)
        if stream is not None:
            view = memoryview(stream)
            for at in range(0, len(stream), chunk):
                self._send({"type": "chunk", "task_id": t.task_id,
                            "offset": at,
                            "data": bytes(view[at:at + chunk])})
        self.tasks_left -= 1

    def _send_init(self, t, params, result):
        """The script's initial model for an init task: every tensor it
        names, in its order, 64-byte aligned; inline in the result frame,
        or as chunk frames when it would not fit in one."""
        if not params:
            raise ValueError("an init task sends the model's tensors "
                             "(name -> array), and got none")
        manifest, blobs, at = [], [], 0
        for name, a in params.items():
            a = np.ascontiguousarray(a)
            if a.dtype not in _NAMES:
                raise ValueError("params: tensor %s has dtype %s"
                                 % (name, a.dtype))
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ValueError("params: tensor %s is not finite" % name)
            at = (at + 63) & ~63
            manifest.append({"name": name, "dtype": _NAMES[a.dtype],
                             "shape": list(a.shape), "offset": at,
                             "nbytes": a.nbytes})
            blobs.append((at, a))
            at += a.nbytes
        region = bytearray((at + 63) & ~63)
        for off, a in blobs:
            region[off:off + a.nbytes] = a.tobytes()
        chunk = int(t.config.get("chunk_bytes", 4 << 20))
        inline = len(region) <= min(chunk, 32 << 20)
        result["params"] = {"manifest": manifest}
        if inline:
            result["params"]["inline"] = bytes(region)
        else:
            result["params"]["stream"] = len(region)
        self._report(t, result, None if inline else region, chunk)

    def fail(self, code, message):
        t = self.task
        task_id = t.task_id if t is not None else 0
        self._close_task()
        self._send({"type": "error", "task_id": task_id, "code": code,
                    "message": message})
        self.tasks_left -= 1

    def log(self, values, step):
        if self.task is None:
            return
        self._send({"type": "metrics", "task_id": self.task.task_id,
                    "step": int(step),
                    "values": {k: float(v) for k, v in values.items()}})


class Dataset:
    """A dataset cache file of cohort's (docs/data.md "The raw cache"),
    mapped read-only: pixels (uint8 count x C x H x W), labels (uint8),
    classes, and per-channel mean and std of pixel / 255."""

    def __init__(self, path):
        with open(path, "rb") as f:
            head = f.read(80)
        if len(head) < 80 or head[:8] != b"COHDSET\0":
            raise ValueError("%s: not a cohort dataset cache" % path)
        version, count, c, h, w, classes = struct.unpack("=6I", head[8:32])
        if version != 1:
            raise ValueError("%s: dataset cache version %d, this package "
                             "reads 1" % (path, version))
        stats = struct.unpack("=6f", head[32:56])
        pix_at, lab_at, total = struct.unpack("=3Q", head[56:80])
        if os.path.getsize(path) != total:
            raise ValueError("%s: %d bytes, its header says %d"
                             % (path, os.path.getsize(path), total))
        self.count, self.classes = count, classes
        self.shape = (c, h, w)
        self.mean = np.array(stats[:c], dtype=np.float32)
        self.std = np.array(stats[3:3 + c], dtype=np.float32)
        self.pixels = np.memmap(path, dtype=np.uint8, mode="r",
                                offset=pix_at, shape=(count, c, h, w))
        self.labels = np.memmap(path, dtype=np.uint8, mode="r",
                                offset=lab_at, shape=(count,))

    def images(self, idx):
        """Samples idx as float32, ((pixel / 255) - mean) / std."""
        x = self.pixels[idx].astype(np.float32) / 255.0
        x -= self.mean[None, :, None, None]
        x /= self.std[None, :, None, None]
        return x


_datasets = {}


def read_dataset(path):
    """The Dataset of a cache file (opened once per process)."""
    if path not in _datasets:
        _datasets[path] = Dataset(path)
    return _datasets[path]


def read_partition(path, client):
    """Client client's (train, holdout) indices of a cohort partition file:
    a 32-byte header (magic "COHPART" and a NUL, version 1, clients, total,
    dataset_count), offsets[clients + 1] and train_end[clients] (uint64),
    then the indices (uint32), native byte order."""
    with open(path, "rb") as f:
        head = f.read(32)
        if len(head) < 32 or head[:8] != b"COHPART\0":
            raise ValueError("%s: not a cohort partition file" % path)
        version, clients, total, _ = struct.unpack("=IIQI", head[8:28])
        if version != 1:
            raise ValueError("%s: partition version %d, this package reads "
                             "1" % (path, version))
        if not 0 <= client < clients:
            raise ValueError("%s: client %d of %d" % (path, client, clients))
        offsets = np.fromfile(f, dtype=np.uint64, count=clients + 1)
        train_end = np.fromfile(f, dtype=np.uint64, count=clients)
        base = f.tell()
    lo, mid, hi = int(offsets[client]), int(train_end[client]), \
        int(offsets[client + 1])
    idx = np.memmap(path, dtype=np.uint32, mode="r", offset=base,
                    shape=(int(total),))
    return np.array(idx[lo:mid]), np.array(idx[mid:hi])


_NAMES = {np.dtype(v): k for k, v in _DTYPES.items() if v is not None}


def save_safetensors(path, params):
    """Write params (name -> numpy array, in that order) as a safetensors
    file: an 8-byte little-endian header length, the JSON header, the
    tensors' bytes packed, little-endian. For model.init (a custom model's
    tensors and initial values)."""
    import json
    head, blobs, at = {}, [], 0
    for name, a in params.items():
        a = np.ascontiguousarray(a)
        if a.dtype not in _NAMES:
            raise ValueError("%s: dtype %s has no safetensors name here"
                             % (name, a.dtype))
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        head[name] = {"dtype": _NAMES[a.dtype], "shape": list(a.shape),
                      "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(head, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


_client = None
_forked = False  # this process is a fork server's child


def _end_child(status):
    """A fork server's child ends here once its tasks are done: stdout and
    stderr flushed, then os._exit, as multiprocessing's forked children
    do. The interpreter's normal teardown would walk (and copy, page by
    page, from the server) every object torch made: about 0.25 s a task
    on this machine, more than the task itself for small models."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def _excepthook(kind, value, tb):
    """An exception the script does not catch fails the task in hand with
    its message; the traceback goes to stderr (the worker's log)."""
    traceback.print_exception(kind, value, tb)
    if _client is not None and _client.task is not None:
        try:
            _client.fail("exception", "%s: %s" % (kind.__name__, value))
        except OSError:
            pass
    if _forked:
        _end_child(1)
    sys.exit(1)


def _keep_private():
    """Not dumpable (PR_SET_DUMPABLE 0), as cohort's own processes: another
    process of the same uid (another client's worker) cannot ptrace this
    one or open its /proc/PID/fd and mem. COHORT_DUMPABLE=1 keeps it
    dumpable, for debuggers."""
    if os.environ.get("COHORT_DUMPABLE") == "1":
        return
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_DUMPABLE = 4
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _cuda_initialised():
    """Whether this process has started CUDA already (torch, if loaded)."""
    torch = sys.modules.get("torch")
    try:
        return torch is not None and torch.cuda.is_initialized()
    except AttributeError:
        return False


def _die_with_parent():
    """SIGKILL when the parent dies (the orchestrator, or the fork server
    for its children), as cohort's own workers do."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        parent = os.getppid()
        libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
    except (OSError, AttributeError):
        pass


class _ForkServer(_Conn):
    """Launch mode fork-server (docs/protocol.md "Fork server"): the
    script, its imports done, forks a child per fork frame; each child
    returns from serve() and runs as an ordinary one-task worker. The
    server never trains: it reaps its children and reports them."""

    def __init__(self):
        env = os.environ
        _Conn.__init__(self)
        if _cuda_initialised():
            self._send({
                "type": "error", "task_id": 0, "code": "cuda-before-fork",
                "message": "CUDA was initialised before cohort.init() "
                "(the fork point of launcher.mode fork-server): a forked "
                "child cannot use it. Move what touches the GPU (.cuda(), "
                ".to('cuda'), torch.cuda calls) after cohort.init(), or "
                "use launcher.mode spawn"})
            os._exit(1)
        self._send({"type": "hello", "proto": PROTO,
                         "token": env["COHORT_TOKEN"], "client_id": -1,
                         "pid": os.getpid(), "device": "cpu",
                         "role": "fork-server"})

    @staticmethod
    def _collapse_anon_memory():
        """Back the server's anonymous memory (the heap torch's import
        filled) with huge pages where the kernel can (MADV_COLLAPSE, Linux
        6.1 and later; refused quietly elsewhere): each fork then copies a
        few page-table entries per 2 MiB instead of 512, and each child's
        exit frees as few. About 5 ms less per task with torch loaded."""
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                     ctypes.c_int]
            MADV_COLLAPSE, huge = 25, 1 << 21
            with open("/proc/self/maps") as f:
                maps = f.read().splitlines()
            for line in maps:
                p = line.split()
                if not p[1].startswith("rw") or \
                        (len(p) > 5 and p[5] != "[heap]"):
                    continue
                lo, hi = (int(x, 16) for x in p[0].split("-"))
                lo = (lo + huge - 1) & ~(huge - 1)
                hi &= ~(huge - 1)
                if hi > lo:
                    libc.madvise(lo, hi - lo, MADV_COLLAPSE)
        except (OSError, AttributeError, ValueError):
            pass

    def serve(self):
        import gc
        import select
        import signal
        rfd, wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wfd)
        signal.signal(signal.SIGCHLD, lambda signo, frame: None)
        # Objects made so far are never collected in a child: their pages
        # stay shared instead of being copied when the collector marks
        # them.
        gc.freeze()
        self._collapse_anon_memory()
        while True:
            try:
                ready, _, _ = select.select([self.sock, rfd], [], [])
            except InterruptedError:
                continue
            if rfd in ready:
                try:
                    os.read(rfd, 512)
                except BlockingIOError:
                    pass
                self._reap()
            if self.sock not in ready:
                continue
            self.fds = []
            msg = self._recv()
            if msg is None:
                os._exit(0)  # the job is over
            if msg.get("type") != "fork" or len(self.fds) != 1:
                raise ProtocolError("expected a fork frame with its log")
            logfd = self.fds[0]
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.close(rfd)
                os.close(wfd)
                self.sock.close()
                os.dup2(logfd, 1)
                os.dup2(logfd, 2)
                os.close(logfd)
                os.setpgid(0, 0)
                for k, v in msg["env"].items():
                    os.environ[k] = v
                del os.environ["COHORT_FORK_SERVER"]
                gc.unfreeze()
                return
            os.close(logfd)
            self._send({"type": "forked", "fork_id": msg["fork_id"],
                             "pid": pid})

    def _reap(self):
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG |
                                 os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            try:
                os.killpg(info.si_pid, 9)
            except OSError:
                pass
            _, status = os.waitpid(info.si_pid, 0)
            self._send({"type": "exited", "pid": info.si_pid,
                             "status": status})


def init():
    """Connect to the orchestrator and say hello (once per process). In
    launch mode fork-server this is the fork point: the process that
    called it serves forks and never returns; each child returns from it
    as a worker for one task."""
    global _client, _forked
    if _client is None:
        _keep_private()
        _die_with_parent()
        if os.environ.get("COHORT_FORK_SERVER") == "1":
            _ForkServer().serve()
            _die_with_parent()
            _forked = True
        _client = _Client()
        sys.excepthook = _excepthook


def running():
    """True while the job may send this worker another task. A fork
    server's child (launcher.mode fork-server) exits here instead of
    returning False: code after the loop runs in spawn mode only."""
    more = _client is not None and not _client.done and \
        _client.tasks_left > 0
    if not more and _forked:
        _end_child(0)
    return more


def receive():
    """The next task, or None when there is none (the loop ends; a fork
    server's child exits instead, as in running())."""
    task = _client.receive()
    if task is None and _forked:
        _end_child(0)
    return task


def send(params=None, num_examples=0, metrics=None):
    """Report the task in hand: a fit's new params (name -> array, every
    tensor of the model), the examples it used and its metrics."""
    _client.send(params, num_examples, metrics or {})


def log(key, value, step):
    """A progress metric of the task in hand (metrics.jsonl's step_KEY)."""
    _client.log({key: value}, step)
