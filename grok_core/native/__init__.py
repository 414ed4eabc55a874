"""Compiled CPU kernels for the engine's per-example passes, where eager PyTorch spends much of
a step on many small kernels: the transformer's gathers, two-way softmax, ReLU and scatters; the
MLP's gathers, ReLU and scatters; both models' cross-entropy; and both models' whole passes.

``kernels.c`` is plain C, built on first use with the system C compiler (``$CC``, else ``cc``)
into a cache folder (``$GROK_NATIVE_CACHE``, else ``~/.cache/grokking-tickets/native``; where
that is not writable, the temp folder), one file per source, flags and CPU, written atomically
so that Ray workers starting together share it. It is compiled without floating-point
contraction or reassociation and brings its own exponential, so its numbers are the same on
every CPU and C library.

- The MLP's gathers, ReLU and scatters do PyTorch's arithmetic in PyTorch's order: the same
  bits either way.
- The cross-entropy (``cross_entropy_rows``, both models') and the transformer's passes are
  their own definitions (the same maths, rounded differently, like another CPU), so a model's
  numbers depend on which path trained it (transformer engine 3 and mlp engine 2 in
  ``grok_core.config.experiment.MODEL_ENGINE_VERSIONS``).

Whole passes (``mlp_loss_and_grads``, ``transformer_loss_and_grads``) run a model's forward,
loss and backward in one call, their matrix products by the ``sgemm_`` that PyTorch's CPU
matmul calls (MKL's, found in ``libtorch_cpu``) with the arguments it passes, on one thread:
torch.bmm's bits on one thread (and in a batch on any number), checked when the library loads
(``blas_available()``), without some thirty calls from Python. So their numbers do not depend
on the thread count.

A training run binds its model's whole pass once (``MLPPass``, ``TransformerPass``: pointers
taken, outputs and scratch made when the run starts), so that a step is one call; passes made
for one call (the evaluation) share their thread's scratch.

Where no compiler works, or with ``GROK_NATIVE=0``, ``available()`` is False (with a warning
where a build failed) and the models take their PyTorch path. Every function takes and returns
float32 CPU tensors; members are computed one after another, so a member's numbers do not
depend on the cohort around it.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Callable, Mapping, Optional

import torch

SOURCE = Path(__file__).with_name("kernels.c")
# -march=native: the library is built per CPU (its fingerprint is in the file name);
# -ffp-contract=off: no fused multiply-adds, so the vector width does not change a result
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")

_I64, _PTR, _F32 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_float
_SIGNATURES = {
    "token_rows_forward": [_I64] * 5 + [_PTR] * 6 + [_F32] + [_PTR] * 4,
    "token_rows_backward": [_I64] * 5 + [_PTR] * 6 + [_F32] + [_PTR] * 8,
    "cross_entropy_rows": [_I64] * 3 + [_PTR] * 2 + [_I64] + [_PTR] * 5,
    "pair_relu_forward": [_I64] * 4 + [_PTR] * 3,
    "pair_relu_backward": [_I64] * 4 + [_PTR] * 5,
    "set_blas": [_PTR, _PTR],
    "matmul": [_I64] * 3 + [_PTR, _I64, _I64, _PTR, _I64, _I64, _PTR],
    "mlp_loss_and_grads": [_I64] * 6 + [_PTR] * 6 + [_I64] * 2 + [_PTR] * 7,
    "transformer_loss_and_grads": ([_I64] * 6 + [_PTR] * 11 + [_F32] + [_PTR] * 2 + [_I64] * 2
                                   + [_PTR] * 11),
}


def cache_dir() -> Path:
    """Where built libraries are kept."""
    if os.environ.get("GROK_NATIVE_CACHE"):
        return Path(os.environ["GROK_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "grokking-tickets" / "native"


def _cpu_fingerprint() -> str:
    """The machine and its instruction-set flags (a -march=native build runs only there)."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line
                break
    except OSError:
        flags = platform.processor()
    return f"{platform.machine()} {flags}"


def _compiler() -> Optional[str]:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


