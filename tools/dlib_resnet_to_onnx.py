"""Converts dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) to ONNX.

The network is the one dlib's Python module declares in
`tools/python/src/face_recognition.cpp` (`anet_type`): a 7x7 convolution, a max
pool, 14 residual blocks of two 3x3 convolutions (32, 64, 128, 256 filters;
the first block of each level halves the size and its shortcut is a 2x2 average
pool), a global average pool and a 128-output fully connected layer without
bias.  Each convolution is followed by an `affine` layer (batch norm frozen at
inference), folded here into the convolution's weights and bias.

The `.dat` is dlib's own serialisation (`dlib/serialize.h`, `dlib/dnn/core.h`,
`layers.h`, `input.h`, `loss.h`, `cuda/tensor.h`), read here without dlib: a
network is written from its loss layer inwards, each `add_layer` as its version,
its sub-network, then its layer's details, so the details come in order from
the input to the output.  Two quirks of dlib are reproduced exactly:

- `input_rgb_image_sized<150>` feeds the network (pixel - mean) / 256 per RGB
  channel, with the means stored in the file (122.782, 117.001, 104.298); the
  ONNX model does the same, so it takes the raw chip (N, 3, 150, 150), RGB, 0-255.
- `add_prev` adds tensors of different shapes by treating missing elements as
  zero (a shortcut with fewer channels than its block, a block output smaller
  than its shortcut's average pool): the smaller tensor is padded with zeros at
  the end of the channel / row / column axes before the `Add`.

The weights are public domain (Davis King, dlib.net); see the `.LICENSE` file
written beside the model.

Re-run (a development step; needs the `dev` extra for `onnx`):

    pip install -e '.[dev]'
    python tools/dlib_resnet_to_onnx.py edgeguard/models/dlib_face_recognition_resnet_model_v1.onnx

then put the printed SHA-256 into `edgeguard/faces/opencv_encoder.py` (MODEL_SHA256).  The script
checks its output against dlib on random chips before it reports success.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHIP = 150
# dlib's dnn writes tensors as raw little-endian float32 after their four dimensions.
TENSOR_VERSION = 2


class FormatError(ValueError):
    """The file is not the network this script knows."""


class Reader:
    """dlib's serialisation primitives over a bytes buffer."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def int(self) -> int:
        """A packed integer: a control byte (size in its low 4 bits, 0x80: negative), then the bytes, LSB
        first."""
        control = self.byte()
        size = control & 0x0F
        if size == 0 or size > 8:
            raise FormatError(f"bad integer control byte {control:#x} at {self.pos - 1}")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "little")
        self.pos += size
        return -value if control & 0x80 else value

    def float(self) -> float:
        """dlib's float_details: an int64 mantissa and an int16 exponent (value = mantissa * 2**exponent)."""
        mantissa = self.int()
        exponent = self.int()
        return float(mantissa) * 2.0**exponent

    def bool(self) -> bool:
        char = chr(self.byte())
        if char not in "01":
            raise FormatError(f"bad bool {char!r} at {self.pos - 1}")
        return char == "1"

    def string(self) -> str:
        size = self.int()
        text = self.data[self.pos : self.pos + size].decode("ascii")
        self.pos += size
        return text

    def version(self, expected: tuple[int, ...], what: str) -> int:
        value = self.int()
        if value not in expected:
            raise FormatError(f"{what}: version {value}, expected one of {expected}")
        return value

    def tensor(self) -> np.ndarray:
        self.version((TENSOR_VERSION,), "tensor")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
        self.pos += 4 * count
        return values.reshape(shape)

    def alias_tensor(self) -> tuple[int, ...]:
        self.version((1,), "alias_tensor")
        return tuple(self.int() for _ in range(4))


@dataclass
class Layer:
    """One of the network's layers, outermost first in `NETWORK`; its details filled in by `read_network`."""

    kind: str  # con, affine, relu, max_pool, avg_pool, avg_pool_everything, add_prev, fc, tag, skip
    filters: int = 0
    size: int = 0
    stride: int = 1
    tag: int = 0
    values: dict[str, np.ndarray] = field(default_factory=dict)


