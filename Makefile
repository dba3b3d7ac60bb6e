# SemiSeg: the few commands a developer needs. `make setup` once, then `make test`.
VENV_PY := .venv/bin/python
RUFF    := .venv/bin/ruff

# What the installed plugin folder holds (the release zip's one top-level folder is semiseg/).
PLUGIN_FILES := metadata.txt __init__.py plugin.py ui engine resources README.md LICENSE

.PHONY: setup demo lint test bench zip clean

setup:
	bash scripts/setup.sh

demo:
	$(VENV_PY) scripts/demo.py

lint:
	$(RUFF) check .

test: lint
	QT_QPA_PLATFORM=offscreen $(VENV_PY) -m pytest -q tests

bench:
	$(VENV_PY) bench/indian_pines.py
	$(VENV_PY) bench/throughput.py

zip:
	rm -rf dist/semiseg dist/semiseg.zip
	mkdir -p dist/semiseg
	cp -R $(PLUGIN_FILES) dist/semiseg/
	find dist/semiseg -name __pycache__ -type d -prune -exec rm -rf {} +
	find dist/semiseg -name '*.pyc' -delete
	cd dist && python3 -m zipfile -c semiseg.zip semiseg
	rm -rf dist/semiseg
	@echo "built dist/semiseg.zip"

clean:
	rm -rf dist .ruff_cache .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Real QGIS under xvfb-run with a throwaway profile: paints, trains, screenshots into out/gui-check/.
.PHONY: gui-check
gui-check:
	$(VENV_PY) scripts/gui_check.py
