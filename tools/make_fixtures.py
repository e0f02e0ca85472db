"""Regenerate joule's committed test fixtures under tests/data/.

Trains four small Fashion-MNIST classifiers (MLP, CNN, mobile-style net, tiny
ViT) with PyTorch, exports them to ONNX, writes two storage variants of the
MLP (weights as Constant nodes; weights in an external data file), saves 64
reference test images with each model's reference logits, and describes every
file in tests/data/fixtures.json (opset, I/O, parameter count, op counts,
test accuracy of the exported graph).

For developers only; CI never runs it. Needs Debian's python3-torch,
python3-numpy, python3-onnx and dataset-fashion-mnist. Run from anywhere:

    /usr/bin/python3 tools/make_fixtures.py

Takes a few minutes on two cores; seeded, so reruns give the same weights.
"""

import datetime
import gzip
import json
import math
import struct
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data"
FMNIST = Path("/usr/share/datasets/fashion-mnist")
SEED = 1234
N_REF = 64            # reference images saved with per-model logits
BATCH = 128           # training batch size
MAX_LOGIT_DIFF = 1e-4  # allowed |exported graph - torch module| on any logit


# ---------------------------------------------------------------- data


def read_idx(path):
    """Read a gzipped IDX file (ubyte data) into a uint8 numpy array."""
    with gzip.open(path, "rb") as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError(f"{path}: not an unsigned-byte IDX file")
        shape = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    return data.reshape(shape)


def load_split(prefix):
    """Images as float32 [N,1,28,28] = pixel / 255, labels as int64 [N]."""
    images = read_idx(FMNIST / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(FMNIST / f"{prefix}-labels-idx1-ubyte.gz")
    x = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
    return np.ascontiguousarray(x), labels.astype(np.int64)


# ---------------------------------------------------------------- models


def mlp():
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def conv_bn_relu_pool(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
            nn.ReLU(), nn.MaxPool2d(2)]


def cnn():
    return nn.Sequential(
        *conv_bn_relu_pool(1, 16),
        *conv_bn_relu_pool(16, 32),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def conv_bn(cin, cout, kernel, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups,
                        bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.Hardswish())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise, 1x1 project; residual Add if shapes match."""

    def __init__(self, cin, cout, expand, stride):
        super().__init__()
        mid = cin * expand
        self.body = nn.Sequential(
            conv_bn(cin, mid, 1),
            conv_bn(mid, mid, 3, stride, groups=mid),
            conv_bn(mid, cout, 1, act=False),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


def mobile():
    return nn.Sequential(
        conv_bn(1, 16, 3, stride=2),                    # 16 x 14 x 14
        InvertedResidual(16, 16, expand=3, stride=1),   # residual
        InvertedResidual(16, 24, expand=3, stride=2),   # 24 x 7 x 7
        InvertedResidual(24, 24, expand=3, stride=1),   # residual
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(24, 10),
    )


class SelfAttention(nn.Module):
    """Multi-head self-attention from MatMul/Softmax (exports as plain ops)."""

    def __init__(self, tokens, dim, heads):
        super().__init__()
        self.tokens, self.dim = tokens, dim
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def split_heads(self, x):  # [N,T,D] -> [N,H,T,Dh]
        return x.reshape(-1, self.tokens, self.heads,
                         self.head_dim).transpose(1, 2)

    def forward(self, x):
        q, k, v = (self.split_heads(f(x)) for f in (self.q, self.k, self.v))
        scores = q @ k.transpose(2, 3) * (1.0 / math.sqrt(self.head_dim))
        out = torch.softmax(scores, dim=-1) @ v           # [N,H,T,Dh]
        return self.proj(out.transpose(1, 2).reshape(-1, self.tokens,
                                                     self.dim))


class EncoderBlock(nn.Module):
    def __init__(self, tokens, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(tokens, dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(),
                                 nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """7x7 patches (16 tokens of 49 pixels), d=64, 2 pre-LN blocks, 4 heads."""

    PATCH, GRID, DIM = 7, 4, 64

    def __init__(self):
        super().__init__()
        p, g, d = self.PATCH, self.GRID, self.DIM
        self.embed = nn.Linear(p * p, d)
        self.pos = nn.Parameter(torch.randn(1, g * g, d) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(g * g, d, 4, 2 * d)
                                      for _ in range(2)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        p, g = self.PATCH, self.GRID
        x = x.reshape(-1, g, p, g, p).permute(0, 1, 3, 2, 4)
        x = self.embed(x.reshape(-1, g * g, p * p)) + self.pos
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


# name -> (constructor, opset, epochs, learning rate, keep BatchNormalization)
MODELS = {
    "mlp": (mlp, 13, 3, 1e-3, False),
    "cnn": (cnn, 13, 2, 1e-3, True),
    "mobile": (mobile, 14, 3, 3e-3, True),
    "transformer": (TinyViT, 17, 3, 1e-3, False),
}


# ---------------------------------------------------------------- training


def train(model, x, y, epochs, lr):
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()


@torch.no_grad()
def torch_logits(model, x, batch=1000):
    return np.concatenate([model(torch.from_numpy(x[i:i + batch])).numpy()
                           for i in range(0, len(x), batch)])


# ---------------------------------------------------------------- export


def export_options(keep_bn):
    """torch.onnx.export options; keep_bn leaves BatchNormalization nodes.

    torch's exporter folds BN into the preceding Conv under TrainingMode.EVAL
    even with do_constant_folding=False; TrainingMode.PRESERVE on a module in
    eval mode keeps the BN nodes (in inference form) for joule's cleanup pass
    to fold. Without keep_bn the exporter's defaults apply (EVAL, constant
    folding), which also stores MatMul weights pre-transposed instead of
    behind Transpose nodes.
    """
    if keep_bn:
        return {"do_constant_folding": False,
                "training": torch.onnx.TrainingMode.PRESERVE}
    return {"do_constant_folding": True,
            "training": torch.onnx.TrainingMode.EVAL}


def export(model, path, opset, keep_bn):
    """Export model (in eval mode) to path and check the result."""
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), str(path),
        opset_version=opset,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        **export_options(keep_bn),
    )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    return proto


def initializers_to_constants(proto):
    """Copy of proto with every initializer turned into a Constant node."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    consts = [onnx.helper.make_node("Constant", [], [t.name],
                                    name=f"const_{t.name}", value=t)
              for t in graph.initializer]
    nodes = consts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    onnx.checker.check_model(out)
    return out