def _block(filters: int, stride: int) -> list[Layer]:
    """block<N, affine, stride>: affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, ...>>>>>."""
    return [
        Layer("affine"),
        Layer("con", filters, 3, 1),
        Layer("relu"),
        Layer("affine"),
        Layer("con", filters, 3, stride),
    ]


def _ares(filters: int) -> list[Layer]:
    """ares<N>: relu<add_prev1<block<N, affine, 1, tag1<...>>>>."""
    return [Layer("relu"), Layer("add_prev", tag=1), *_block(filters, 1), Layer("tag", tag=1)]


def _ares_down(filters: int) -> list[Layer]:
    """ares_down<N>: relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N, affine, 2, tag1<...>>>>>>>>."""
    return [
        Layer("relu"),
        Layer("add_prev", tag=2),
        Layer("avg_pool", size=2, stride=2),
        Layer("skip", tag=1),
        Layer("tag", tag=2),
        *_block(filters, 2),
        Layer("tag", tag=1),
    ]


def network() -> list[Layer]:
    """anet_type below its loss layer, outermost first (face_recognition.cpp)."""
    levels = [
        *_ares_down(256),  # alevel0
        *_ares(256),  # alevel1
        *_ares(256),
        *_ares_down(256),
        *_ares(128),  # alevel2
        *_ares(128),
        *_ares_down(128),
        *_ares(64),  # alevel3
        *_ares(64),
        *_ares(64),
        *_ares_down(64),
        *_ares(32),  # alevel4
        *_ares(32),
        *_ares(32),
    ]
    return [
        Layer("fc", filters=128),
        Layer("avg_pool_everything"),
        *levels,
        Layer("max_pool", size=3, stride=2),
        Layer("relu"),
        Layer("affine"),
        Layer("con", 32, 7, 2),
    ]


def read_network(data: bytes) -> tuple[list[Layer], np.ndarray]:
    """The layers, input to output, with their weights, and the input's per-channel means (R, G, B)."""
    reader = Reader(data)
    reader.version((1,), "add_loss_layer")
    _read_loss(reader)
    layers = network()
    add_layer_versions = []
    for layer in layers:
        expected = (1,) if layer.kind in ("tag", "skip") else (1, 2)
        if layer is layers[-1]:
            expected = (2, 3)  # the add_layer holding the input layer has its own versions
        add_layer_versions.append(reader.version(expected, f"{layer.kind} wrapper"))
    means = _read_input(reader)
    for layer, version in zip(reversed(layers), reversed(add_layer_versions)):
        if layer.kind in ("tag", "skip"):
            continue
        _read_details(reader, layer)
        _read_add_layer_tail(reader, version, holds_input=layer is layers[-1])
    if reader.pos != len(data):
        raise FormatError(f"{len(data) - reader.pos} bytes left after the network")
    return list(reversed(layers)), means


def _read_loss(reader: Reader) -> None:
    version = reader.string()
    if version == "loss_metric_2":
        reader.float()  # margin
        reader.float()  # distance threshold
    elif version != "loss_metric_":
        raise FormatError(f"loss layer {version!r} is not loss_metric")


def _read_input(reader: Reader) -> np.ndarray:
    version = reader.string()
    if version != "input_rgb_image_sized":
        raise FormatError(f"input layer {version!r} is not input_rgb_image_sized")
    means = np.array([reader.float() for _ in range(3)], dtype=np.float32)
    size = (reader.int(), reader.int())
    if size != (CHIP, CHIP):
        raise FormatError(f"input size {size}, expected {CHIP}x{CHIP}")
    return means


def _read_add_layer_tail(reader: Reader, version: int, holds_input: bool) -> None:
    """What an add_layer writes after its layer's details (training state, not used at inference)."""
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, get_output_and_..._disabled
        reader.bool()
    reader.tensor()  # x_grad
    reader.tensor()  # cached_output
    if holds_input:
        reader.tensor()  # grad_final
        if version >= 3:
            reader.int()  # _sample_expansion_factor
    elif version >= 2:
        reader.tensor()  # params_grad