def library_path(compiler: str) -> Path:
    """The cache file for this source, compiler, flags and CPU."""
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), compiler.encode(), " ".join(FLAGS).encode(),
                 _cpu_fingerprint().encode()):
        digest.update(part)
    return cache_dir() / f"kernels-{digest.hexdigest()[:16]}.so"


def _build(compiler: str, target: Path) -> None:
    """Compile ``kernels.c`` to ``target`` (written to a temporary name, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(handle)
    try:
        subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", temporary, "-lm"], check=True,
                       capture_output=True, timeout=120)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _built(compiler: str) -> Path:
    """The library for this source, compiler, flags and CPU, built if missing: in the cache
    folder, or where that is not writable, in this user's temp folder."""
    target = library_path(compiler)
    if not target.exists():
        try:
            _build(compiler, target)
        except OSError:
            user = getattr(os, "getuid", lambda: "user")()  # no getuid on Windows
            target = Path(tempfile.gettempdir()) / f"grokking-tickets-{user}" / target.name
            if not target.exists():
                _build(compiler, target)
    return target


@functools.lru_cache(maxsize=None)
def _library() -> Optional[ctypes.CDLL]:
    if os.environ.get("GROK_NATIVE", "1") == "0":
        return None
    compiler = _compiler()
    if compiler is None:
        warnings.warn("grok_core.native: no C compiler (set CC); the engine runs its slower "
                      "PyTorch path", RuntimeWarning, stacklevel=3)
        return None
    try:
        library = ctypes.CDLL(str(_built(compiler)))
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        warnings.warn(f"grok_core.native: building {SOURCE.name} failed ({error}; "
                      f"{detail.decode(errors='replace')[-300:]}); the engine runs its slower "
                      "PyTorch path", RuntimeWarning, stacklevel=3)
        return None
    for name, argtypes in _SIGNATURES.items():
        getattr(library, name).argtypes = argtypes
        getattr(library, name).restype = None
    library.mlp_scratch_floats.argtypes = [_I64] * 4
    library.mlp_scratch_floats.restype = _I64
    library.transformer_scratch_floats.argtypes = [_I64] * 5
    library.transformer_scratch_floats.restype = _I64
    library.products_by_blas = _connect_blas(library)
    return library


def _torch_blas() -> Optional[tuple[int, int]]:
    """The addresses of the sgemm_ that PyTorch's CPU matmul calls and of its BLAS's
    MKL_Set_Num_Threads_Local (MKL's, exported by libtorch_cpu), or None where PyTorch was
    built without MKL or does not export them."""
    if not torch.backends.mkl.is_available():
        return None
    try:
        torch_cpu = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        return tuple(ctypes.cast(getattr(torch_cpu, name), ctypes.c_void_p).value
                     for name in ("sgemm_", "MKL_Set_Num_Threads_Local"))
    except (OSError, AttributeError):
        return None


def _products_are_torchs(library: ctypes.CDLL) -> bool:
    """Whether the kernels' matrix products give torch.bmm's bits on one thread (as theirs
    run), each operand plain and transposed: the guard that the sgemm_ found is the one PyTorch
    calls, called as it does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _products_agree(library)
    finally:
        torch.set_num_threads(threads)


def _products_agree(library: ctypes.CDLL) -> bool:
    generator = torch.Generator().manual_seed(0)
    for a_transposed in (False, True):
        for b_transposed in (False, True):
            a = torch.randn(37, 29, generator=generator)
            b = torch.randn(41, 37, generator=generator)
            a, b = (a.t() if a_transposed else a.t().contiguous()), (
                b.t() if b_transposed else b.t().contiguous())  # [29, 37] and [37, 41]
            ours = torch.empty(29, 41)
            library.matmul(29, 41, 37, a.data_ptr(), int(a_transposed),
                           a.stride(1 if a_transposed else 0), b.data_ptr(), int(b_transposed),
                           b.stride(1 if b_transposed else 0), ours.data_ptr())
            if not torch.equal(ours, torch.bmm(a[None], b[None])[0]):
                return False
    return True


def _connect_blas(library: ctypes.CDLL) -> bool:
    """Hand the library PyTorch's BLAS; True if its products then give torch.bmm's bits."""
    blas = _torch_blas()
    if blas is None:
        return False
    library.set_blas(*blas)
    return _products_are_torchs(library)


def blas_available() -> bool:
    """True if the kernels run whole passes with their matrix products by PyTorch's own BLAS
    (found, and giving torch.bmm's bits); without it the models call torch.bmm between
    kernels."""
    library = _library()
    return library is not None and library.products_by_blas


def available() -> bool:
    """True if the kernels are built and loaded (and not switched off by ``GROK_NATIVE=0``)."""
    return _library() is not None


def usable(*tensors: torch.Tensor) -> bool:
    """True if the kernels can take these tensors: float32 on the CPU, not recording an autograd
    graph (the kernels have no backward of their own), kernels available."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 and not t.requires_grad
               for t in tensors) and available()


