# The README's two commands: `make demo` (set up + the main job) and `make test` (set up + tests).
PY := .venv/bin/python
DEMO_SCENE ?= 6
DEMO_OUT ?= outputs/demo_seg.png

.PHONY: install demo test lint bench quality web

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

# the proving-ground quality table: trains every missing row (resumably), then evaluates all
quality: install
	$(PY) tools/benchmark_quality.py --train-missing

# the web demo on http://127.0.0.1:$(WEB_PORT) (Gradio; the embedded tiny CLIP by default)
WEB_PORT ?= 7860
web: install
	$(PY) demo/web_demo.py --port $(WEB_PORT)