def _read_details(reader: Reader, layer: Layer) -> None:
    version = reader.string()
    kind = layer.kind
    if kind == "con":
        _read_con(reader, layer, version)
    elif kind == "affine":
        _read_affine(reader, layer, version)
    elif kind == "fc":
        _read_fc(reader, layer, version)
    elif kind in ("max_pool", "avg_pool", "avg_pool_everything"):
        if version != f"{kind.removesuffix('_everything')}_2":
            raise FormatError(f"{kind}: {version!r}")
        found = tuple(reader.int() for _ in range(6))  # nr, nc, stride y, x, padding y, x
        want = (
            (0, 0, 1, 1, 0, 0) if kind == "avg_pool_everything" else (layer.size,) * 2 + (layer.stride,) * 2
        )
        if found[: len(want)] != want or found[4:] != (0, 0):
            raise FormatError(f"{kind}: {found}")
    elif kind == "relu":
        if version == "relu_2":
            reader.bool()  # disabled
        elif version != "relu_":
            raise FormatError(f"relu: {version!r}")
    elif kind == "add_prev":
        if version != "add_prev_":
            raise FormatError(f"add_prev: {version!r}")


def _read_con(reader: Reader, layer: Layer, version: str) -> None:
    if version not in ("con_4", "con_5", "con_6"):
        raise FormatError(f"con: {version!r}")
    params = reader.tensor().reshape(-1)
    filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.int() for _ in range(7))
    pad = 0 if layer.stride != 1 else layer.size // 2
    if (filters, rows, cols, stride_y, stride_x, pad_y, pad_x) != (
        layer.filters,
        layer.size,
        layer.size,
        layer.stride,
        layer.stride,
        pad,
        pad,
    ):
        raise FormatError(f"con: {filters} {rows}x{cols} /{stride_y}, expected {layer}")
    shape = reader.alias_tensor()  # filters (n, k, nr, nc)
    bias_shape = reader.alias_tensor()
    for _ in range(4):
        reader.float()  # learning rate and weight decay multipliers
    use_bias = reader.bool() if version in ("con_5", "con_6") else True
    if version == "con_6":
        reader.bool()  # use_relu (a fused relu; the network has its own relu layers)
    count = int(np.prod(shape))
    layer.values["weight"] = params[:count].reshape(shape)
    layer.values["bias"] = (
        params[count : count + int(np.prod(bias_shape))].copy() if use_bias else np.zeros(filters, np.float32)
    )


def _read_affine(reader: Reader, layer: Layer, version: str) -> None:
    if version not in ("affine_", "affine_2"):
        raise FormatError(f"affine: {version!r} (a bn_ layer is not converted)")
    params = reader.tensor().reshape(-1)
    gamma = reader.alias_tensor()
    reader.alias_tensor()  # beta: same shape, after gamma
    mode = reader.int()
    if version == "affine_2" and reader.bool():
        raise FormatError("affine: a disabled layer")
    if mode != 0:  # CONV_MODE: one gamma and beta per channel
        raise FormatError(f"affine: mode {mode}, expected per-channel (conv) mode")
    count = int(np.prod(gamma))
    layer.values["gamma"] = params[:count].copy()
    layer.values["beta"] = params[count : 2 * count].copy()


def _read_fc(reader: Reader, layer: Layer, version: str) -> None:
    if version not in ("fc_2", "fc_3"):
        raise FormatError(f"fc: {version!r}")
    outputs, inputs = reader.int(), reader.int()
    params = reader.tensor().reshape(-1)
    weights = reader.alias_tensor()
    reader.alias_tensor()  # biases
    if reader.int() != 1:  # FC_NO_BIAS (FC_HAS_BIAS is 0)
        raise FormatError("fc: has a bias, expected fc_no_bias")
    for _ in range(4):
        reader.float()
    if version == "fc_3":
        reader.bool()
    if outputs != layer.filters or weights[:2] != (inputs, outputs):
        raise FormatError(f"fc: {inputs} -> {outputs}, weights {weights}")
    layer.values["weight"] = params[: inputs * outputs].reshape(inputs, outputs).copy()