def bindable(*weights: torch.Tensor) -> bool:
    """True if a whole pass can be bound to these weights (``MLPPass``, ``TransformerPass``):
    the kernels take them, with PyTorch's BLAS, and they are contiguous (a copy would be
    bound, and never see their new values)."""
    return (usable(*weights) and blas_available()
            and all(t.is_contiguous() for t in weights))


def _ptr(tensor: Optional[torch.Tensor]) -> Optional[int]:
    return None if tensor is None else tensor.data_ptr()


def token_rows_forward(plus: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor,
                       s0: torch.Tensor, s1: torch.Tensor, b_in: Optional[torch.Tensor],
                       scale: float, hidden_width: int, pairs: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The transformer's rows for token pairs [N, 2]: w0 [K, N], ReLU [K, N, m], direct
    [K, N, C] (``grok_core.models.transformer._TokenTables`` says what the tables are)."""
    k_count, vocab, width = plus.shape
    n, m = pairs.shape[0], hidden_width
    first = torch.empty(k_count, n)
    hidden = torch.empty(k_count, n, m)
    direct = torch.empty(k_count, n, width - m)
    tables = [t.contiguous() for t in (plus, f0, f1, s0, s1)]
    bias = None if b_in is None else b_in.contiguous()
    pairs = pairs.contiguous()  # (a copy's pointer is valid while the name holds it)
    _library().token_rows_forward(k_count, n, vocab, m, width - m, *map(_ptr, tables),
                                  _ptr(bias), scale, _ptr(pairs), _ptr(first),
                                  _ptr(hidden), _ptr(direct))
    return first, hidden, direct


def token_rows_backward(f0: torch.Tensor, f1: torch.Tensor, first: torch.Tensor,
                        hidden: torch.Tensor, d_pre: torch.Tensor, d_logits: torch.Tensor,
                        scale: float, pairs: torch.Tensor, shared: bool,
                        with_bias: bool) -> dict[str, Optional[torch.Tensor]]:
    """Gradients of the transformer's tables given d loss / d ReLU [K, N, m] and d loss / d
    logits [K, N, C]: plus, f0, f1 ([K, V, W]; f1 is f0 when ``shared``), s0 [K, V, V],
    s1 [K, V] and b_in [K, m] (None without biases)."""
    k_count, vocab, width = f0.shape
    m = hidden.shape[-1]
    d_plus, d_f0 = torch.empty(k_count, vocab, width), torch.empty(k_count, vocab, width)
    d_f1 = d_f0 if shared else torch.empty(k_count, vocab, width)
    d_s0, d_s1 = torch.empty(k_count, vocab, vocab), torch.empty(k_count, vocab)
    d_b_in = torch.empty(k_count, m) if with_bias else None
    row = torch.empty(width)
    inputs = [t.contiguous() for t in (f0, f1, first, hidden, d_pre, d_logits)]
    pairs = pairs.contiguous()
    _library().token_rows_backward(k_count, pairs.shape[0], vocab, m, width - m,
                                   *map(_ptr, inputs), scale, _ptr(pairs),
                                   _ptr(d_plus), _ptr(d_f0), _ptr(d_f1), _ptr(d_s0),
                                   _ptr(d_s1), _ptr(d_b_in), _ptr(row))
    return {"plus": d_plus, "f0": d_f0, "f1": d_f1, "s0": d_s0, "s1": d_s1, "b_in": d_b_in}


def pair_relu_forward(table: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """ReLU(table[:, a] + table[:, b]) [K, N, h] for a token table [K, V, h] and token pairs
    (a, b) [N, 2]: bitwise what PyTorch's gathers, add and ReLU give (the MLP's hidden layer)."""
    k_count, vocab, width = table.shape
    hidden = torch.empty(k_count, pairs.shape[0], width)
    table, pairs = table.contiguous(), pairs.contiguous()
    _library().pair_relu_forward(k_count, pairs.shape[0], vocab, width, _ptr(table),
                                 _ptr(pairs), _ptr(hidden))
    return hidden


def pair_relu_backward(hidden: torch.Tensor, d_hidden: torch.Tensor, pairs: torch.Tensor,
                       vocab: int) -> torch.Tensor:
    """d table [K, V, h] given d loss / d ReLU [K, N, h]: the masked rows added to row a of
    each pair, then to row b, in example order (bitwise PyTorch's threshold_backward and two
    index_add_ calls)."""
    k_count, n, width = hidden.shape
    d_table = torch.empty(k_count, vocab, width)
    masked = torch.empty(n, width)
    hidden, d_hidden, pairs = hidden.contiguous(), d_hidden.contiguous(), pairs.contiguous()
    _library().pair_relu_backward(k_count, n, vocab, width, _ptr(hidden), _ptr(d_hidden),
                                  _ptr(pairs), _ptr(d_table), _ptr(masked))
    return d_table


def cross_entropy_rows(logits: torch.Tensor, labels: torch.Tensor, with_grads: bool,
                       with_loss: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Mean cross-entropy [K] (NaN without ``with_loss``: not computed) and accuracy [K] of
    logits [K, N, C] (the normaliser in float64, as
    ``grok_core.models.losses.transposed_cross_entropy`` with float64), and if asked
    d(sum of member losses) / d logits [K, N, C]."""
    k_count, n, classes = logits.shape
    logits, labels = logits.contiguous(), labels.contiguous()
    loss, accuracy = torch.empty(k_count), torch.empty(k_count)
    d_logits = torch.empty(k_count, n, classes) if with_grads else None
    exps = None if with_grads else torch.empty(n, classes)
    label_shift = torch.empty(n)
    _library().cross_entropy_rows(k_count, n, classes, _ptr(logits), _ptr(labels),
                                  int(with_loss), _ptr(loss), _ptr(accuracy), _ptr(d_logits),
                                  _ptr(exps), _ptr(label_shift))
    return loss, accuracy, d_logits


