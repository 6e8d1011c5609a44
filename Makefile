# The README's two commands: `make demo` (set up + the main job) and `make test` (set up + tests).
PY := .venv/bin/python
DEMO_SCENE ?= 6
DEMO_OUT ?= outputs/demo_seg.png

.PHONY: install demo test lint bench

install:
	bash tools/install.sh

demo: install
	$(PY) demo/image_demo.py --scene $(DEMO_SCENE) --out-file $(DEMO_OUT)

lint: install
	$(PY) -m ruff check .

test: install lint
	$(PY) -m pytest -q tests

bench: install
	$(PY) tools/benchmark_inference.py
	$(PY) tools/benchmark_ops.py
	$(PY) tools/benchmark_quality.py