def build_onnx(layers: list[Layer], means: np.ndarray, source_sha256: str):
    """The ONNX model (opset 13) of the network: input "chips" (N, 3, 150, 150) RGB 0-255, output
    "descriptors" (N, 128)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = _Graph(numpy_helper)
    x = graph.op("Sub", ["chips", graph.const("mean", means.reshape(1, 3, 1, 1))])
    x = graph.op("Mul", [x, graph.const("scale", np.array(1 / 256, np.float32))])
    shape = (3, CHIP, CHIP)  # channels, rows, columns
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    pending_con: Layer | None = None
    for layer in layers:
        if layer.kind == "con":
            pending_con = layer
            continue
        if layer.kind == "affine":
            if pending_con is None:
                raise FormatError("an affine layer not after a convolution")
            x, shape = graph.conv(x, shape, pending_con, layer)
            pending_con = None
        elif layer.kind == "relu":
            x = graph.op("Relu", [x])
        elif layer.kind == "max_pool" or layer.kind == "avg_pool":
            op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
            x = graph.op(op, [x], kernel_shape=[layer.size] * 2, strides=[layer.stride] * 2)
            shape = (shape[0], *(_out(n, layer.size, layer.stride, 0) for n in shape[1:]))
        elif layer.kind == "tag":
            tags[layer.tag] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[layer.tag]
        elif layer.kind == "add_prev":
            x, shape = graph.add_padded((x, shape), tags[layer.tag])
        elif layer.kind == "avg_pool_everything":
            x = graph.op("GlobalAveragePool", [x])
            x = graph.op("Flatten", [x], axis=1)
            shape = (shape[0], 1, 1)
        elif layer.kind == "fc":
            graph.nodes.append(
                helper.make_node(
                    "MatMul", [x, graph.const("fc_weight", layer.values["weight"])], ["descriptors"]
                )
            )
    model_graph = helper.make_graph(
        graph.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["N", 3, CHIP, CHIP])],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", 128])],
        graph.initializers,
    )
    model = helper.make_model(
        model_graph,
        opset_imports=[helper.make_opsetid("", 13)],
        producer_name="edgeguard tools/dlib_resnet_to_onnx.py",
        doc_string=(
            "dlib_face_recognition_resnet_model_v1 (Davis King, dlib.net; public domain), converted from "
            f"the .dat with SHA-256 {source_sha256}. Input: face chips as dlib.get_face_chips cuts them "
            "(150x150, 0.25 padding), RGB 0-255, NCHW float32. Output: dlib's 128-d face descriptors."
        ),
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


class _Graph:
    """Nodes and initialisers of the graph under construction, with unique names."""

    def __init__(self, numpy_helper) -> None:
        self.numpy_helper = numpy_helper
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attributes) -> str:
        from onnx import helper

        output = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attributes))
        return output

    def conv(self, x: str, shape: tuple[int, int, int], con: Layer, affine: Layer):
        """A convolution with the affine layer after it folded in: W * gamma, b * gamma + beta."""
        gamma, beta = affine.values["gamma"], affine.values["beta"]
        weight = con.values["weight"] * gamma[:, None, None, None]
        bias = con.values["bias"].reshape(-1) * gamma + beta
        pad = 0 if con.stride != 1 else con.size // 2
        out = self.op(
            "Conv",
            [x, self.const("w", weight.astype(np.float32)), self.const("b", bias.astype(np.float32))],
            kernel_shape=[con.size] * 2,
            strides=[con.stride] * 2,
            pads=[pad] * 4,
        )
        rows, cols = (_out(n, con.size, con.stride, pad) for n in shape[1:])
        return out, (con.filters, rows, cols)

    def add_padded(self, first, second):
        """dlib's add_prev: the sum over the larger shape, missing elements of either taken as zero."""
        target = tuple(max(a, b) for a, b in zip(first[1], second[1]))
        inputs = [self._pad_to(name, shape, target) for name, shape in (first, second)]
        return self.op("Add", inputs), target

    def _pad_to(self, x: str, shape: tuple[int, int, int], target: tuple[int, int, int]) -> str:
        if shape == target:
            return x
        ends = [t - s for s, t in zip(shape, target)]
        pads = np.array([0, 0, 0, 0, 0, *ends], dtype=np.int64)  # begins (N, C, H, W), then ends
        return self.op("Pad", [x, self.const("pads", pads)], mode="constant")