MLP_WEIGHTS = ("W_emb", "W_in", "W_out", "W_unemb")
TRANSFORMER_WEIGHTS = ("W_E", "W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_U")
TRANSFORMER_READS = ("W_E", "W_V", "W_O", "W_out", "W_U")  # the rest reach it in the tables
TRANSFORMER_TABLES = ("products", "token_maps", "f", "s0", "s1", "hidden_logits")


def mlp_loss_and_grads(weights: Mapping[str, torch.Tensor], pairs: torch.Tensor,
                       labels: torch.Tensor, with_grads: bool, with_loss: bool
                       ) -> tuple[torch.Tensor, torch.Tensor, Optional[dict[str, torch.Tensor]]]:
    """Eq. (1)'s MLP in one call (``grok_core.models.mlp.MLP.loss_and_grads``'s operations,
    the same bits; needs ``blas_available()``). ``weights``: the masked ``MLP_WEIGHTS``. Mean
    cross-entropy [K] (NaN without ``with_loss``), accuracy [K] and, if asked, the gradients
    of the summed member losses with respect to those weights."""
    # kept in names until the call returns: a contiguous copy must outlive its pointer
    inputs = {name: weights[name].contiguous() for name in MLP_WEIGHTS}
    return MLPPass(inputs, with_grads, scratch=_scratch_of_this_thread)(pairs, labels, with_loss)