def save_external(proto, path):
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    onnx.save_model(out, str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=path.name + ".data",
                    size_threshold=0)
    onnx.checker.check_model(str(path))


# ------------------------------------------------- running an ONNX graph
# A small interpreter for the ops these exports use, built on torch
# functionals, so accuracy is measured on the exported graph itself and
# not only on the torch module it came from.


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _sym_pads(pads):
    half = len(pads) // 2
    if list(pads[:half]) != list(pads[half:]):
        raise NotImplementedError(f"asymmetric pads {pads}")
    return list(pads[:half])


def _gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    y = alpha * ((a.T if transA else a) @ (b.T if transB else b))
    return y if c is None else y + beta * c


def _reshape(x, shape, allowzero=0):
    dims = [x.shape[i] if d == 0 and not allowzero else d
            for i, d in enumerate(shape.tolist())]
    return x.reshape(dims)


def _layer_norm(x, w, b, axis=-1, epsilon=1e-5, stash_type=1):
    return F.layer_norm(x, x.shape[axis:], w, b, epsilon)


def _batch_norm(x, scale, bias, mean, var, epsilon=1e-5, momentum=0.9,
                training_mode=0):
    return F.batch_norm(x, mean, var, scale, bias, False, 0.0, epsilon)


def _conv(x, w, b=None, kernel_shape=None, pads=(0, 0, 0, 0), strides=(1, 1),
          dilations=(1, 1), group=1):
    return F.conv2d(x, w, b, strides, _sym_pads(pads), dilations, group)


def _max_pool(x, kernel_shape, pads=(0, 0, 0, 0), strides=None, ceil_mode=0):
    return F.max_pool2d(x, kernel_shape, strides or kernel_shape,
                        _sym_pads(pads), ceil_mode=bool(ceil_mode))


def _flatten(x, axis=1):
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