def check_against_dlib(onnx_path: Path, dat_path: Path, samples: int = 8) -> float:
    """The largest Euclidean distance between cv2.dnn's and dlib's descriptors of random chips."""
    import cv2
    import dlib

    rng = np.random.default_rng(0)
    chips = rng.integers(0, 256, size=(samples, CHIP, CHIP, 3), dtype=np.uint8)
    chips[: samples // 2] = cv2.GaussianBlur(chips[: samples // 2].reshape(-1, CHIP, 3), (9, 9), 3).reshape(
        chips[: samples // 2].shape
    )
    want = np.asarray(dlib.face_recognition_model_v1(str(dat_path)).compute_face_descriptor(list(chips)))
    net = cv2.dnn.readNetFromONNX(str(onnx_path))
    net.setInput(cv2.dnn.blobFromImages(list(chips), swapRB=False))
    got = net.forward()
    return float(np.linalg.norm(got - want, axis=1).max())


def default_dat() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


LICENCE_NOTE = """dlib_face_recognition_resnet_model_v1.onnx

The weights are dlib's face recognition model, dlib_face_recognition_resnet_model_v1.dat,
by Davis E. King (http://dlib.net/files/dlib_face_recognition_resnet_model_v1.dat.bz2,
shipped by the face_recognition_models package).  Its author released it into the public
domain: "As far as I am concerned, anyone can do whatever they want with these model files
as I've released them into the public domain." (README of github.com/davisking/dlib-models).
A ResNet with 29 conv layers, trained from scratch on about 3 million faces of 7485
identities (face scrub, VGG and images from the internet; none of LFW's identities);
99.38% on the LFW benchmark (same README).

Converted to ONNX, unchanged in function, by EdgeGuard's tools/dlib_resnet_to_onnx.py:
each convolution's affine (frozen batch norm) layer folded into its weights, dlib's input
normalisation ((pixel - mean) / 256 per RGB channel) kept as the graph's first two nodes.
Source .dat SHA-256: {source}
ONNX SHA-256: {onnx}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "output", type=Path, help="the .onnx file to write (a .LICENSE file is written beside it)"
    )
    parser.add_argument(
        "--dat", type=Path, default=None, help="dlib's .dat (default: face_recognition_models')"
    )
    args = parser.parse_args(argv)
    dat = args.dat or default_dat()
    data = dat.read_bytes()
    source_sha256 = hashlib.sha256(data).hexdigest()
    layers, means = read_network(data)
    model = build_onnx(layers, means, source_sha256)
    args.output.write_bytes(model.SerializeToString())
    onnx_sha256 = hashlib.sha256(args.output.read_bytes()).hexdigest()
    args.output.with_suffix(".LICENSE").write_text(
        LICENCE_NOTE.format(source=source_sha256, onnx=onnx_sha256)
    )
    convs = sum(layer.kind == "con" for layer in layers)
    print(f"{dat.name}: {convs} convolutions, input means {struct.unpack('3f', means.tobytes())}")
    distance = check_against_dlib(args.output, dat)
    print(f"largest distance to dlib's descriptors on random chips: {distance:.2e}")
    print(f"wrote {args.output} (SHA-256 {onnx_sha256})")
    return 0 if distance < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
