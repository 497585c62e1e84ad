"""A reader for dlib's binary serialisation of a DNN (``.dat`` files written by ``serialize(net)``).

Only what the trained network needs is decoded; the format, as dlib writes it:

- integers: one header byte (low nibble = number of value bytes, bit 7 = negative) followed by
  the magnitude, little-endian; ``bool`` is one ASCII byte ``'0'``/``'1'``; a string is its length
  (an integer) and its bytes; ``float``/``double`` are an integer mantissa and an integer exponent
  (value = mantissa * 2**exponent, with three reserved exponents for inf, -inf and NaN);
- a tensor: version 2, (num_samples, k, nr, nc), then raw little-endian float32 values;
  an alias tensor (a view into a layer's parameter tensor): version 1 and its four dimensions;
- a network nests from the top: the loss layer writes its version, its details and then its
  subnetwork; every ``add_layer`` writes its version, its subnetwork and then its own details and
  state (so a reader meets all the versions first, then the input layer, then each layer's details
  bottom-up); ``add_tag_layer`` / ``add_skip_layer`` write only a version and their subnetwork.

:func:`read_dlib_net` returns the loss layer, the input layer and the layers bottom-up as
:class:`DlibLayer` records; mapping them onto a torch module is the caller's job.
"""
from __future__ import annotations

from ...errors import FakeproofError, NotFoundError

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_INF, _NINF, _NAN = 32000, 32001, 32002  # dlib's reserved exponents


class DlibFormatError(FakeproofError, ValueError):
    """The file is not a dlib network of the kind expected (or it is truncated / damaged)."""


@dataclass
class DlibLayer:
    kind: str  # "con" | "affine" | "relu" | "max_pool" | "avg_pool" | "add_prev" | "fc" | "wrapper" | ...
    config: dict = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def describe(self) -> str:
        cfg = ",".join(f"{k}={v}" for k, v in self.config.items())
        return f"{self.kind}({cfg})"


@dataclass
class DlibNet:
    loss: dict
    input: dict
    layers: list[DlibLayer]  # bottom-up (input side first); tag/skip layers are kind "wrapper"


class _Reader:
    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = data, 0, path

    def fail(self, reason: str) -> DlibFormatError:
        return DlibFormatError(f"{self.path}: {reason} (at byte {self.pos} of {len(self.data)})")

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"truncated: the file ends inside {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self, what: str = "an integer") -> int:
        head = self.take(1, what)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise self.fail(f"not a dlib integer header (0x{head:02x}) where {what} was expected")
        value = int.from_bytes(self.take(size, what), "little")
        return -value if head & 0x80 else value

    def float(self, what: str = "a float") -> float:
        mantissa, exponent = self.int(what), self.int(what)
        if exponent == _INF:
            return math.inf
        if exponent == _NINF:
            return -math.inf
        if exponent == _NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def bool(self, what: str = "a bool") -> bool:
        c = self.take(1, what)
        if c not in (b"0", b"1"):
            raise self.fail(f"not a dlib bool ({c!r}) where {what} was expected")
        return c == b"1"

    def string(self, what: str = "a string", limit: int = 256) -> str:
        n = self.int(what)
        if not 0 <= n <= limit:
            raise self.fail(f"implausible string length {n} where {what} was expected")
        raw = self.take(n, what)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not ASCII") from None

    def peek_string(self) -> str | None:
        """The string at the current position, without consuming it (None if there is none)."""
        pos = self.pos
        try:
            return self.string()
        except DlibFormatError:
            return None
        finally:
            self.pos = pos

    def tensor(self, what: str = "a tensor") -> np.ndarray:
        version = self.int(what)
        if version != 2:
            raise self.fail(f"unsupported tensor version {version} in {what}")
        shape = tuple(self.int(what) for _ in range(4))
        if any(d < 0 for d in shape):
            raise self.fail(f"negative tensor dimension {shape} in {what}")
        n = int(np.prod(shape))
        raw = self.take(4 * n, what)
        return np.frombuffer(raw, "<f4").astype(np.float32).reshape(shape)

    def alias(self, what: str = "an alias tensor") -> tuple[int, int, int, int]:
        version = self.int(what)
        if version != 1:
            raise self.fail(f"unsupported alias_tensor version {version} in {what}")
        return tuple(self.int(what) for _ in range(4))  # type: ignore[return-value]


def _split(params: np.ndarray, shapes: list[tuple[int, ...]], r: _Reader, what: str) -> list[np.ndarray]:
    flat = params.reshape(-1)
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes) != flat.size:
        raise r.fail(f"{what}: parameter tensor holds {flat.size} values, its views need {sum(sizes)}")
    out, at = [], 0
    for s, n in zip(shapes, sizes):
        out.append(flat[at : at + n].reshape(s).copy())
        at += n
    return out