class _BoundPass:
    """What both models' bound passes share: the weights they read, bound once (pointers taken,
    outputs made), the examples given to each call, and a scratch buffer made for the largest
    number of examples seen so far (by ``scratch``: new memory by default)."""

    def __init__(self, weights: Mapping[str, torch.Tensor], reads: tuple[str, ...],
                 with_grads: bool, grads_out: Optional[Mapping[str, torch.Tensor]],
                 scratch: Callable[[int], torch.Tensor]) -> None:
        self.weights = [weights[name] for name in reads]  # held: their pointers are bound
        if not all(t.is_contiguous() for t in self.weights):
            raise ValueError(f"{type(self).__name__} binds contiguous weights only (a copy "
                             "would be bound, and never see their new values)")
        k_count = next(iter(weights.values())).shape[0]
        self.loss, self.accuracy, self.grads = _outputs(k_count, weights, with_grads, grads_out)
        self._with_grads = int(with_grads)
        self._make_scratch, self._scratch, self._scratch_examples = scratch, None, 0

    def _scratch_pointer(self, n: int) -> int:
        """The scratch's pointer for n examples (made anew only for more than ever before)."""
        if n > self._scratch_examples:
            self._scratch = self._make_scratch(self._scratch_floats(n))
            self._scratch_examples = n
        return self._scratch.data_ptr()

    def _scratch_floats(self, n: int) -> int:
        raise NotImplementedError


class MLPPass(_BoundPass):
    """``mlp_loss_and_grads`` bound to its weights, for a training loop that runs it every step
    on the same weights, updated in place: their pointers are taken and the outputs made once,
    so that a call is one call of the kernels. Each call reads the weights' current values and
    returns (loss, accuracy, gradients) in the same output tensors every time: read them before
    the next call. The weights must be contiguous and stay in place (the pass holds them)."""

    def __init__(self, weights: Mapping[str, torch.Tensor], with_grads: bool = True,
                 scratch: Callable[[int], torch.Tensor] = torch.empty) -> None:
        super().__init__(weights, MLP_WEIGHTS, with_grads, None, scratch)
        self._k_count, vocab, width = weights["W_emb"].shape
        self._sizes = (vocab, weights["W_in"].shape[-1], weights["W_unemb"].shape[-1])
        # the call's arguments after K and N: the shapes, then the weights
        self._shapes_and_weights = (vocab, width, *self._sizes[1:], *map(_ptr, self.weights))
        self._outputs = (_ptr(self.loss), _ptr(self.accuracy),
                         *_pointers(self.grads, MLP_WEIGHTS))

    def __call__(self, pairs: torch.Tensor, labels: torch.Tensor, with_loss: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor, Optional[dict[str, torch.Tensor]]]:
        """Loss [K] (NaN without ``with_loss``), accuracy [K], gradients (None if the pass was
        bound without them) of token pairs [N, 2] with ``labels`` [N]."""
        # kept in names until the call returns: a contiguous copy must outlive its pointer
        pairs, labels = pairs.contiguous(), labels.contiguous()
        n, scratch = len(pairs), self._scratch_pointer(len(pairs))
        _library().mlp_loss_and_grads(self._k_count, n, *self._shapes_and_weights, _ptr(pairs),
                                      _ptr(labels), self._with_grads, int(with_loss),
                                      *self._outputs, scratch)
        return self.loss, self.accuracy, self.grads

    def _scratch_floats(self, n: int) -> int:
        return _library().mlp_scratch_floats(n, *self._sizes)


def transformer_loss_and_grads(tables: Mapping[str, torch.Tensor],
                               weights: Mapping[str, torch.Tensor], scale: float,
                               pairs: torch.Tensor, labels: torch.Tensor, with_grads: bool,
                               with_loss: bool, grads_out: Optional[Mapping[str, torch.Tensor]]
                               ) -> tuple[torch.Tensor, torch.Tensor,
                                          Optional[dict[str, torch.Tensor]]]:
    """The transformer's pass from its token tables in one call (``grok_core.models.
    transformer._TokenTables``' forward and backward, the same bits; one table for both
    positions, no biases; needs ``blas_available()``). ``tables``: ``TRANSFORMER_TABLES``;
    ``weights``: the masked ``TRANSFORMER_WEIGHTS``. Mean cross-entropy [K] (NaN without
    ``with_loss``), accuracy [K] and, if asked, the gradients of those weights, written into
    ``grads_out`` (contiguous) where given."""
    # kept in names until the call returns: a contiguous copy must outlive its pointer
    inputs = {name: weights[name].contiguous() for name in TRANSFORMER_WEIGHTS}
    whole_pass = TransformerPass(inputs, scale, with_grads, grads_out,
                                 scratch=_scratch_of_this_thread)
    return whole_pass(tables, pairs, labels, with_loss)