OPS = {
    "Add": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "Div": torch.div,
    "MatMul": torch.matmul,
    "Relu": torch.relu,
    "Erf": torch.erf,
    "HardSwish": F.hardswish,
    "Gemm": _gemm,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Transpose": lambda x, perm: x.permute(perm),
    "Softmax": lambda x, axis=-1: torch.softmax(x, axis),
    "ReduceMean": lambda x, axes, keepdims=1: x.mean(axes, bool(keepdims)),
    "GlobalAveragePool": lambda x: x.mean((2, 3), keepdim=True),
    "LayerNormalization": _layer_norm,
    "BatchNormalization": _batch_norm,
    "Conv": _conv,
    "MaxPool": _max_pool,
    "Constant": lambda value: torch.from_numpy(
        numpy_helper.to_array(value).copy()),
}


@torch.no_grad()
def run_onnx(proto, x):
    """Evaluate a single-input single-output ONNX graph on numpy input x."""
    graph = proto.graph
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
           for t in graph.initializer}
    env[graph.input[0].name] = torch.from_numpy(x)
    for node in graph.node:
        args = [env[name] for name in node.input if name]
        env[node.output[0]] = OPS[node.op_type](*args, **_attrs(node))
    return env[graph.output[0].name].numpy()


def onnx_logits(proto, x, batch=1000):
    return np.concatenate([run_onnx(proto, x[i:i + batch])
                           for i in range(0, len(x), batch)])


# ---------------------------------------------------------------- describe


def _shape(value_info):
    return [d.dim_param or d.dim_value
            for d in value_info.type.tensor_type.shape.dim]


def _weights(proto):
    """(initializer tensors, Constant-node value tensors) as numpy arrays."""
    inits = [numpy_helper.to_array(t) for t in proto.graph.initializer]
    consts = [numpy_helper.to_array(_attrs(n)["value"])
              for n in proto.graph.node
              if n.op_type == "Constant" and "value" in _attrs(n)]
    return inits, consts


def describe(path, proto, accuracy, ref_logits):
    graph = proto.graph
    inits, consts = _weights(proto)
    tensors = inits + consts
    entry = {
        "file": path.name,
        "opset": next(o.version for o in proto.opset_import
                      if o.domain in ("", "ai.onnx")),
        "ir_version": proto.ir_version,
        "producer": f"{proto.producer_name} {proto.producer_version}",
        "input": {"name": graph.input[0].name, "shape": _shape(graph.input[0]),
                  "dtype": "float32"},
        "output": {"name": graph.output[0].name,
                   "shape": _shape(graph.output[0]), "dtype": "float32"},
        "param_count": int(sum(t.size for t in tensors)),
        "initializer_params": int(sum(t.size for t in inits)),
        "constant_node_params": int(sum(t.size for t in consts)),
        "weight_bytes": int(sum(t.nbytes for t in tensors)),
        "node_count": len(graph.node),
        "op_counts": dict(sorted(Counter(n.op_type
                                         for n in graph.node).items())),
        "test_accuracy": accuracy,
        "reference_logits": ref_logits,
    }
    on_disk = onnx.load(str(path), load_external_data=False).graph.initializer
    external = {e.value for t in on_disk for e in t.external_data
                if e.key == "location"}
    if external:
        entry["external_data"] = sorted(external)
    return entry


REQUIRED_OPS = {
    "mlp": {"Flatten", "Gemm", "Relu"},
    "cnn": {"Conv", "BatchNormalization", "MaxPool"},
    "mobile": {"Conv", "BatchNormalization", "HardSwish", "Add",
               "GlobalAveragePool"},
    "transformer": {"LayerNormalization", "MatMul", "Softmax", "Erf",
                    "Transpose", "Reshape"},
}


def check_graph(name, proto):
    """The export has the ops the fixture exists for and a symbolic batch."""
    missing = REQUIRED_OPS[name] - {n.op_type for n in proto.graph.node}
    if missing:
        raise RuntimeError(f"{name}: exported graph lacks {sorted(missing)}")
    for value in (proto.graph.input[0], proto.graph.output[0]):
        if _shape(value)[0] != "batch":
            raise RuntimeError(f"{name}: {value.name} has no 'batch' axis")


# ---------------------------------------------------------------- main


def measure(proto, name, x_test, y_test, torch_test_logits):
    """Top-1 accuracy of the exported graph, cross-checked against torch."""
    logits = onnx_logits(proto, x_test)
    diff = float(np.abs(logits - torch_test_logits).max())
    if diff > MAX_LOGIT_DIFF:
        raise RuntimeError(f"{name}: exported graph is {diff} off torch")
    correct = int((logits.argmax(1) == y_test).sum())
    torch_correct = int((torch_test_logits.argmax(1) == y_test).sum())
    return {"top1": correct / len(y_test), "correct": correct,
            "images": len(y_test), "torch_top1": torch_correct / len(y_test),
            "max_abs_diff_vs_torch": diff}