def _layer_details(r: _Reader) -> DlibLayer:
    name = r.string("a layer name")
    if name == "con_4":
        params = r.tensor("con_ params")
        cfg = {k: r.int(f"con_ {k}") for k in ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")}
        filt, bias = r.alias("con_ filters"), r.alias("con_ biases")
        for _ in range(4):
            r.float("con_ learning-rate multipliers")
        w, b = _split(params, [filt, (bias[1],)], r, "con_")
        return DlibLayer("con", cfg, {"weight": w, "bias": b})
    if name == "affine_":
        params = r.tensor("affine_ params")
        gamma, beta = r.alias("affine_ gamma"), r.alias("affine_ beta")
        mode = r.int("affine_ mode")
        g, b = _split(params, [(int(np.prod(gamma)),), (int(np.prod(beta)),)], r, "affine_")
        return DlibLayer("affine", {"channels": g.size, "mode": mode}, {"gamma": g, "beta": b})
    if name in ("max_pool_2", "avg_pool_2"):
        cfg = {k: r.int(f"{name} {k}") for k in ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")}
        return DlibLayer(name[:-2], cfg)
    if name == "relu_":
        return DlibLayer("relu")
    if name in ("add_prev", "add_prev_"):
        return DlibLayer("add_prev")
    if name == "fc_2":
        num_outputs, num_inputs = r.int("fc_ num_outputs"), r.int("fc_ num_inputs")
        params = r.tensor("fc_ params")
        weights, _biases = r.alias("fc_ weights"), r.alias("fc_ biases")
        has_bias = r.int("fc_ bias mode") == 0  # dlib: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
        for _ in range(4):
            r.float("fc_ learning-rate multipliers")
        if weights[:2] != (num_inputs, num_outputs):
            raise r.fail(f"fc_ weights view {weights} does not match {num_inputs} inputs x {num_outputs} outputs")
        shapes = [(num_inputs, num_outputs)] + ([(num_outputs,)] if has_bias else [])
        parts = _split(params, shapes, r, "fc_")
        p = {"weight": parts[0]}  # (num_inputs, num_outputs): dlib computes x @ W
        if has_bias:
            p["bias"] = parts[1]
        return DlibLayer("fc", {"num_outputs": num_outputs, "num_inputs": num_inputs, "bias": has_bias}, p)
    raise r.fail(f"unsupported dlib layer {name!r}")


def _input_details(r: _Reader) -> dict:
    name = r.string("the input layer name")
    if name not in ("input_rgb_image_sized", "input_rgb_image"):
        raise r.fail(f"unsupported dlib input layer {name!r}")
    out: dict = {"kind": name, "mean_rgb": [r.float("input mean") for _ in range(3)]}
    if name == "input_rgb_image_sized":
        out["nr"], out["nc"] = r.int("input rows"), r.int("input columns")
    return out


def _loss_details(r: _Reader) -> dict:
    name = r.string("the loss layer name")
    if name == "loss_metric_2":
        return {"kind": name, "margin": r.float("loss margin"), "distance_threshold": r.float("loss threshold")}
    if name == "loss_metric_":
        return {"kind": name, "margin": r.float("loss margin")}
    raise r.fail(f"unsupported dlib loss layer {name!r} (expected a loss_metric network)")


def read_dlib_net(path: str | Path) -> DlibNet:
    """Parse a dlib ``loss_metric`` network file (``anet_type``-like nets: input layer, con_,
    affine_, relu_, pooling, add_prev, tag/skip, fc_). Raises :class:`DlibFormatError` naming the
    file and the reason for anything else, including a truncated file or trailing bytes."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise NotFoundError(f"{path}: cannot read ({e.strerror or e})") from None
    r = _Reader(data, str(path))
    if not data:
        raise r.fail("empty file")
    if r.int("the loss layer version") != 1:
        raise r.fail("not a dlib network file (loss layer version is not 1)")
    loss = _loss_details(r)
    versions: list[int] = []  # outermost first
    while True:
        v = r.int("a layer version")
        if v == 3 or (v == 2 and (r.peek_string() or "").startswith("input")):
            break  # the bottom add_layer, which holds the input layer
        if v not in (1, 2):
            raise r.fail(f"unexpected layer version {v}")
        versions.append(v)
        if len(versions) > 10000:
            raise r.fail("no input layer found")
    bottom_version = v
    inp = _input_details(r)
    layers = [_layer_details(r)]
    for _ in range(3):
        r.bool("add_layer flags")
    for what in ("x_grad", "cached_output", "grad_final"):
        r.tensor(what)
    if bottom_version == 3:
        r.int("sample expansion factor")
    for v in reversed(versions):
        if v == 1:
            layers.append(DlibLayer("wrapper"))  # add_tag_layer or add_skip_layer: no state of its own
            continue
        layers.append(_layer_details(r))
        for _ in range(3):
            r.bool("add_layer flags")
        for what in ("x_grad", "cached_output", "params_grad"):
            r.tensor(what)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected bytes after the network")
    return DlibNet(loss, inp, layers)
