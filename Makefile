# Two commands do all the set-up: `make demo` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
REQ_HASH := $(shell cat requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONPATH := $(CURDIR)

.PHONY: venv test demo bench dataset clean torch-venv parity

venv: $(STAMP)

# (Re)installs when the requirements change; a broken or foreign venv is recreated.
$(STAMP): requirements.txt requirements-nodeps.txt
	@if ! $(PY) -c "import sys; assert sys.version_info[:2] == (3, 11)" 2>/dev/null; then \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@# pip check, except for the --no-deps wheels (already there when the venv is updated):
	@$(PY) -m pip check | grep -vE "^No broken|^($$(sed -n 's/==.*//p' requirements-nodeps.txt \
		| paste -sd'|' -)) " > $(VENV)/broken.txt || true
	@if [ -s $(VENV)/broken.txt ]; then cat $(VENV)/broken.txt; exit 1; fi
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	rm -f $(VENV)/.installed-* && touch $@

# Two pytest workers, one test file each at a time (module fixtures train once): TF's
# tracing and Python are single-threaded, so two files overlap well on 2 cores.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile tests

# Trains the tiny DiffWave on the bundled chorales (~2 min; re-running resumes or finishes),
# then writes two generated clips (WAV + spectrogram PNG) to runs/demo/samples.
demo: $(STAMP)
	$(PY) train.py --model diffwave --data dataset/chorales --run runs/demo --preset tiny \
		--steps 3000
	$(PY) generate.py --run runs/demo --seconds 2 --num 2 --out runs/demo/samples

# The PyTorch venv (torch CPU + the originals + the main stack), rebuilt when its requirements
# change: the stamp is keyed on the hash of every requirements file it installs.
TVENV := .venv-torch
TREQ_HASH := $(shell cat requirements.txt requirements-torch.txt requirements-torch-nodeps.txt \
	| sha256sum | cut -c1-16)
TSTAMP := $(TVENV)/.installed-$(TREQ_HASH)
TPY := $(TVENV)/bin/python

torch-venv: $(TSTAMP)

$(TSTAMP): requirements.txt requirements-torch.txt requirements-torch-nodeps.txt
	@if ! $(TPY) -c "import sys; assert sys.version_info[:2] == (3, 11)" 2>/dev/null; then \
		rm -rf $(TVENV) && $(PYTHON) -m venv $(TVENV); fi
	$(TPY) -m pip install --quiet --upgrade pip
	$(TPY) -m pip install --quiet -r requirements-torch.txt
	$(TPY) -m pip install --quiet --no-deps -r requirements-torch-nodeps.txt
	rm -f $(TVENV)/.installed-* && touch $@

# Parity with the PyTorch originals (tests/parity): each test prints its maximum error.
parity: $(TSTAMP)
	$(TPY) -m pytest -q -s -p no:cacheprovider tests/parity

bench: $(STAMP)
	$(PY) benchmarks/bench_pipeline.py

# Regenerates dataset/ from Debian's synthesizers and SoundFont (see dataset/ATTRIBUTION.md).
dataset:
	$(PYTHON) -m venv .venv-build && .venv-build/bin/pip install --quiet -r dataset/requirements-build.txt
	.venv-build/bin/python dataset/build.py

clean:
	rm -rf runs dataset/cache .pytest_cache