class TransformerPass(_BoundPass):
    """``transformer_loss_and_grads`` bound to its weights and outputs, as ``MLPPass`` is (the
    same rules: contiguous weights, outputs reused by the next call); the token tables, new
    tensors at every step, and the examples are given to each call."""

    def __init__(self, weights: Mapping[str, torch.Tensor], scale: float,
                 with_grads: bool = True,
                 grads_out: Optional[Mapping[str, torch.Tensor]] = None,
                 scratch: Callable[[int], torch.Tensor] = torch.empty) -> None:
        super().__init__(weights, TRANSFORMER_READS, with_grads, grads_out, scratch)
        self._k_count, vocab, width = weights["W_E"].shape
        self._sizes = (vocab, width, weights["W_out"].shape[1], weights["W_U"].shape[-1])
        self._scale = scale
        self._outputs = (_ptr(self.loss), _ptr(self.accuracy),
                         *_pointers(self.grads, TRANSFORMER_WEIGHTS))

    def __call__(self, tables: Mapping[str, torch.Tensor], pairs: torch.Tensor,
                 labels: torch.Tensor, with_loss: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor, Optional[dict[str, torch.Tensor]]]:
        """Loss [K] (NaN without ``with_loss``), accuracy [K], gradients (None if bound
        without them) of token pairs [N, 2] with ``labels`` [N], from ``tables``
        (``TRANSFORMER_TABLES``, made from the bound weights' current values)."""
        # kept in names until the call returns: a contiguous copy must outlive its pointer
        given = [tables[name].contiguous() for name in TRANSFORMER_TABLES]
        pairs, labels = pairs.contiguous(), labels.contiguous()
        n, scratch = len(pairs), self._scratch_pointer(len(pairs))
        _library().transformer_loss_and_grads(
            self._k_count, n, *self._sizes, *map(_ptr, given), *map(_ptr, self.weights),
            self._scale, _ptr(pairs), _ptr(labels), self._with_grads, int(with_loss),
            *self._outputs, scratch)
        return self.loss, self.accuracy, self.grads

    def _scratch_floats(self, n: int) -> int:
        return _library().transformer_scratch_floats(n, *self._sizes)


_THREAD = threading.local()


def _scratch_of_this_thread(floats: int) -> torch.Tensor:
    """At least ``floats`` floats of scratch, the same memory for every pass on this thread
    that is not bound (a pass's scratch runs to megabytes: new memory at every evaluation cost
    its pages' first touch, up to a tenth of a training step per step in the loop). Such a
    pass's call returns before another can start on the same thread; a bound pass keeps its
    own (its pointer must outlive this buffer's growth)."""
    buffer = getattr(_THREAD, "scratch", None)
    if buffer is None or buffer.numel() < floats:
        buffer = _THREAD.scratch = torch.empty(floats)
    return buffer


def _outputs(k_count: int, weights: Mapping[str, torch.Tensor], with_grads: bool,
             grads_out: Optional[Mapping[str, torch.Tensor]]):
    """A whole pass's outputs: loss [K], accuracy [K], and the gradients (None
    without ``with_grads``; ``grads_out`` where given, else new tensors shaped as the
    weights)."""
    loss, accuracy = torch.empty(k_count), torch.empty(k_count)
    if not with_grads:
        return loss, accuracy, None
    return loss, accuracy, (dict(grads_out) if grads_out is not None else
                            {name: torch.empty_like(w) for name, w in weights.items()})


def _pointers(grads: Optional[Mapping[str, torch.Tensor]], names: tuple[str, ...]) -> list:
    """The gradients' pointers in ``names``' order (NULLs without gradients)."""
    return [None] * len(names) if grads is None else [_ptr(grads[name]) for name in names]
