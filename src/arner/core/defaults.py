"""Inference defaults shared by the library (`Tagger`), the CLI and the service: defined once, importable without torch."""

BATCH_SIZE = 16  # windows per forward pass
STRIDE = 64  # overlap in subwords between windows of a long text
PRECISION = "auto"  # bf16 (else fp16) on a GPU, fp32 on a CPU
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")  # arner.inference.precision says what each means
ONNX_PRECISIONS = ("onnx-fp32", "onnx-int8")  # a model exported by `arner export --format onnx [--quantize int8]`, as benches name it
