"""`arner bench train|infer`: our training loop and `Tagger` against Hugging Face defaults.

Each bench runs both sides in one process, on the same model folder and the same data (the annotated
articles, whole, repeated and shuffled up to a target number of subword tokens), and writes
`<out>/<device>/<name>.json` (machine, library versions, the exact command, every figure) and
`<name>.md`; the inference bench also writes `<name>.png`. Targets are read from the reports, never asserted.

machine (device, peak FLOP/s, timing, memory) · data (repeated articles, cut texts) · models (tiny,
bert-base) · train (`bench_train`) · infer (`bench_infer`) · report (Markdown, plot, command line).
"""