# The weight-storage variants are made from the smallest model so tests/data stays under 3 MB
# (three copies of the MLP's 940 KB of weights alone would not fit).
VARIANT_SOURCE = "mobile"


def storage_variants(name, proto):
    """Write the model with Constant-node and with external-data weights."""
    const_path = OUT / f"{name}_constants.onnx"
    const_proto = initializers_to_constants(proto)
    onnx.save_model(const_proto, str(const_path))
    ext_path = OUT / f"{name}_external.onnx"
    save_external(proto, ext_path)
    return [(const_path, const_proto), (ext_path, onnx.load(str(ext_path)))]


def make_model(name, x_train, y_train, x_test, y_test):
    """Train, export and describe one model (and its variants)."""
    build, opset, epochs, lr, keep_bn = MODELS[name]
    torch.manual_seed(SEED)
    model = build()
    train(model, x_train, y_train, epochs, lr)
    test_logits = torch_logits(model, x_test)
    ref_name = f"{name}_ref_logits64.npy"
    np.save(OUT / ref_name, test_logits[:N_REF])

    path = OUT / f"{name}.onnx"
    proto = export(model, path, opset, keep_bn)
    check_graph(name, proto)
    variants = [(path, proto)] + (storage_variants(name, proto)
                                  if name == VARIANT_SOURCE else [])
    described = {}
    for vpath, vproto in variants:
        accuracy = measure(vproto, vpath.name, x_test, y_test, test_logits)
        meta = describe(vpath, vproto, accuracy, ref_name)
        meta["torch_trainable_params"] = sum(p.numel()
                                             for p in model.parameters())
        meta["training"] = {"epochs": epochs, "optimizer": "Adam", "lr": lr,
                            "batch": BATCH, "train_images": len(x_train),
                            "seed": SEED}
        meta["export_options"] = {k: getattr(v, "name", v) for k, v
                                  in export_options(keep_bn).items()}
        described[vpath.name] = meta
    return described


def main():
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    x_train, y_train = load_split("train")
    x_test, y_test = load_split("t10k")
    np.save(OUT / "fmnist_test64.npy", x_test[:N_REF])
    np.save(OUT / "fmnist_test64_labels.npy", y_test[:N_REF])

    models = {}
    for name in MODELS:
        start = time.time()
        models.update(make_model(name, x_train, y_train, x_test, y_test))
        print(f"{name}: top1 {models[name + '.onnx']['test_accuracy']['top1']}"
              f" ({time.time() - start:.0f}s)", flush=True)

    fixtures = {
        "generator": "tools/make_fixtures.py",
        "generated": datetime.date.today().isoformat(),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__,
                     "numpy": np.__version__},
        "dataset": {"name": "Fashion-MNIST", "source": str(FMNIST),
                    "train_images": len(x_train), "test_images": len(x_test)},
        "preprocessing": {
            "description": "float32(uint8 pixel) / 255.0f, a float32 division "
                           "(not a multiply by 1/255), giving [0,1]; no "
                           "mean/std normalization; NCHW",
            "divisor": 255, "mean": None, "std": None, "dtype": "float32",
            "layout": "NCHW", "input_shape": ["batch", 1, 28, 28],
        },
        "param_count_rule": "sum of element counts of every graph initializer "
                            "plus every Constant node's 'value' tensor in the "
                            "main graph, of any dtype (shape constants "
                            "included); initializer_params and "
                            "constant_node_params give the two parts",
        "weight_bytes_rule": "sum of element count * element size of the same "
                             "tensors as param_count",
        "reference_inputs": {
            "images": "fmnist_test64.npy",
            "labels": "fmnist_test64_labels.npy",
            "description": f"first {N_REF} t10k images, float32 "
                           f"[{N_REF},1,28,28] preprocessed as above; labels "
                           f"int64 [{N_REF}]; reference_logits are the torch "
                           f"model's float32 [{N_REF},10] outputs on them",
        },
        "models": models,
    }
    (OUT / "fixtures.json").write_text(json.dumps(fixtures, indent=2) + "\n")


if __name__ == "__main__":
    main()
